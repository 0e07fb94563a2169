#!/usr/bin/env bash
# run.sh BUILD_DIR - runs every test program: unit tests (no VM) first, then integration
# tests against real KVM. Prints one line per program; exits nonzero if any failed.
set -u
build=${1:-build}
export HL_BUILD=$build
fail=0
for t in "$build"/tests/unit/* "$build"/tests/integration/*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    if ! timeout "${HL_TEST_TIMEOUT:-600}" "$t"; then
        echo "FAILED: $t" >&2
        fail=1
    fi
done
[ $fail = 0 ] && echo "all tests passed" || echo "some tests FAILED" >&2
exit $fail

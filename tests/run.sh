#!/usr/bin/env bash
# run.sh BIN_DIR [GUEST_DIR] - runs every test program under BIN_DIR/tests: unit tests (no
# VM) first, then integration tests against real KVM. Guests come from GUEST_DIR (default
# BIN_DIR). Prints one line per program; exits nonzero if any failed.
set -u
bin=${1:-build}
export HL_BUILD=${2:-$bin}
fail=0
for t in "$bin"/tests/unit/* "$bin"/tests/integration/*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    if ! timeout "${HL_TEST_TIMEOUT:-600}" "$t"; then
        echo "FAILED: $t" >&2
        fail=1
    fi
done
[ $fail = 0 ] && echo "all tests passed" || echo "some tests FAILED" >&2
exit $fail

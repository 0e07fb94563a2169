#!/usr/bin/env bash
# test-hwkvm.sh - runs every unit and integration test on hardware KVM: kvm_amd with nested
# paging on (npt=1) and off (npt=0, shadow paging, as older hardware and some clouds give),
# inside a Debian kernel booted under QEMU's software emulation, through the team's hwkvm
# tool, which is not in this repository (HWKVM_DIR; default: shared/tools/hwkvm next to the
# checkout, else /work/shared/tools/hwkvm). Build first
# (make tests python). Per mode it runs, each in a boot of its own: the C tests
# (build/tests/{unit,integration}/*, hwkvm's run-tests.sh), then the Python package's tests
# (python/tests, with pytest as `make python-test` runs them, against build/python/lib).
# HL_HWKVM_SUITES="c python" (the default) picks them. Everything there is emulated and slow:
# the tests that repeat a lot read fewer rounds from the environment, never weaker
# assertions. docs/platforms.md explains.
#   scripts/test-hwkvm.sh [npt=1|npt=0 ...]     (default: both)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HWKVM="${HWKVM_DIR:-$ROOT/../shared/tools/hwkvm}"
[[ -x "$HWKVM/run-tests.sh" || -n "${HWKVM_DIR:-}" ]] || HWKVM=/work/shared/tools/hwkvm # a clone elsewhere (CI)
if [[ ! -x "$HWKVM/run-tests.sh" ]]; then
    echo "test-hwkvm: no hwkvm tool at $HWKVM (set HWKVM_DIR): hardware KVM tests cannot run" >&2
    exit 1
fi
suites=" ${HL_HWKVM_SUITES:-c python} "
if [[ $suites == *" c "* && ! -d "$ROOT/build/tests/integration" ]]; then
    echo "test-hwkvm: build the tests first (make tests)" >&2
    exit 1
fi
if [[ $suites == *" python "* && ! -d "$ROOT/build/python/lib/hyperlight" ]]; then
    echo "test-hwkvm: build the Python package first (make python)" >&2
    exit 1
fi
modes=("$@")
((${#modes[@]})) || modes=(npt=1 npt=0)
# test_soak makes 10,000 sandboxes on the host; 1,000 under emulation still shows a leak.
# test_python_suite reuses the native build's outputs saved by the run on this machine.
# The Python tests multiply the upper bounds of their timings by HL_TIME_SCALE.
export HWKVM_ENV="HL_SOAK_ROUNDS=${HL_SOAK_ROUNDS:-1000} HL_PY_SUITE_NATIVE_CACHE=1 HL_TIME_SCALE=${HL_TIME_SCALE:-5} ${HWKVM_ENV:-}"
# What `make python-test` runs (Makefile: PYTHON, python-test), with the same variables.
pytest=(env PYTHONPATH="$ROOT/build/python/lib" HL_BUILD="$ROOT/build" $HWKVM_ENV
        /usr/bin/python3 -m pytest -q -p no:cacheprovider python/tests)
fail=0
for m in "${modes[@]}"; do
    if [[ $suites == *" c "* ]]; then
        echo "=== hardware KVM: kvm_amd $m: C tests"
        s=$(date +%s)
        if "$HWKVM/run-tests.sh" -C "$ROOT" -t 900 --kvm-opts "$m avic=0 nested=0"; then
            echo "=== kvm_amd $m: C tests: all passed ($(( $(date +%s) - s )) s)"
        else
            echo "=== kvm_amd $m: C tests: FAILED ($(( $(date +%s) - s )) s)" >&2
            fail=1
        fi
    fi
    if [[ $suites == *" python "* ]]; then
        echo "=== hardware KVM: kvm_amd $m: Python tests"
        s=$(date +%s)
        if "$HWKVM/run-in-qemu.sh" -C "$ROOT" -t 1200 --kvm-opts "$m avic=0 nested=0" -- "${pytest[@]}"; then
            echo "=== kvm_amd $m: Python tests: all passed ($(( $(date +%s) - s )) s)"
        else
            echo "=== kvm_amd $m: Python tests: FAILED ($(( $(date +%s) - s )) s)" >&2
            fail=1
        fi
    fi
done
exit $fail

#!/usr/bin/env bash
# test-hwkvm.sh - runs every unit and integration test on hardware KVM: kvm_amd with nested
# paging on (npt=1) and off (npt=0, shadow paging, as older hardware and some clouds give),
# inside a Debian kernel booted under QEMU's software emulation, through the team's hwkvm
# tool, which is not in this repository (HWKVM_DIR; default: shared/tools/hwkvm next to the
# checkout, else /work/shared/tools/hwkvm). Build first
# (make tests). Everything there is emulated and slow: the tests that repeat a lot read
# fewer rounds from the environment, never weaker assertions. docs/platforms.md explains.
#   scripts/test-hwkvm.sh [npt=1|npt=0 ...]     (default: both)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HWKVM="${HWKVM_DIR:-$ROOT/../shared/tools/hwkvm}"
[[ -x "$HWKVM/run-tests.sh" || -n "${HWKVM_DIR:-}" ]] || HWKVM=/work/shared/tools/hwkvm # a clone elsewhere (CI)
if [[ ! -x "$HWKVM/run-tests.sh" ]]; then
    echo "test-hwkvm: no hwkvm tool at $HWKVM (set HWKVM_DIR): hardware KVM tests cannot run" >&2
    exit 1
fi
[[ -d "$ROOT/build/tests/integration" ]] || { echo "test-hwkvm: build the tests first (make tests)" >&2; exit 1; }
modes=("$@")
((${#modes[@]})) || modes=(npt=1 npt=0)
# test_soak makes 10,000 sandboxes on the host; 1,000 under emulation still shows a leak.
# test_python_suite reuses the native build's outputs saved by the run on this machine.
export HWKVM_ENV="HL_SOAK_ROUNDS=${HL_SOAK_ROUNDS:-1000} HL_PY_SUITE_NATIVE_CACHE=1 ${HWKVM_ENV:-}"
fail=0
for m in "${modes[@]}"; do
    echo "=== hardware KVM: kvm_amd $m"
    s=$(date +%s)
    if "$HWKVM/run-tests.sh" -C "$ROOT" -t 900 --kvm-opts "$m avic=0 nested=0"; then
        echo "=== kvm_amd $m: all passed ($(( $(date +%s) - s )) s)"
    else
        echo "=== kvm_amd $m: FAILED ($(( $(date +%s) - s )) s)" >&2
        fail=1
    fi
done
exit $fail

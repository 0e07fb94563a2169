#!/usr/bin/env bash
# One-shot, idempotent developer/CI setup for hyperlight-c.
#   1. installs the Debian packages the project needs (only those missing);
#   2. builds picolibc for x86-64 guests into build/picolibc/
#      (scripts/build-picolibc.sh; a no-op when already built);
#   3. fetches and unpacks the language guests' interpreter sources (lang/*/fetch.sh).
# Quick when everything is present. Needs root only when something is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

PACKAGES=(
    gcc make meson ninja-build dpkg-dev pkg-config patch
    clang llvm libclang-rt-14-dev   # libFuzzer / sanitizers
    valgrind clang-format bubblewrap libseccomp-dev linux-perf xxd python3
    lua5.4   # the benchmark compares the Lua guest with Debian's interpreter
    python3-dev python3-setuptools python3-pytest python3-venv   # the Python package (python/)
    curl libmicrohttpd-dev libjansson-dev   # `hyperlight serve` (docs/serve.md)
    wrk   # the benchmark of `hyperlight serve`
    python3-yaml   # tests/serve/test_deploy.py reads the Kubernetes manifests
)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done

if ((${#missing[@]})); then
    say "missing packages: ${missing[*]}"
    [[ $EUID -eq 0 ]] || die "need root to install packages (run as root or install: ${missing[*]})"
    say "apt-get update"
    apt-get update -qq || die "apt-get update failed"
    to_install=()
    for p in "${missing[@]}"; do
        # A package with no installation candidate does not exist here: skip it.
        cand="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')"
        if [[ -z "$cand" || "$cand" == "(none)" ]]; then
            say "WARNING: package '$p' not available in the configured apt sources, skipping"
        else
            to_install+=("$p")
        fi
    done
    if ((${#to_install[@]})); then
        say "installing: ${to_install[*]}"
        apt-get install -y -qq --no-install-recommends "${to_install[@]}" >/dev/null \
            || die "apt-get install failed for: ${to_install[*]}"
    fi
else
    say "all packages present"
fi

bash "$ROOT/scripts/build-picolibc.sh" || die "picolibc build failed"
# The interpreters' sources for the language guests (lang/*/fetch.sh: fetch, check, unpack).
for f in "$ROOT"/lang/*/fetch.sh; do
    [[ -f "$f" ]] || continue
    bash "$f" || die "$f failed"
done
say "done"

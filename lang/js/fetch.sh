#!/usr/bin/env bash
# lang/js/fetch.sh - fetches QuickJS 2025-04-26 (Debian source package quickjs, trixie),
# checks it, unpacks it into build/third_party/quickjs-2025.04.26/ and applies our patches
# (lang/js/patches/*.patch, each with its reason at the top). Idempotent: a stamp holding the
# patches' checksum says the tree is ready; a changed patch set unpacks afresh.
# Debian's own patches (debian/patches: multiarch and armel build tweaks of the Makefile)
# change nothing we build, so none is applied; the Debian tarball is fetched and checked so
# the source is exactly the package's.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VER=2025.04.26
TREE="$ROOT/build/third_party/quickjs-$VER"
STAMP="$TREE/.hyperlight-stamp"
say() { printf '[lang/js] %s\n' "$*" >&2; }

ORIG=$(bash "$ROOT/scripts/fetch-source.sh" quickjs trixie "quickjs_$VER.orig.tar.xz" \
    ec81da5b3249ed648dbc7df4a1654988910e66a118d9b71cb63534216efcfbbe)
bash "$ROOT/scripts/fetch-source.sh" quickjs trixie "quickjs_$VER-1.debian.tar.xz" \
    33e980d4737e83419ae2fb3c833a9d1813ee5edbf2e3da129a66f8bffac23862 >/dev/null

want=$(cat "$ORIG" "$ROOT"/lang/js/patches/*.patch | sha256sum | cut -d' ' -f1)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    say "quickjs-$VER ready"
    exit 0
fi
say "unpacking quickjs-$VER"
rm -rf "$TREE"
mkdir -p "$ROOT/build/third_party"
tar -C "$ROOT/build/third_party" -xJf "$ORIG"
for p in "$ROOT"/lang/js/patches/*.patch; do
    say "patch $(basename "$p")"
    patch -s -d "$TREE" -p1 <"$p"
done
echo "$want" >"$STAMP"

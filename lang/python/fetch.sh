#!/usr/bin/env bash
# lang/python/fetch.sh - fetch MicroPython 1.25.0 (Debian source package micropython, trixie),
# check it by sha256, unpack it into build/third_party/micropython-1.25.0/ and apply our
# patches (lang/python/patches/*.patch, each with its reason at the top). Idempotent: a stamp
# records the unpacked tree, so a second run does nothing. Run by scripts/setup.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION=1.25.0
DEST="$ROOT/build/third_party/micropython-$VERSION"
STAMP="$DEST/.hyperlight-unpacked"
ORIG=micropython_$VERSION+ds.orig.tar.xz
ORIG_SHA=7b25be99a502f070b2de81dafc08da7051d992325d6e67daa9045a918fffdbea

say() { printf '[lang/python] %s\n' "$*" >&2; }

# The stamp holds the checksum of the patches too: changing a patch unpacks afresh.
shopt -s nullglob
patches=("$ROOT"/lang/python/patches/*.patch)
want="$ORIG_SHA $(cat /dev/null "${patches[@]}" | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    exit 0
fi
tarball="$(bash "$ROOT/scripts/fetch-source.sh" micropython trixie "$ORIG" "$ORIG_SHA")"
say "unpacking $ORIG into $DEST"
rm -rf "$DEST" "$DEST.tmp"
mkdir -p "$DEST.tmp"
tar -xJf "$tarball" -C "$DEST.tmp" --strip-components=1
for p in "${patches[@]}"; do
    say "applying $(basename "$p")"
    patch -d "$DEST.tmp" -p1 --quiet --forward <"$p"
done
mv "$DEST.tmp" "$DEST"
echo "$want" >"$STAMP"
say "ready: $DEST"

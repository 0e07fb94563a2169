#!/usr/bin/env bash
# lang/lua/fetch.sh - fetches Lua 5.4.4 (Debian lua5.4, bookworm) for the Lua guest, checks
# it by sha256 (scripts/fetch-source.sh) and unpacks it into build/third_party/lua-5.4.4/
# with Debian's two CVE fixes (debian/patches/0004, 0005: the code of Debian's lua5.4 binary)
# and our patches (lang/lua/patches/*.patch, in name order). Idempotent: a stamp records a
# finished unpack. Run by scripts/setup.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="$ROOT/build/third_party/lua-5.4.4"
STAMP="$DEST/.hyperlight-unpacked"
FETCH="$ROOT/scripts/fetch-source.sh"

say() { printf '[lua] %s\n' "$*" >&2; }

# The stamp names the patches applied: a new or changed patch unpacks afresh.
want="$(cd "$ROOT/lang/lua" && { cat patches/*.patch 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    exit 0
fi

orig="$(bash "$FETCH" lua5.4 bookworm lua5.4_5.4.4.orig.tar.gz \
    164c7849653b80ae67bec4b7473b884bf5cc8d2dca05653475ec2ed27b9ebf61)"
deb="$(bash "$FETCH" lua5.4 bookworm lua5.4_5.4.4-3+deb12u1.debian.tar.xz \
    2d8e0e380722c648cfeffb8d58287865619b4d035544d93d7ef3a2eaf627abe6)"

say "unpacking into $DEST"
rm -rf "$DEST" "$DEST.tmp"
mkdir -p "$DEST.tmp"
tar -xzf "$orig" -C "$DEST.tmp" --strip-components=1
tar -xJf "$deb" -C "$DEST.tmp" debian/patches/0004-cve-2022-28805.patch debian/patches/0005-cve-2022-33099.patch
for p in "$DEST.tmp"/debian/patches/0004-cve-2022-28805.patch "$DEST.tmp"/debian/patches/0005-cve-2022-33099.patch \
    "$ROOT"/lang/lua/patches/*.patch; do
    [[ -f "$p" ]] || continue
    say "patch $(basename "$p")"
    patch -s -p1 -d "$DEST.tmp" <"$p"
done
mv "$DEST.tmp" "$DEST"
echo "$want" >"$STAMP"

#!/usr/bin/env bash
# Build picolibc (static libc.a, tinystdio) for x86-64 bare-metal guests.
#
# Source: Debian's picolibc_1.8.10.orig.tar.gz (trixie source suite), cached
# in build/downloads/. Build dir: build/third_party/. Installed to
# build/lib/hyperlight/picolibc/{include,lib/libc.a}. Our fixes to picolibc are the patches
# in scripts/picolibc-patches/ (each says why at its top), applied in name order to a fresh
# unpack. Idempotent: does nothing when the install stamp matches this script's
# configuration (options, cross file, patches) and libc.a exists.
# Set PICOLIBC_FORCE=1 to rebuild anyway.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VER=1.8.10
TARBALL="picolibc_${VER}.orig.tar.gz"
SHA256=d1fc2a20f217472f8d9da084a519a25678e8d91852a41c7f3f1840d3508f7163

DL_DIR="$ROOT/build/downloads"
TP_DIR="$ROOT/build/third_party"
SRC_DIR="$TP_DIR/picolibc-$VER"
BUILD_DIR="$TP_DIR/picolibc-build"
PREFIX="$ROOT/build/lib/hyperlight/picolibc"
CROSS="$ROOT/scripts/picolibc-cross.txt"
PATCH_DIR="$ROOT/scripts/picolibc-patches"
STAMP="$PREFIX/.stamp"

MESON_OPTS=(
    -Dtests=false
    -Dmultilib=false
    -Dsemihost=false
    -Dthread-local-storage=false
    -Dtls-model=local-exec
    -Dpicocrt=false
    -Dpicolib=true
    -Dsingle-thread=true
    -Dspecsdir=none
    -Dposix-console=false
    -Dio-float-exact=true
    -Doptimization=2
    -Ddebug=false
    -Ddefault_library=static
    -Dincludedir=include
    -Dlibdir=lib
)

say() { printf '[picolibc] %s\n' "$*"; }
die() { printf '[picolibc] ERROR: %s\n' "$*" >&2; exit 1; }

# The patches, in the order they are applied, with their checksums.
patch_list() {
    local p
    for p in "$PATCH_DIR"/*.patch; do
        [[ -f "$p" ]] && printf '%s %s\n' "$(basename "$p")" "$(sha256sum "$p" | cut -d' ' -f1)"
    done
    return 0
}

# Stamp content: everything that affects the result.
stamp_content() {
    printf 'version=%s\nsha256=%s\nopts=%s\ncross=%s\npatches:\n%s\n' \
        "$VER" "$SHA256" "${MESON_OPTS[*]}" "$(sha256sum "$CROSS" | cut -d' ' -f1)" "$(patch_list)"
}

[[ -f "$CROSS" ]] || die "missing cross file $CROSS"

if [[ "${PICOLIBC_FORCE:-0}" != 1 && -f "$PREFIX/lib/libc.a" && -f "$STAMP" ]] \
    && [[ "$(cat "$STAMP")" == "$(stamp_content)" ]]; then
    # newer than its inputs, so that make (which asks when one of them is newer) is content
    touch "$PREFIX/lib/libc.a"
    say "up to date: $PREFIX/lib/libc.a"
    exit 0
fi

for t in meson ninja gcc tar sha256sum patch; do
    command -v "$t" >/dev/null || die "'$t' not found (run scripts/setup.sh first)"
done

# ---- 1. fetch the source tarball (cached; scripts/fetch-source.sh checks the sha256) ----
bash "$ROOT/scripts/fetch-source.sh" picolibc trixie "$TARBALL" "$SHA256" >/dev/null \
    || die "could not fetch $TARBALL"

# ---- 2. unpack and patch ------------------------------------------------
# .unpacked holds the patch list the tree was patched with: another list means a fresh unpack.
mkdir -p "$TP_DIR"
if [[ ! -f "$SRC_DIR/.unpacked" || "$(cat "$SRC_DIR/.unpacked")" != "$(patch_list)" ]]; then
    say "unpacking to $SRC_DIR"
    rm -rf "$SRC_DIR"
    tmp="$(mktemp -d "$TP_DIR/unpack.XXXXXX")"
    tar -xzf "$DL_DIR/$TARBALL" -C "$tmp"
    top=("$tmp"/*)
    [[ ${#top[@]} -eq 1 && -f "${top[0]}/meson.build" ]] \
        || { rm -rf "$tmp"; die "unexpected tarball layout"; }
    for p in "$PATCH_DIR"/*.patch; do
        [[ -f "$p" ]] || continue
        say "applying $(basename "$p")"
        patch -s -p1 -d "${top[0]}" <"$p" || { rm -rf "$tmp"; die "patch $p does not apply"; }
    done
    mv "${top[0]}" "$SRC_DIR"
    rm -rf "$tmp"
    patch_list >"$SRC_DIR/.unpacked"
fi

# ---- 3. configure, build, install --------------------------------------
say "configuring (meson) in $BUILD_DIR"
rm -rf "$BUILD_DIR" "$PREFIX"
log="$TP_DIR/picolibc-build.log"
meson setup "$BUILD_DIR" "$SRC_DIR" \
    --cross-file "$CROSS" \
    --prefix "$PREFIX" \
    "${MESON_OPTS[@]}" >"$log" 2>&1 \
    || { tail -n 40 "$log" >&2; die "meson setup failed (full log: $log)"; }

say "building (ninja)"
ninja -C "$BUILD_DIR" >>"$log" 2>&1 \
    || { tail -n 40 "$log" >&2; die "build failed (full log: $log)"; }

say "installing to $PREFIX"
meson install -C "$BUILD_DIR" --no-rebuild >>"$log" 2>&1 \
    || { tail -n 40 "$log" >&2; die "install failed (full log: $log)"; }

[[ -f "$PREFIX/lib/libc.a" ]] || die "install finished but $PREFIX/lib/libc.a is missing"
[[ -f "$PREFIX/include/stdio.h" ]] || die "install finished but $PREFIX/include/stdio.h is missing"
stamp_content >"$STAMP"
say "done: $PREFIX/lib/libc.a, headers in $PREFIX/include"

#!/usr/bin/env bash
# Builds the two picolibc allocators the alloc benchmark compares ours with (docs/benchmarks.md,
# "Guest allocator") as link inputs for a guest:
#   build/bench-malloc/nano.a  picolibc's nano-malloc, taken from the SDK's libc.a
#   build/bench-malloc/full.a  picolibc's full malloc (meson -Dnewlib-nano-malloc=false), built
#                              from the source scripts/build-picolibc.sh unpacked, with its options
# A guest linked with one of them before the SDK gets that allocator instead of ours
# (src/guest/malloc.c), which the SDK pulls only for an undefined malloc.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/build/bench-malloc"
SRC="$ROOT/build/third_party/picolibc-1.8.10"
LIBC="$ROOT/build/lib/hyperlight/picolibc/lib/libc.a"
BUILD="$ROOT/build/third_party/picolibc-fullmalloc-build"
[[ -f "$LIBC" && -f "$SRC/meson.build" ]] || { echo "run scripts/build-picolibc.sh first" >&2; exit 1; }
mkdir -p "$OUT"

# The members of archive $1 whose names match $2, as archive $3.
extract() { # archive pattern out.a
    local tmp
    tmp="$(mktemp -d)"
    (cd "$tmp" && ar x "$1" $(ar t "$1" | grep -E "$2"))
    rm -f "$3"
    ar rcs "$3" "$tmp"/*.o
    rm -rf "$tmp"
}
extract "$LIBC" '^nano-' "$OUT/nano.a"

if [[ -z "$(find "$BUILD" -name libc.a 2>/dev/null | head -n1)" ]]; then
    eval "$(sed -n '/^MESON_OPTS=(/,/^)/p' "$ROOT/scripts/build-picolibc.sh")"
    rm -rf "$BUILD"
    meson setup "$BUILD" "$SRC" --cross-file "$ROOT/scripts/picolibc-cross.txt" \
        --prefix "$BUILD/install" "${MESON_OPTS[@]}" -Dnewlib-nano-malloc=false >"$BUILD.log" 2>&1
    ninja -C "$BUILD" >>"$BUILD.log" 2>&1
fi
full="$(find "$BUILD" -name libc.a | head -n1)"
extract "$full" '^malloc-' "$OUT/full.a"
echo "bench-malloc: $OUT/nano.a $OUT/full.a"

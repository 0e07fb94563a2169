#!/usr/bin/env bash
# check-format.sh - checks that the C sources follow .clang-format, without changing them, and
# prints a short summary: how many files and lines clang-format would change, worst first.
# Exits 1 if any would change. Run from the repository root (make format-check runs the
# bare clang-format check over the same files; make format applies it).
#   scripts/check-format.sh           check, with a summary
#   scripts/check-format.sh --files   print the files that are kept formatted (the Makefile uses it)
# CLANG_FORMAT picks the binary (default clang-format; .clang-format is written for version 14).
set -euo pipefail

# The files kept formatted: every .c and .h under these directories, and tools/*.c. Assembly
# (.S) and linker scripts (.ld) are not C. tools/serve/ is `hyperlight serve`.
FORMAT_DIRS="src include tests bench examples python"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

files() {
    { find $FORMAT_DIRS -type f \( -name '*.c' -o -name '*.h' \); ls tools/*.c tools/serve/*.[ch]; } | LC_ALL=C sort
}

if [[ "${1:-}" == "--files" ]]; then
    files
    exit 0
fi

CF="${CLANG_FORMAT:-clang-format}"
command -v "$CF" > /dev/null || { echo "check-format: $CF not found" >&2; exit 2; }
[[ -f .clang-format ]] || { echo "check-format: no .clang-format at the repository root" >&2; exit 2; }
version=$("$CF" --version | sed -n 's/.*version \([0-9][0-9]*\)\..*/\1/p')
[[ "$version" == 14 ]] || echo "check-format: note: $CF is version ${version:-?}; .clang-format is tuned for 14" >&2

nfiles=0 nbad=0 nlines=0
report=$(mktemp)
trap 'rm -f "$report"' EXIT
while read -r f; do
    nfiles=$((nfiles + 1))
    # lines of the file that clang-format would rewrite (removed or changed)
    n=$("$CF" --style=file "$f" | diff "$f" - | grep -c '^<' || true)
    if ((n > 0)); then
        nbad=$((nbad + 1))
        nlines=$((nlines + n))
        printf '%6d  %s\n' "$n" "$f" >> "$report"
    fi
done < <(files)

if ((nbad == 0)); then
    echo "check-format: all $nfiles files formatted"
    exit 0
fi
echo "check-format: $nbad of $nfiles files need formatting ($nlines lines would change):"
sort -rn "$report" | head -15
((nbad <= 15)) || echo "   ... and $((nbad - 15)) more"
echo "Run make format to apply, or clang-format --style=file FILE | diff FILE - to see one."
exit 1

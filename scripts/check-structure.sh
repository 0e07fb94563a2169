#!/usr/bin/env bash
# check-structure.sh - checks the shape of the tree: file and function sizes, which modules
# may include which headers, where KVM is touched, who writes the sandbox's error state, and
# that magic values are defined once. Run from the repository root (make check-structure).
# Prints one line per violation and exits 1 if there is any, 0 otherwise.
set -euo pipefail

# ---- the rules' tables: edit these ---------------------------------------------------------

# Directories whose C files (.c, .h) the size rules apply to.
SIZE_DIRS="src tools bench python"
MAX_FILE_LINES=700
MAX_FUNCTION_LINES=100

# Pure modules: they may include system headers (<...>), the headers in
# PURE_ALLOWED_INCLUDES, a header named like the module (layout.c: layout.h), and the headers
# listed after a colon on their line (their own header when it is named otherwise, and any
# exception); no other header of the host library. Only direct includes are checked. The
# error formatter (error.h) and the constant headers (base.h, x86_64.h) are allowed: they
# depend on nothing; layout.c sizes the page tables (pagetable.h), the other pure module of
# the guest's memory.
PURE_ALLOWED_INCLUDES="hyperlight.h hyperlight/abi.h hyperlight/value.h wire.h error.h base.h x86_64.h"
PURE_MODULES="
src/host/elf.c: elfload.h
src/host/layout.c: pagetable.h
src/host/pagetable.c
src/host/memory.c: image.h
src/common/wire.c
src/common/wire_sig.c
"

# KVM: only files matching KVM_FILES (shell patterns) under KVM_DIRS may include
# <linux/kvm.h> or call ioctl(); the files in NO_KVM_NAMES may not even mention KVM_.
# bench/perf.c counts KVM's tracepoints through perf events (its ioctls are perf's).
KVM_DIRS="src tools bench"
KVM_FILES="src/host/vm_kvm*.c src/host/vm_kvm*.h bench/perf.c"
NO_KVM_NAMES="src/host/confine.c"

# Error state: only ERROR_OWNER writes it. Each entry is "what: regex", an extended regular
# expression (grep -E) matched against every other .c/.h file under ERROR_DIR with comments
# removed.
ERROR_DIR="src/host"
ERROR_OWNER="src/host/error.c"
ERROR_WRITES=(
    'sets the state to Poisoned or Unrecoverable: ->state[[:space:]]*=[[:space:]]*HL_STATE_(POISONED|UNRECOVERABLE)\>'
    'assigns ->poison_why: ->poison_why[[:space:]]*(\[[^]]*\][[:space:]]*)?=[^=]'
    'copies into ->poison_why: (snprintf|vsnprintf|memcpy|memmove|strcpy|strncpy|strcat|strncat)[[:space:]]*\([[:space:]]*&?[[:alnum:]_]+->poison_why'
    'passes sb->err to a writer: (hl_errf|snprintf|vsnprintf|memcpy|memmove|strcpy|strncpy|strcat|strncat)[[:space:]]*\([^;]*\<sb->err\>'
)

# Magic values: each string may appear in at most one header and in no other file (C and
# assembly sources and headers, anywhere in the tree but build/).
MAGIC_STRINGS="HLSNAP01"

# ---- the checks -------------------------------------------------------------------------------

fail=0
violation() { printf '%s\n' "$*"; fail=1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# prints what a group of checks wrote to $tmp, and counts it as failure if anything
flush() { if [[ -s "$tmp" ]]; then cat "$tmp"; fail=1; fi; : > "$tmp"; }

[[ -f Makefile && -d src ]] || { echo "check-structure: run from the repository root" >&2; exit 2; }

# grep -n that succeeds when nothing matches
lines_matching() { grep -n "$@" || true; }

c_files() { find "$@" -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | LC_ALL=C sort; }

# Prints FILE with comments replaced by a space and the text of string and character
# literals removed ("..." and '' stay), line numbers kept: what the checks below match is
# code only. With a second argument "keep-strings", literals stay whole.
strip_comments() {
    awk -v keep="${2:-}" '{
        out = ""; n = length($0); i = 1
        while (i <= n) {
            c = substr($0, i, 1); c2 = substr($0, i, 2)
            if (incomment) {
                if (c2 == "*/") { incomment = 0; out = out " "; i += 2 } else i++
            } else if (c2 == "/*") { incomment = 1; i += 2
            } else if (c2 == "//") { break
            } else if (c == "\"" || c == "\047") {
                q = c; j = i; i++
                while (i <= n && substr($0, i, 1) != q) i += (substr($0, i, 1) == "\\") ? 2 : 1
                out = out (keep ? substr($0, j, i - j + 1) : q q); i++
            } else { out = out c; i++ }
        }
        print out
    }' "$1"
}

# 1. file size
for f in $(c_files $SIZE_DIRS); do
    n=$(wc -l < "$f")
    if ((n > MAX_FILE_LINES)); then
        violation "$f: $n lines, more than $MAX_FILE_LINES (split it)"
    fi
done

# 2. function size. A definition starts at a line at column 0 that is not a preprocessor line,
# whose signature (that line and the indented lines after it) has a parameter list, no '=' at
# the outermost level and does not end in ';', and whose body opens with '{' at the end of the
# signature or on a line of its own at column 0. The body ends at the next '}' at column 0;
# a function on one line is one line long.
for f in $(c_files $SIZE_DIRS); do
    strip_comments "$f" | awk -v file="$f" -v max="$MAX_FUNCTION_LINES" -v list="${LIST_FUNCTIONS:-}" '
    # the name: the identifier before the first "(" once attributes are dropped
    function fname(s,   t) {
        t = s
        gsub(/__attribute__[[:space:]]*\(\(([^()]|\([^()]*\))*\)\)/, " ", t)
        if (!match(t, /[A-Za-z_][A-Za-z_0-9]*[[:space:]]*\(/)) return "?"
        t = substr(t, RSTART, RLENGTH)
        sub(/[[:space:]]*\($/, "", t)
        return t
    }
    # 1 if s looks like a signature: it has a "(" and no "=" outside brackets
    function is_sig(s,   i, c, depth) {
        if (index(s, "(") == 0) return 0
        depth = 0
        for (i = 1; i <= length(s); i++) {
            c = substr(s, i, 1)
            if (c == "(" || c == "[") depth++
            else if (c == ")" || c == "]") depth--
            else if (c == "=" && depth == 0) return 0
        }
        return 1
    }
    function report(end_line,   len) {
        len = end_line - start + 1
        if (len > max)
            printf "%s:%d: function %s is %d lines, more than %d (split it)\n", file, start, name, len, max
        else if (list) printf "%s:%d: %s %d\n", file, start, name, len
    }
    # sig holds the signature so far (from line start); line is its newest line
    function consider(line) {
        if (line ~ /;[[:space:]]*$/) { state = 0; return }   # a declaration
        if (line ~ /{/ && line ~ /}[[:space:]]*;?[[:space:]]*$/) {
            # opens and closes on this line: a one-line function, or an initializer
            if (is_sig(substr(sig, 1, index(sig, "{") - 1))) { name = fname(sig); report(NR) }
            state = 0; return
        }
        if (line ~ /{[[:space:]]*$/) {                      # body opens at the end of the signature
            if (is_sig(substr(sig, 1, index(sig, "{") - 1))) { name = fname(sig); state = 2 }
            else state = 0                                   # struct, enum, initializer
            return
        }
        state = 1
    }
    function top(line) {
        state = 0
        if (line ~ /^[A-Za-z_]/) { start = NR; sig = line; nsig = 1; consider(line) }
    }
    BEGIN { state = 0; cont = 0 }
    {
        line = $0
        if (cont) { cont = (line ~ /\\$/); next }           # continued preprocessor line
        if (line ~ /^[[:space:]]*#/) { cont = (line ~ /\\$/); next }
        if (state == 2) {
            if (line ~ /^}/) { report(NR); state = 0 }
            next
        }
        if (state == 1) {
            if (line ~ /^{/) {                              # body opens at column 0
                if (!is_sig(sig)) { state = 0; next }
                name = fname(sig); state = 2
                if (line ~ /}[[:space:]]*$/) { report(NR); state = 0 }
                next
            }
            if (line ~ /^[^[:space:]]/ || line ~ /^[[:space:]]*$/ || ++nsig > 20) { top(line); next }
            sig = sig " " line
            consider(line)
            next
        }
        top(line)
    }
    END { if (state == 2) printf "%s:%d: function %s has no closing brace at column 0\n", file, start, name }
    '
done > "$tmp" 2>&1
flush

# 3. include layering of the pure modules
while read -r entry; do
    [[ -n "$entry" ]] || continue
    mod=${entry%%:*}
    extra=""
    [[ "$entry" == *:* ]] && extra=${entry#*:}
    if [[ ! -f "$mod" ]]; then
        violation "$mod: listed as a pure module in scripts/check-structure.sh but missing (update the table)"
        continue
    fi
    own=$(basename "$mod" .c).h
    allowed=$(echo " $own $PURE_ALLOWED_INCLUDES $extra " | tr -s ' ')
    while IFS=: read -r ln inc; do
        hdr=$(printf '%s' "$inc" | sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p')
        [[ -n "$hdr" ]] || continue
        [[ "$allowed" == *" $hdr "* ]] && continue
        violation "$mod:$ln: pure module includes \"$hdr\" (it may include system headers and:$allowed)"
    done < <(strip_comments "$mod" keep-strings | grep -n '^[[:space:]]*#[[:space:]]*include' || true)
done <<< "$PURE_MODULES"

# 4. KVM only in its backend
for f in $(c_files $KVM_DIRS); do
    exempt=0
    for pat in $KVM_FILES; do
        # shellcheck disable=SC2053
        [[ "$f" == $pat ]] && exempt=1
    done
    [[ $exempt == 1 ]] && continue
    strip_comments "$f" | lines_matching '^[[:space:]]*#[[:space:]]*include[[:space:]]*<linux/kvm\.h>' |
        while IFS=: read -r ln _; do
            echo "$f:$ln: includes <linux/kvm.h> (only $KVM_FILES may)"
        done
    strip_comments "$f" | lines_matching '\<ioctl[[:space:]]*(' |
        while IFS=: read -r ln _; do
            echo "$f:$ln: calls ioctl() (only $KVM_FILES may)"
        done
done > "$tmp"
for f in $NO_KVM_NAMES; do
    [[ -f "$f" ]] || continue
    strip_comments "$f" | lines_matching 'KVM_' | while IFS=: read -r ln _; do
        echo "$f:$ln: mentions KVM_ (it must not know KVM)"
    done
done >> "$tmp"
flush

# 5. the sandbox's error state has one writer
for f in $(c_files "$ERROR_DIR"); do
    [[ "$f" == "$ERROR_OWNER" ]] && continue
    for entry in "${ERROR_WRITES[@]}"; do
        what=${entry%%: *}
        re=${entry#*: }
        strip_comments "$f" | lines_matching -E -- "$re" | while IFS=: read -r ln _; do
            echo "$f:$ln: $what (only $ERROR_OWNER writes the sandbox's error state)"
        done
    done
done | sort -t: -k1,1 -k2,2n > "$tmp"
flush

# 6. magic values defined once
for m in $MAGIC_STRINGS; do
    hits=$(grep -rlF --include='*.c' --include='*.h' --include='*.S' --exclude-dir=build \
        --exclude-dir=.git -- "$m" . 2>/dev/null | sed 's|^\./||' | LC_ALL=C sort || true)
    [[ -n "$hits" ]] || continue
    headers=$(printf '%s\n' "$hits" | grep '\.h$' || true)
    others=$(printf '%s\n' "$hits" | grep -v '\.h$' || true)
    nh=$(printf '%s' "$headers" | grep -c . || true)
    if ((nh > 1)); then
        violation "\"$m\" appears in $nh headers ($(echo $headers)); define it in one"
    fi
    for f in $others; do
        for ln in $(grep -nF -- "$m" "$f" | cut -d: -f1); do
            violation "$f:$ln: \"$m\" spelled out (use the one header's definition)"
        done
    done
done

if ((fail)); then
    echo "check-structure: FAILED" >&2
    exit 1
fi
echo "check-structure: OK"

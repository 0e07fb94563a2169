#!/usr/bin/env bash
# run.sh [BUILD] - the benchmark of `hyperlight serve` (docs/benchmarks.md "HTTP service"), all
# in one run: wrk on loopback at 1, 4, 16 and 64 connections on GET /healthz (HTTP alone),
# POST /v1/run with a tiny script in every language guest found, and POST /v1/call/demo/Add;
# next to the floor (build/bin/hyperlight-serve-floor: one pooled get + call + put per request
# on one core) and the server a user would write otherwise (bench/serve/bwrap_server.py:
# python3 -c / lua5.4 -e under bwrap per request, at 1, 4 and 16 connections); then a soak
# (wrk -c 16 on /v1/run lua) sampling the server's resident memory every 5 s. Writes the table
# to stdout and to bench/results/serve-<UTC date-time>.txt. DURATION (seconds, default 10)
# per cell, SOAK (seconds, default 60) for the soak.
#
# Columns: requests/s, p50 and p99 (ms), errors (non-2xx responses and socket errors), the
# server's CPU per request (utime + stime + cutime + cstime of its process from
# /proc/PID/stat across the cell, over the requests wrk completed: the bwrap server's
# children count, they are reaped), requests per second of server CPU, that rate over the
# floor's for the same guest (x_floor), and the whole machine's busy CPU per request
# (/proc/stat: wrk, the kernel's workers and anything else running included; an upper bound).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
dur="${DURATION:-10}"
soak="${SOAK:-60}"
tck="$(getconf CLK_TCK)"
tmp="$(mktemp -d)"
pid="" bwpid="" soakpid=""
trap 'for p in $soakpid $bwpid $pid; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
command -v wrk > /dev/null || { echo "run.sh: wrk is missing (bash scripts/setup.sh)" >&2; exit 2; }
floor_bin="$build/bin/hyperlight-serve-floor"
[[ -x "$floor_bin" ]] || { echo "run.sh: $floor_bin is missing (make all)" >&2; exit 2; }

# Starts a server (the command line after $1), whose stderr goes to $tmp/$1.err; sets $port
# and $spid once it says "listening on 127.0.0.1:PORT".
start_server() {
    local name=$1
    shift
    "$@" 2> "$tmp/$name.err" &
    spid=$!
    for _ in $(seq 600); do grep -q "listening on" "$tmp/$name.err" && break; sleep 0.1; done
    port="$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/$name.err")"
    [[ -n "$port" ]] || { cat "$tmp/$name.err" >&2; exit 1; }
}

# CPU clock ticks of process $1 and its reaped children (fields 14-17 of /proc/PID/stat,
# counted after the command name, which may hold spaces); busy ticks of the whole machine
# (user, nice, system, irq, softirq).
proc_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 + $14 + $15 }'; }
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }

# wrk's latency ("97.00us", "1.20ms", "1.01s") in milliseconds.
ms() {
    awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
        f = u == "us" ? 0.001 : u == "ms" ? 1 : u == "s" ? 1000 : -1; printf "%.3f", n * f }'
}

# The wrk script: METHOD, with BODY as a JSON body when it is not empty. wrk itself counts
# the responses that are not 2xx ("Non-2xx or 3xx responses"; a counter in the script's
# response() would not reach done(), which runs in a Lua state of its own).
cat > "$tmp/req.lua" <<'LUA'
wrk.method = os.getenv("METHOD")
local body = os.getenv("BODY")
if body ~= "" then
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
end
LUA

row='%-24s %5s %9s %8s %8s %6s %9s %9s %7s %9s\n'

# cell TARGET CONNS SERVER_PID METHOD URL BODY FLOOR: one wrk run, one row. FLOOR is the
# floor's calls per CPU second for the same guest ("" if none).
cell() {
    local t=$1 c=$2 p=$3 method=$4 url=$5 body=$6 floor=$7 p0 p1 m0 m1 n rps p50 p99 err
    p0=$(proc_ticks "$p") m0=$(machine_ticks)
    METHOD="$method" BODY="$body" wrk -t "$((c < 2 ? c : 2))" -c "$c" -d "${dur}s" --latency -s "$tmp/req.lua" \
        "$url" > "$tmp/wrk" 2>&1 || true
    p1=$(proc_ticks "$p") m1=$(machine_ticks)
    n=$(awk '/requests in/ { print $1 }' "$tmp/wrk")
    rps=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$tmp/wrk")
    p50=$(awk '$1 == "50%" { print $2 }' "$tmp/wrk")
    p99=$(awk '$1 == "99%" { print $2 }' "$tmp/wrk")
    err=$(awk '/Non-2xx/ { e += $NF } /Socket errors/ { gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) e += $i }
        END { print e + 0 }' "$tmp/wrk")
    [[ -n "$n" && "$n" -gt 0 ]] || { cat "$tmp/wrk" >&2; n=0; }
    awk -v t="$t" -v c="$c" -v rps="$rps" -v p50="$(ms "$p50")" -v p99="$(ms "$p99")" -v err="$err" -v n="$n" \
        -v dp=$((p1 - p0)) -v dm=$((m1 - m0)) -v tck="$tck" -v floor="$floor" -v fmt="$row" 'BEGIN {
        cpu = dp / tck; us = n ? cpu * 1e6 / n : 0; core = cpu > 0 ? n / cpu : 0
        x = floor != "" && core > 0 ? sprintf("%.2f", core / floor) : "-"
        printf fmt, t, c, rps, p50, p99, err, sprintf("%.1f", us), sprintf("%.0f", core), x,
            sprintf("%.1f", n ? dm / tck * 1e6 / n : 0) }'
}

declare -A code=([lua]='print(1)' [javascript]='console.log(1)' [python]='print(1)')
langs=()
for l in lua javascript python; do
    [[ -f "$build/guests/$l.elf" ]] && langs+=("$l")
done

start_server hyperlight "$build/bin/hyperlight" serve --no-auth --listen 127.0.0.1:0 --access-log - \
    --guest "demo=$build/guests/demo.elf" --guest-dir "$build/guests" --queue 256 \
    --pool lua=4 --pool javascript=4 --pool python=4 --pool demo=4
pid=$spid hport=$port
base="http://127.0.0.1:$hport"

# Everything from here on goes to stdout and $out (in this shell, not a subshell of a pipe,
# so that the trap sees the servers' pids).
out="$root/bench/results/serve-$(date -u +%Y%m%dT%H%M%SZ).txt"
exec 3>&1 > >(tee "$out")
teepid=$!
declare -A floor
echo "# hyperlight serve, wrk ${dur}s per cell, soak ${soak}s, $(nproc) cores, $(uname -r), $(date -u +%FT%TZ)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2059
printf "$row" target conns req/s p50_ms p99_ms errors cpu_us/req req/cpu_s x_floor mach_us/req

# The floor, one core, no HTTP: calls/s is its req/s, and req/cpu_s the rate per core.
for g in demo "${langs[@]}"; do
    if [[ $g == demo ]]; then f=Add; else f=Eval; fi
    "$floor_bin" -d "$dur" "$build/guests/$g.elf" "$f" > "$tmp/floor"
    read -r _ _ _ _ _ _ _ rps _ us _ core < "$tmp/floor"
    floor[$g]=$core
    # shellcheck disable=SC2059
    printf "$row" "floor $g $f" 1 "$rps" - - 0 "$us" "$core" 1.00 -
done

for c in 1 4 16 64; do cell healthz "$c" "$pid" GET "$base/healthz" "" ""; done
for l in "${langs[@]}"; do
    for c in 1 4 16 64; do
        cell "run-$l" "$c" "$pid" POST "$base/v1/run" "{\"language\":\"$l\",\"code\":\"${code[$l]}\"}" "${floor[$l]}"
    done
done
for c in 1 4 16 64; do cell call-demo-Add "$c" "$pid" POST "$base/v1/call/demo/Add" '[40,2]' "${floor[demo]}"; done

# The server a user would write otherwise: a process under bwrap per request, ~100 times
# slower, so 1, 4 and 16 connections only (64 would queue seconds per request).
if command -v bwrap > /dev/null && command -v lua5.4 > /dev/null && [[ -x /usr/bin/python3 ]]; then
    start_server bwrap /usr/bin/python3 "$root/bench/serve/bwrap_server.py"
    bwpid=$spid
    for l in lua python; do
        for c in 1 4 16; do
            cell "bwrap-$l" "$c" "$bwpid" POST "http://127.0.0.1:$port/v1/run" \
                "{\"language\":\"$l\",\"code\":\"print(1)\"}" "${floor[$l]:-}"
        done
    done
    kill "$bwpid"
    wait "$bwpid" 2> /dev/null || true
    bwpid=""
else
    echo "# bwrap rows skipped: bwrap, lua5.4 or /usr/bin/python3 missing (bash scripts/setup.sh)"
fi

# The soak: resident memory of the server every 5 s under 16 connections of /v1/run lua;
# flat if the end is within 5 % or 4 MiB of the sample at 10 s.
if [[ " ${langs[*]} " == *" lua "* ]]; then
    METHOD=POST BODY='{"language":"lua","code":"print(1)"}' wrk -t 2 -c 16 -d "${soak}s" -s "$tmp/req.lua" \
        "$base/v1/run" > "$tmp/soak" 2>&1 &
    soakpid=$!
    samples=("$(rss_kib "$pid")")
    for ((s = 5; s <= soak; s += 5)); do
        sleep 5
        samples+=("$(rss_kib "$pid")")
    done
    wait "$soakpid" || true
    soakpid=""
    n=$(awk '/requests in/ { print $1 }' "$tmp/soak")
    err=$(awk '/Non-2xx/ { e += $NF } /Socket errors/ { gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) e += $i }
        END { print e + 0 }' "$tmp/soak")
    echo "${samples[*]}" | awk -v soak="$soak" -v n="$n" -v err="$err" '{
        at10 = NF >= 3 ? $3 : $1; end = $NF; max = 0
        for (i = 1; i <= NF; i++) if ($i > max) max = $i
        d = end - at10; if (d < 0) d = -d
        flat = d <= 4096 || d <= 0.05 * at10 ? "flat" : "NOT flat"
        printf "soak run-lua 16 conns %ds: %d requests, %d errors; RSS MiB start %.1f, at 10 s %.1f, end %.1f, " \
            "max %.1f, growth %+.1f since 10 s: %s\n", soak, n, err, $1 / 1024, at10 / 1024, end / 1024,
            max / 1024, (end - at10) / 1024, flat
        printf "soak RSS samples (MiB, every 5 s):"
        for (i = 1; i <= NF; i++) printf " %.1f", $i / 1024
        printf "\n" }'
fi
kill -TERM "$pid"
wait "$pid"
pid=""
exec >&3 3>&-
wait "$teepid"

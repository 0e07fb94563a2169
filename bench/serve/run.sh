#!/usr/bin/env bash
# run.sh [BUILD] - the benchmark of `hyperlight serve` (docs/benchmarks.md "HTTP service"):
# wrk on loopback at 1, 4, 16 and 64 connections, POST /v1/run with a tiny script in every
# language guest found, and POST /v1/call/demo/Add. Writes the table (requests/s, p50, p99)
# to stdout and to bench/results/serve-<UTC date-time>.txt. DURATION (seconds, default 5)
# per cell.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
dur="${DURATION:-5}"
tmp="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
command -v wrk > /dev/null || { echo "run.sh: wrk is missing (apt-get install wrk)" >&2; exit 2; }

"$build/bin/hyperlight" serve --no-auth --listen 127.0.0.1:0 --access-log - --guest "demo=$build/guests/demo.elf" \
    --guest-dir "$build/guests" --queue 256 --pool lua=4 --pool javascript=4 --pool python=4 --pool demo=4 \
    2> "$tmp/err" &
pid=$!
for _ in $(seq 600); do grep -q "listening on" "$tmp/err" && break; sleep 0.1; done
port="$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/err")"
[[ -n "$port" ]] || { cat "$tmp/err" >&2; exit 1; }

# A wrk script that POSTs $BODY and counts the responses that are not 200.
cat > "$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
local bad = 0
function response(status) if status ~= 200 then bad = bad + 1 end end
function done() if bad > 0 then io.stderr:write("non-200 responses: " .. bad .. "\n") end end
LUA

declare -A code=([lua]='print(1)' [javascript]='console.log(1)' [python]='print(1)')
targets=()
for l in lua javascript python; do
    [[ -f "$build/guests/$l.elf" ]] && targets+=("run-$l")
done
targets+=(call-demo-Add)

out="$root/bench/results/serve-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
    echo "# hyperlight serve, wrk ${dur}s per cell, $(nproc) cores, $(uname -r), $(date -u +%FT%TZ)"
    printf '%-22s %5s %10s %10s %10s\n' target conns req/s p50_ms p99_ms
    for t in "${targets[@]}"; do
        if [[ $t == run-* ]]; then
            l=${t#run-}
            url="http://127.0.0.1:$port/v1/run"
            body="{\"language\":\"$l\",\"code\":\"${code[$l]}\"}"
        else
            url="http://127.0.0.1:$port/v1/call/demo/Add"
            body='[40,2]'
        fi
        for c in 1 4 16 64; do
            BODY="$body" wrk -t "$((c < 2 ? c : 2))" -c "$c" -d "${dur}s" --latency -s "$tmp/post.lua" "$url" \
                > "$tmp/wrk" 2>&1
            rps=$(awk '/^Requests\/sec/ {print $2}' "$tmp/wrk")
            p50=$(awk '$1 == "50%" {print $2}' "$tmp/wrk")
            p99=$(awk '$1 == "99%" {print $2}' "$tmp/wrk")
            ms() { awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
                   f = u == "us" ? 0.001 : u == "ms" ? 1 : u == "s" ? 1000 : -1; printf "%.3f", n * f }'; }
            printf '%-22s %5d %10s %10s %10s\n' "$t" "$c" "$rps" "$(ms "$p50")" "$(ms "$p99")"
            grep -h "non-200\|Socket errors" "$tmp/wrk" | sed 's/^/    /' || true
        done
    done
} | tee "$out"
kill -TERM "$pid"
wait "$pid"

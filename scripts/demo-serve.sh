#!/usr/bin/env bash
# demo-serve.sh [BUILD] - the end of `make demo`: starts `hyperlight serve` on a free loopback
# port for a moment, sends one POST /v1/run per language (docs/serve.md), prints each answer,
# and stops the server with SIGTERM (it finishes what is in flight and exits 0).
set -euo pipefail
B=${1:-build}
log=$(mktemp)
trap 'kill -TERM "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
"$B/bin/hyperlight" serve --listen 127.0.0.1:0 --no-auth --access-log - 2>"$log" &
pid=$!
for _ in $(seq 100); do
    addr=$(sed -n 's/^hyperlight serve: listening on //p' "$log")
    [[ -n "$addr" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$addr" ]] || { echo "demo-serve: the server did not start" >&2; cat "$log" >&2; exit 1; }
echo "\$ $B/bin/hyperlight serve --listen $addr --no-auth   # then:"
for req in '{"language": "lua", "code": "print(6 * 7)"}' \
    '{"language": "javascript", "code": "console.log([1, 2, 3].map(x => x * 2))"}' \
    '{"language": "python", "code": "sum(range(10))", "eval": true}'; do
    echo "\$ curl -s -d '$req' http://$addr/v1/run"
    curl -sS --fail-with-body -d "$req" "http://$addr/v1/run"
    echo
done
kill -TERM "$pid"
wait "$pid"
trap 'rm -f "$log"' EXIT

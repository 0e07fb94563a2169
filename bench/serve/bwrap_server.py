#!/usr/bin/env python3
"""bwrap_server.py - the server a user would write otherwise (bench/serve/run.sh compares it
with `hyperlight serve`): Python's ThreadingHTTPServer answering POST /v1/run
{"language", "code"} by running Debian's `python3 -c CODE` or `lua5.4 -e CODE` under bwrap
(bubblewrap), one process per request, and returning {"stdout", "stderr"} as JSON (200, also
when the script fails: "exit" says how it ended). GET /healthz answers {"status": "ok"}.

bwrap_server.py [--listen HOST:PORT]   (default 127.0.0.1:0: a free port)
prints "listening on HOST:PORT" to stderr once it accepts connections.
"""
import argparse
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The interpreter and its "run this code" flag per language.
LANGS = {"python": ["/usr/bin/python3", "-c"], "lua": ["/usr/bin/lua5.4", "-e"]}
TIMEOUT_S = 10


def sandbox_argv():
    """bwrap's arguments: /usr read-only, /lib, /lib64, /bin as they are on the host (symlinks
    into /usr on a merged-/usr Debian, else read-only binds), a fresh /proc, /dev and /tmp,
    every namespace unshared (no network), killed with its parent. No /etc: neither
    interpreter needs it for a script that reads no file."""
    argv = ["bwrap", "--ro-bind", "/usr", "/usr"]
    for d in ("/lib", "/lib64", "/bin"):
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    # --as-pid-1: the interpreter is the new PID namespace's init, without bwrap's own init
    # process between: with that one, the interpreter's CPU time never reaches this server's
    # cutime/cstime (what run.sh reads as the cost of a request): a fifth to a half was counted.
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--unshare-all", "--as-pid-1",
             "--die-with-parent", "--new-session", "--"]
    return argv


SANDBOX = sandbox_argv()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk and hyperlight serve use
    # Headers and body are two writes: with Nagle's algorithm the body waits for the client's
    # delayed ACK, 40 ms on Linux, on every request.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # no access log (hyperlight serve runs without one)
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/healthz":
            self.reply(200, {"status": "ok"})
        else:
            self.reply(404, {"error": "no such route"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        if self.path != "/v1/run":
            return self.reply(404, {"error": "no such route"})
        try:
            req = json.loads(raw)
            argv = LANGS[req["language"]] + [req["code"]]
        except (ValueError, KeyError, TypeError):
            return self.reply(400, {"error": 'expected {"language": "python"|"lua", "code": "..."}'})
        try:
            p = subprocess.run(SANDBOX + argv, capture_output=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return self.reply(200, {"stdout": "", "stderr": "", "exit": "timeout"})
        self.reply(200, {"stdout": p.stdout.decode(errors="replace"), "stderr": p.stderr.decode(errors="replace"),
                         "exit": p.returncode})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    print("listening on %s:%d" % srv.server_address[:2], file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

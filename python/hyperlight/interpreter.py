"""hyperlight.run and hyperlight.Interpreter: code in Lua, JavaScript or Python run in a
language guest (include/hyperlight/lang.h, docs/languages.md) with its output captured, for
an AI agent's code tool. docs/python.md, "Running code for an AI agent", is the guide.

    hyperlight.run("sum(range(10))").value                       # 45
    with hyperlight.Interpreter("lua", persistent=True) as lua:
        lua.run("x = 41")
        lua.run("x + 1").value                                   # 42
"""

from __future__ import annotations

import ast
import asyncio
import functools
import json
import os
import pathlib
import re
import sys
import threading
from typing import Any, Callable, Mapping

from . import _hyperlight
from ._hyperlight import Cancelled, Error, GuestError, Snapshot, Timeout, TooLarge

__all__ = ["run", "Interpreter", "Result", "RunError", "GuestNotFound", "LANGUAGES", "find_guest", "tool_schema"]

#: Each language's names (the first is the canonical one, also the guest's file name).
LANGUAGES = {"lua": ("lua",), "javascript": ("javascript", "js"), "python": ("python", "py")}
_ALIASES = {alias: lang for lang, names in LANGUAGES.items() for alias in names}

# The protocol's guest error codes (include/hyperlight/lang.h).
_ERR_SCRIPT, _ERR_NOT_JSON, _ERR_SYNTAX, _ERR_EXIT = 1, 2, 4, 6
# HL_GUEST_ERR_OUT_OF_MEMORY and HL_GUEST_ERR_OUTPUT_FULL (include/hyperlight/abi.h).
_SDK_ERRORS = {-3: "OutOfMemory", -5: "ValueTooLarge"}
_KIND_OF_CODE = {_ERR_SCRIPT: "script", _ERR_SYNTAX: "syntax", _ERR_EXIT: "exit"}

DEFAULT_TIMEOUT = 1.0
DEFAULT_MAX_OUTPUT = 1 << 20  # bytes of stdout and stderr together, per run
# Code longer than this is refused before it reaches the guest: the call's arguments must fit
# the input buffer (HL_BUFFER_DEFAULT, 256 KiB, include/hyperlight.h) with room to spare.
DEFAULT_MAX_CODE = 128 << 10


class GuestNotFound(FileNotFoundError):
    """The language's guest ELF is in none of the places looked at (they are in the message)."""


class RunError:
    """Why a run failed.

    kind: "script" (the code raised), "syntax" (it does not parse), "exit" (it called
    os.exit/sys.exit/std.exit with a nonzero status), "timeout", "output_limit" (it printed
    more than max_output bytes), "cancelled" (interrupted), or "sandbox" (the guest faulted,
    aborted or broke the protocol, or a value too large for the boundary).
    type: the language's name for the error ("ValueError", "Error", Lua's "runtime"; "Timeout",
    "OutputLimit", ... for the kinds the host detects). message: the error's own text.
    traceback: the language's traceback text ("" when there is none).
    """

    __slots__ = ("kind", "type", "message", "traceback")

    def __init__(self, kind: str, type: str, message: str, traceback: str = "") -> None:
        self.kind, self.type, self.message, self.traceback = kind, type, message, traceback

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "type": self.type, "message": self.message, "traceback": self.traceback}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunError) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"RunError(kind={self.kind!r}, type={self.type!r}, message={self.message!r})"

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


class Result:
    """What a run gave: stdout and stderr (str, at most max_output bytes together), value
    (the JSON-decoded value of the code, None when it has none), error (None or a RunError),
    exit_code (the status the code passed to exit, else None) and duration (seconds the guest
    call took)."""

    __slots__ = ("stdout", "stderr", "value", "error", "exit_code", "duration")

    def __init__(self, stdout: str, stderr: str, value: Any, error: RunError | None, exit_code: int | None,
                 duration: float) -> None:
        self.stdout, self.stderr, self.value, self.error = stdout, stderr, value, error
        self.exit_code, self.duration = exit_code, duration

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what an agent's tool call returns to the model)."""
        return {"stdout": self.stdout, "stderr": self.stderr, "value": self.value,
                "error": None if self.error is None else self.error.as_dict(), "exit_code": self.exit_code,
                "duration": self.duration}

    def __repr__(self) -> str:
        return (f"Result(value={self.value!r}, stdout={self.stdout!r}, stderr={self.stderr!r}, "
                f"error={self.error!r}, duration={self.duration:.6f})")


def _canonical(language: Any) -> str:
    if not isinstance(language, str):
        raise TypeError(f"language must be a str, not {type(language).__name__}")
    try:
        return _ALIASES[language.lower()]
    except KeyError:
        names = ", ".join(" / ".join(n) for n in LANGUAGES.values())
        raise ValueError(f"unknown language {language!r} (one of: {names})") from None


def _guest_dirs() -> list[pathlib.Path]:
    here = pathlib.Path(__file__).resolve().parent
    dirs = []
    if os.environ.get("HL_BUILD"):
        dirs.append(pathlib.Path(os.environ["HL_BUILD"]) / "guests")
    dirs.append(here.parents[1] / "build" / "guests")  # the checkout: python/hyperlight
    dirs.append(here.parents[2] / "guests")  # make python's build/python/lib/hyperlight
    for prefix in dict.fromkeys((sys.prefix, "/usr/local", "/usr")):
        dirs.append(pathlib.Path(prefix) / "lib" / "hyperlight" / "guests")
    if _hyperlight.BUILD_DIR:  # the build the extension was made from (pip install ./python)
        dirs.append(pathlib.Path(_hyperlight.BUILD_DIR) / "guests")
    return list(dict.fromkeys(dirs))


def find_guest(language: str) -> pathlib.Path:
    """The guest ELF of language: LANG.elf in $HL_BUILD/guests, the checkout's build/guests,
    then PREFIX/lib/hyperlight/guests for sys.prefix, /usr/local and /usr, then the build
    directory the extension was built against. GuestNotFound,
    naming every place looked at, when it is in none."""
    name = _canonical(language) + ".elf"
    dirs = _guest_dirs()
    for d in dirs:
        if (d / name).is_file():
            return d / name
    raise GuestNotFound(f"no {name} for language {language!r}; looked in: " + ", ".join(str(d) for d in dirs) +
                        " (build it with `make all`, or set HL_BUILD)")


def _print(stream: int, text: str) -> None:
    """The print function of the interpreters' sandboxes: a run's output is kept by
    Sandbox.run_code (python/src/config.c, capture), so what reaches here is the interpreter's
    own start-up output, dropped."""


def _check_code(code: Any, max_code: int) -> None:
    if type(code) is str and len(code) <= max_code >> 2 and "\0" not in code:
        return  # the usual case, in few steps
    if not isinstance(code, str):
        raise TypeError(f"code must be a str, not {type(code).__name__}")
    if "\0" in code:
        raise ValueError("code must not contain NUL characters")
    if len(code) > max_code // 4 and len(code.encode()) > max_code:
        raise ValueError(f"code is {len(code.encode())} bytes, more than max_code ({max_code})")


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0, not {timeout!r}")
    return float(timeout)


def _check_size(what: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what} must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{what} must be >= 0, not {n}")
    return n


def _last_error(sb: Any) -> dict[str, Any]:
    try:
        d = json.loads(sb.call("LastError"))
        return d if isinstance(d, dict) else {}
    except (Error, ValueError):
        return {}


def _guest_failure(sb: Any, e: GuestError) -> tuple[Any, RunError | None, int | None]:
    """(value, error, exit_code) of a failed Eval."""
    if e.code == _ERR_NOT_JSON:  # it ran; its value has no JSON form (JS undefined, a function)
        return None, None, None
    last = _last_error(sb)
    msg = e.guest_message or str(e)
    if e.code == _ERR_EXIT or last.get("type") == "exit":
        digits = msg.rsplit(" ", 1)[-1]
        status = int(digits) if digits.lstrip("-").isdigit() else 1
        if status == 0:
            return None, None, 0
        return None, RunError("exit", "exit", f"exit {status}"), status
    if e.code < 0:  # the guest SDK's own errors (include/hyperlight/abi.h), not the script's
        return None, RunError("sandbox", _SDK_ERRORS.get(e.code, "GuestError"), msg), None
    kind = _KIND_OF_CODE.get(e.code, "sandbox")
    return None, RunError(kind, str(last.get("type", "error")), str(last.get("message", msg)),
                          str(last.get("traceback", ""))), None


_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")


def _python_parts(code: str) -> tuple[str, ...]:
    """Python code as the guest's Eval calls that give it the value of its last expression:
    the statements before it, then the expression. MicroPython's Eval takes one expression or
    statements (whose value is None), so code that ends in an expression after statements is
    split, by CPython's parser, into both; the expression is put in parentheses after as many
    newlines as lines before it, so tracebacks keep the line numbers of code."""
    try:
        body = ast.parse(code).body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return (code,)  # MicroPython's parser gives the error (or takes what CPython does not)
    if len(body) < 2 or not isinstance(body[-1], ast.Expr):
        return (code,)
    last = body[-1]
    lines = _LINES.findall(code)  # the line ends of Python's tokenizer (str.splitlines has more)
    start = sum(len(line) for line in lines[:last.lineno - 1])
    start += len(lines[last.lineno - 1].encode()[:last.col_offset].decode(errors="ignore"))
    return code[:start], "(" + "\n" * (last.lineno - 1) + code[start:] + "\n)"


_decoder = json.JSONDecoder()
_scan = _decoder.scan_once  # the C scanner, without decode()'s two whitespace matches


def _decode(text: str) -> Any:
    """The value of the JSON text the guest's Eval returned (no surrounding whitespace)."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        end = -1
    return value if end == len(text) else _decoder.decode(text)


def _call(sb: Any, parts: tuple[str, ...], timeout: float | None, max_output: int, usual: float | None,
          fresh: Snapshot | None = None) -> tuple[Result, bool]:
    """Runs the code in sb; (the result, whether sb must be restored before its next use).
    usual: the timeout sb has between runs (set back after the run). fresh: restore sb to it
    afterwards (closed if that fails). The calls, the timeout, the capture of the output and,
    after a run without error, the restore are one C call (Sandbox.run_code, src/sandbox.c)."""
    text, e, out, err, over, duration = sb.run_code(parts, timeout, usual, max_output, fresh)
    if e is None:
        return Result(out, err, _decode(text), None, None, duration), False
    value: Any = None
    exit_code: int | None = None
    poisoned = False
    if isinstance(e, GuestError):
        value, error, exit_code = _guest_failure(sb, e)
    elif isinstance(e, Cancelled):  # Timeout too; the sandbox is poisoned
        poisoned = True
        if over:
            error = RunError("output_limit", "OutputLimit", f"the output went beyond max_output ({max_output} bytes)")
        elif isinstance(e, Timeout):
            error = RunError("timeout", "Timeout", f"the code ran longer than the timeout ({timeout} s)")
        else:
            error = RunError("cancelled", "Cancelled", str(e))
    elif isinstance(e, TooLarge):
        error = RunError("sandbox", "TooLarge", str(e))
    else:  # fault, abort, protocol: the sandbox is poisoned
        poisoned = True
        error = RunError("sandbox", type(e).__name__, str(e))
    if fresh is not None:  # after _guest_failure, which asks the guest for its LastError
        try:
            sb.restore(fresh)  # ready or poisoned; nothing of this run remains
        except Error:
            sb.close()  # unrecoverable
    return Result(out, err, value, error, exit_code, duration), poisoned


class Interpreter:
    """Interpreter(language="python", *, persistent=False, checkpoint=False, pool_size=2, timeout=1.0, heap=None,
    stack=None, max_output=1 MiB, max_code=128 KiB, host_functions=None, files=None, guest=None).

    Boots the language's interpreter once, snapshots it, and runs every run(code) in a sandbox
    in that state. Not persistent: a pool of pool_size warm sandboxes, each restored after
    every run (nothing of one run is seen by the next; concurrent runs use different
    sandboxes). Persistent: one sandbox keeps its state from run to run, like a notebook
    (concurrent runs wait for each other); reset() goes back to the fresh interpreter. A run
    that is stopped (timeout, output limit, interrupt, fault) leaves a persistent interpreter
    reset, and its error message says so; with checkpoint=True it is put back to its state
    before that run instead (a snapshot per run: about 0.3 ms more each).

    heap, stack: the guest's sizes in bytes (default: what the guest declares). timeout:
    seconds per run (None: none). host_functions: {name: callable} the code calls as
    host.NAME(...). files: {label: path} of host files every run may read (read-only,
    opened by label: Python open/import, Lua io.open/require, JavaScript import); they are
    mapped once, into the snapshot. guest: the guest ELF's path (default: find_guest(language)).
    Thread-safe; a context manager; close() frees the sandboxes.
    """

    def __init__(self, language: str = "python", *, persistent: bool = False, checkpoint: bool = False,
                 pool_size: int = 2,
                 timeout: float | None = DEFAULT_TIMEOUT, heap: int | None = None, stack: int | None = None,
                 max_output: int = DEFAULT_MAX_OUTPUT, max_code: int = DEFAULT_MAX_CODE,
                 host_functions: Mapping[str, Callable[..., Any]] | None = None,
                 files: Mapping[str, str | os.PathLike[str]] | None = None,
                 guest: str | os.PathLike[str] | None = None) -> None:
        from . import Pool, Sandbox  # the package imports this module first

        self.language = _canonical(language)
        self._python = self.language == "python"
        self.persistent = bool(persistent)
        self.checkpoint = bool(checkpoint)
        self.timeout = _check_timeout(timeout)
        self.max_output = _check_size("max_output", max_output)
        self.max_code = _check_size("max_code", max_code)
        pool_size = _check_size("pool_size", pool_size)
        if pool_size < 1:
            raise ValueError("pool_size must be >= 1")
        self.guest = pathlib.Path(guest) if guest is not None else find_guest(self.language)
        self._lock = threading.Lock()
        self._closed = False
        self._pool = None
        self._idle: list[Any] = []
        self._sb = None
        self._before: Snapshot | None = None
        sb = Sandbox(self.guest, heap=heap, stack=stack, timeout=self.timeout, host_functions=host_functions,
                     print=_print, files=files)
        try:
            self._fresh = sb.snapshot()
        except BaseException:
            sb.close()
            raise
        if self.persistent:
            self._sb = sb
        else:
            sb.close()
            self._pool = Pool(self._fresh, pool_size, timeout=self.timeout, host_functions=host_functions,
                              print=_print)
            self._pool_size = pool_size
            # Sandboxes between runs, restored: taken from the pool once, kept here, since a
            # restore (hl_sandbox_restore) costs a few microseconds where the pool's scrub of
            # every register costs ~20 (bench/results/pyrun-*.txt); the pool scrubs them when
            # they go back to it at close(). Taken and given back without a lock: list.pop and
            # list.append are atomic, and close() sets _closed before it empties the list.

    def run(self, code: str, *, timeout: Any = "default", max_output: int | None = None) -> Result:
        """Runs code; its value, output and error in a Result. timeout and max_output override
        the interpreter's for this run. Wrong types or code longer than max_code raise
        TypeError / ValueError; everything the code does is in the Result."""
        _check_code(code, self.max_code)
        t = self.timeout if timeout == "default" else _check_timeout(timeout)
        limit = self.max_output if max_output is None else _check_size("max_output", max_output)
        return self._run(code, t, limit)

    def _run(self, code: str, t: float | None, limit: int) -> Result:
        """run() with its arguments checked."""
        python_split = self._python and ("\n" in code or ";" in code)  # else one statement
        parts = _python_parts(code) if python_split else (code,)
        if self.persistent:
            return self._run_persistent(parts, t, limit)
        pool = self._pool
        if pool is None:
            raise _hyperlight.SandboxClosed("the interpreter is closed")
        idle = self._idle
        try:
            sb = idle.pop()  # atomic (the GIL): no lock on the way in or out
        except IndexError:
            sb = pool._h.get()
        try:
            result, _ = _call(sb, parts, t, limit, self.timeout, self._fresh)  # and restored
        except BaseException:  # KeyboardInterrupt in a host function, say: scrubbed, given back
            try:
                pool._h.put(sb)
            except Error:
                pass
            raise
        if sb.closed:
            return result  # the restore failed; the pool makes a new one when needed
        if len(idle) < self._pool_size:
            idle.append(sb)
            if self._closed:  # close() may have emptied the list before the append: empty it again
                self._drain_idle()
        else:
            try:
                pool._h.put(sb)
            except Error:
                pass  # the pool is closed: put freed it
        return result

    def _drain_idle(self) -> None:
        """Closes the idle sandboxes; each is popped (atomically) by one thread only."""
        while True:
            try:
                sb = self._idle.pop()
            except IndexError:
                return
            sb.close()

    async def arun(self, code: str, **kwargs: Any) -> Result:
        """run(code, ...) on a thread of the event loop's default executor, so the loop goes
        on. Cancelling the awaiting task does not stop the run; its timeout does."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self.run, code, **kwargs))

    def _run_persistent(self, parts: tuple[str, ...], timeout: float | None, limit: int) -> Result:
        with self._lock:
            sb = self._sb
            if sb is None:
                raise _hyperlight.SandboxClosed("the interpreter is closed")
            before = sb.snapshot() if self.checkpoint else None  # what a stopped run goes back to
            try:
                try:
                    result, poisoned = _call(sb._h, parts, timeout, limit, self.timeout)
                except BaseException:  # Ctrl-C: the call was stopped, the sandbox poisoned
                    sb.restore(before or self._fresh)
                    raise
                if poisoned:
                    sb.restore(before or self._fresh)
                    if before is None and result.error is not None:
                        result.error.message += " (the interpreter's state was reset)"
            finally:
                if before is not None:
                    before.close()
            return result

    def reset(self) -> None:
        """Back to the fresh interpreter (persistent; a pool's sandboxes are fresh anyway)."""
        with self._lock:
            if self._sb is not None:
                self._sb.restore(self._fresh)

    def tool_description(self) -> dict[str, Any]:
        """The tool schema of this interpreter's language (tool_schema)."""
        return tool_schema(self.language, persistent=self.persistent)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Frees the sandboxes and the snapshot; later runs raise SandboxClosed. Twice is fine."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._pool is not None:
                pool, self._pool = self._pool, None
                self._drain_idle()
                pool.close()
            if self._sb is not None:
                self._sb.close()
                self._sb = None
            self._fresh.close()

    def __enter__(self) -> "Interpreter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "persistent" if self.persistent else "pooled"
        return f"<hyperlight.Interpreter {self.language} {mode}{' closed' if self._closed else ''}>"


# run()'s interpreters, one per language, made on first use and kept warm; _by_name has them
# by the names run() was given ("js", "Lua", ...), so that a run looks its language up once.
_shared: dict[str, Interpreter] = {}
_by_name: dict[str, Interpreter] = {}
_shared_lock = threading.Lock()


def _shared_interpreter(language: str) -> Interpreter:
    interp = _shared.get(language)
    if interp is None:
        with _shared_lock:
            interp = _shared.get(language)
            if interp is None:
                interp = _shared[language] = Interpreter(language)
    return interp


def run(code: str, language: str = "python", timeout: float | None = DEFAULT_TIMEOUT, *,
        max_output: int = DEFAULT_MAX_OUTPUT) -> Result:
    """Runs code in a fresh interpreter of language ("lua", "javascript"/"js",
    "python"/"py") and returns a Result: stdout, stderr, value, error, exit_code, duration.

    The code is evaluated with the guest's Eval, once: value is the value of the code, decoded
    from JSON (Python: the value of its last expression, as in a notebook, None after a
    statement; JavaScript: the completion value, None for undefined; Lua: the value of the
    code as an expression, else what the chunk returns). The
    first call per language boots a shared Interpreter (a pool of 2); later calls take a warm
    sandbox, restored after the run. Thread-safe."""
    t = timeout if type(timeout) is float and timeout > 0 else _check_timeout(timeout)
    interp = _by_name.get(language) if type(language) is str else None
    if interp is None:
        interp = _shared_interpreter(_canonical(language))
        _by_name[language] = interp
    _check_code(code, interp.max_code)  # the checks in Interpreter.run's order
    limit = max_output if type(max_output) is int and max_output >= 0 else _check_size("max_output", max_output)
    return interp._run(code, t, limit)


_TOOL_NOTES = {
    "python": "MicroPython 1.25 (Python 3 syntax; modules: json, math, re, random, collections, struct, ...; "
              "no files, network or clock)",
    "javascript": "QuickJS (ES2023; no files, network or clock)",
    "lua": "Lua 5.4 (standard libraries; no files, network or clock)",
}


def tool_schema(language: str = "python", *, name: str | None = None, persistent: bool = False) -> dict[str, Any]:
    """The JSON schema of a code tool in language, as agent frameworks register tools:
    {"name", "description", "parameters": {"type": "object", "properties": {"code": ...},
    "required": ["code"]}} (OpenAI's "function" and Anthropic's "input_schema" take the same
    parameters object)."""
    lang = _canonical(language)
    state = ("State (variables, functions) persists from call to call." if persistent else
             "Every call starts from a fresh interpreter: nothing persists between calls.")
    desc = (f"Runs {lang} code in an isolated sandbox and returns its stdout, stderr, the value of the code "
            f"(the last expression, as JSON) and any error with its traceback. {_TOOL_NOTES[lang]}. {state}")
    return {
        "name": name or f"run_{lang}",
        "description": desc,
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": f"the {lang} code to run"}},
            "required": ["code"],
            "additionalProperties": False,
        },
    }

"""hyperlight: run guest functions inside KVM micro-VMs (the hyperlight-c host library).

    import hyperlight
    with hyperlight.Sandbox("build/guests/demo.elf") as sb:
        sb.call("Add", 40, 2)          # 42

docs/python.md is the guide; include/hyperlight.h documents the library underneath.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import os
import weakref
from typing import Annotated, Any, Callable, Iterator, Mapping, NamedTuple, Sequence, Union, get_args, get_origin
from contextlib import contextmanager

from . import _hyperlight
from ._hyperlight import (
    BadGuest,
    Busy,
    Cancelled,
    Error,
    FileError,
    GuestAborted,
    GuestError,
    GuestFault,
    HypervisorError,
    InvalidArgument,
    NotFound,
    OutOfMemory,
    ProtocolError,
    SandboxClosed,
    SignatureMismatch,
    Snapshot,
    StateError,
    SystemFailure,
    Timeout,
    TooLarge,
)

__all__ = [
    "Sandbox", "Snapshot", "Pool", "Function", "HostFunction", "HostError", "HOST_FN_ERROR", "TYPES",
    "BoundaryType", "i32", "u32", "i64", "u64", "f32", "f64",
    "Error", "InvalidArgument", "NotFound", "SignatureMismatch", "GuestError", "GuestAborted",
    "GuestFault", "ProtocolError", "StateError", "OutOfMemory", "HypervisorError", "BadGuest",
    "FileError", "Cancelled", "Timeout", "SystemFailure", "TooLarge", "SandboxClosed", "Busy",
]

#: The names of the boundary's types (hl_type), as signatures spell them.
TYPES = ("void", "i32", "u32", "i64", "u64", "f32", "f64", "bool", "string", "bytes")

# What an annotation of a host function means when it is a Python type, not a type name.
_ANNOTATIONS = {int: "i64", float: "f64", bool: "bool", str: "string", bytes: "bytes", None: "void",
                type(None): "void"}


class BoundaryType(str):
    """The boundary type an annotation names: i32 = Annotated[int, BoundaryType("i32")]."""


# Annotations for host functions whose types are not int -> i64, float -> f64:
# def f(x: hyperlight.i32) -> hyperlight.u32. Type checkers see the Python type.
i32 = Annotated[int, BoundaryType("i32")]
u32 = Annotated[int, BoundaryType("u32")]
i64 = Annotated[int, BoundaryType("i64")]
u64 = Annotated[int, BoundaryType("u64")]
f32 = Annotated[float, BoundaryType("f32")]
f64 = Annotated[float, BoundaryType("f64")]

_ANNOTATION_NAMES = {"int": int, "float": float, "bool": bool, "str": str, "bytes": bytes, "None": None}

Guest = Union[str, "os.PathLike[str]", bytes, Snapshot]


class Function(NamedTuple):
    """A guest function's signature: Function("Add", "i32", ("i32", "i32"))."""

    name: str
    returns: str
    params: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(self.params)}) -> {self.returns}"


class HostError(Exception):
    """Raise it in a host function to fail the host call with code (a nonzero int32) and
    message: the guest receives exactly those. Any other exception reaches the guest as
    code HOST_FN_ERROR (-4, HL_GUEST_ERR_HOST_FN) and "TypeName: message"."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


#: The code a host function's exception other than HostError gives the guest.
HOST_FN_ERROR = _hyperlight.HOST_FN_ERROR


class HostFunction:
    """A Python callable the guest may call, with its signature.

    HostFunction(fn) reads the signature from fn's annotations: int is i64, float f64, str
    string, bytes bytes, bool bool, None void, and hyperlight.i32, u32, i64, u64, f32, f64 the
    types they name (an annotation may also be a type name as a string: "i32"). params and
    returns given explicitly take precedence.
    """

    def __init__(self, fn: Callable[..., Any], params: Sequence[str] | None = None,
                 returns: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"a host function must be callable, not {type(fn).__name__}")
        self.fn = fn
        if params is None or returns is None:
            try:  # `from __future__ import annotations` makes them strings: evaluate them
                sig = inspect.signature(fn, eval_str=True)
            except Exception:  # a type name as a string ("i32") is not an expression
                sig = inspect.signature(fn)
            if params is None:
                params = [_type_of(fn, p.name, p.annotation) for p in sig.parameters.values()]
            if returns is None:
                returns = _type_of(fn, "return", sig.return_annotation)
        self.params = tuple(params)
        self.returns = returns
        for t in (*self.params, self.returns):
            if t not in TYPES:
                raise ValueError(f"unknown type {t!r} (one of: {', '.join(TYPES)})")

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def __repr__(self) -> str:
        return f"HostFunction({self.fn!r}, params={list(self.params)!r}, returns={self.returns!r})"


def _type_of(fn: Callable[..., Any], what: str, annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        raise TypeError(f"host function {getattr(fn, '__name__', fn)!r}: {what} has no annotation "
                        "(annotate it, or use HostFunction(fn, params=..., returns=...))")
    if get_origin(annotation) is Annotated:
        for meta in get_args(annotation)[1:]:
            if isinstance(meta, BoundaryType):
                return str(meta)
        annotation = get_args(annotation)[0]
    if isinstance(annotation, str):  # a type name, or a Python type under `from __future__ import annotations`
        if annotation in TYPES:
            return annotation
        annotation = _ANNOTATION_NAMES.get(annotation, annotation)
    try:
        return _ANNOTATIONS[annotation]
    except (KeyError, TypeError):
        raise TypeError(f"host function {getattr(fn, '__name__', fn)!r}: {what} is annotated "
                        f"{annotation!r}, which has no boundary type") from None


def _host_table(host_functions: Mapping[str, Callable[..., Any]] | None) -> list[tuple]:
    if not host_functions:
        return []
    table = []
    for name, fn in host_functions.items():
        h = fn if isinstance(fn, HostFunction) else HostFunction(fn)
        table.append((name, h.fn, h.returns, h.params))
    return table


def _file_table(files: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    if files is None:
        return None
    if not isinstance(files, Mapping):
        raise TypeError(f"files must be a mapping of label to path, not {type(files).__name__}")
    return [(label, os.fspath(path)) for label, path in files.items()]


def _is_snapshot_file(guest: Any) -> bool:
    if isinstance(guest, (bytes, bytearray, memoryview, Snapshot)):
        return False
    try:
        with open(guest, "rb") as f:
            return f.read(len(_hyperlight.SNAPSHOT_MAGIC)) == _hyperlight.SNAPSHOT_MAGIC.encode()
    except (OSError, TypeError, ValueError):
        return False  # the library reports what is wrong with it


class Sandbox:
    """A guest in a micro-VM: Sandbox(guest, *, heap=None, stack=None, timeout=None,
    host_functions=None, print=None, log=None, files=None).

    guest: the path of a guest ELF or of a snapshot file, the ELF's bytes, or a Snapshot.
    heap, stack: sizes in bytes (defaults: the library's). timeout: seconds per call.
    host_functions: {name: callable or HostFunction}. files: {label: path} of host files
    mapped read-only into the guest, which opens them by label (hl_config_map_file; a snapshot
    keeps the files it was taken with). print(stream, text): the guest's
    stdout (1) and stderr (2), by default the process's stdout. log(level, message, file,
    line): the guest's log records, by default dropped.

    One sandbox runs one call at a time (a second, concurrent call raises Busy); many
    sandboxes run in parallel on many threads: the GIL is released while the guest runs.
    """

    def __init__(self, guest: Guest, *, heap: int | None = None, stack: int | None = None,
                 timeout: float | None = None,
                 host_functions: Mapping[str, Callable[..., Any]] | None = None,
                 print: Callable[[int, str], Any] | None = None,
                 log: Callable[[int, str, str, int], Any] | None = None,
                 files: Mapping[str, str | os.PathLike[str]] | None = None) -> None:
        if _is_snapshot_file(guest):
            with Snapshot.load(guest) as snap:
                self._adopt(_hyperlight.Sandbox(snap, timeout=timeout, host_functions=_host_table(host_functions),
                                                print=print, log=log))
            return
        self._adopt(_hyperlight.Sandbox(guest, heap=heap, stack=stack, timeout=timeout,
                                        host_functions=_host_table(host_functions), print=print, log=log,
                                        files=_file_table(files)))

    def _adopt(self, handle: _hyperlight.Sandbox) -> None:
        self._h = handle
        # The C method itself: sb.call costs no Python frame.
        self.call: Callable[..., Any] = handle.call
        self.interrupt: Callable[[], None] = handle.interrupt

    @classmethod
    def _wrap(cls, handle: _hyperlight.Sandbox) -> "Sandbox":
        self = cls.__new__(cls)
        self._adopt(handle)
        return self

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, **kwargs: Any) -> "Sandbox":
        """A new sandbox in snapshot's state (the same as Sandbox(snapshot, ...))."""
        return cls(snapshot, **kwargs)

    def call(self, name: str, *args: Any) -> Any:  # replaced per instance by the C method
        """Calls guest function name with args, typed by its signature; returns its value."""
        return self._h.call(name, *args)

    def interrupt(self) -> None:  # replaced per instance by the C method
        """Stops the running call from any thread (it raises Cancelled; the sandbox is poisoned)."""
        self._h.interrupt()

    async def acall(self, name: str, *args: Any) -> Any:
        """call() on a thread of the event loop's default executor, not blocking the loop.
        Cancelling the awaiting task interrupts the call."""
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, functools.partial(self._h.call, name, *args))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            self._h.interrupt()
            # the call now ends as Cancelled, which nobody awaits: retrieve it, unlogged
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise

    @property
    def functions(self) -> list[Function]:
        """The guest's functions and their signatures, sorted by name."""
        return sorted(Function(n, r, p) for n, r, p in self._h.functions())

    @property
    def state(self) -> str:
        """"ready", "poisoned" (restore() makes it ready), "unrecoverable" or "closed"."""
        return self._h.state

    @property
    def closed(self) -> bool:
        return self._h.closed

    def set_timeout(self, seconds: float | None) -> None:
        """The time limit of the following calls (None: none), overriding the constructor's."""
        self._h.set_timeout(seconds)

    def snapshot(self) -> Snapshot:
        """The sandbox's state now (it must be ready)."""
        return self._h.snapshot()

    def restore(self, snapshot: Snapshot) -> None:
        """Puts the sandbox (ready or poisoned) back to snapshot's state; it is then ready."""
        self._h.restore(snapshot)

    def close(self) -> None:
        """Frees the VM. Later calls raise SandboxClosed; closing twice is fine."""
        self._h.close()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<hyperlight.Sandbox {self.state}>"


# Pools still open at exit are closed before the interpreter goes away: a background filler
# must not run a print or log function then.
_open_pools: "weakref.WeakSet[Pool]" = weakref.WeakSet()


@atexit.register
def _close_pools() -> None:
    for pool in list(_open_pools):
        pool.close()


class Pool:
    """Sandboxes made from snapshot ahead of need: Pool(snapshot, size, *, background=False,
    timeout=None, host_functions=None, print=None, log=None).

        with pool.sandbox() as sb:
            sb.call(...)      # afterwards sb is restored and given back

    Thread-safe. With background, a thread keeps size sandboxes ready.
    """

    def __init__(self, snapshot: Snapshot, size: int, *, background: bool = False, timeout: float | None = None,
                 host_functions: Mapping[str, Callable[..., Any]] | None = None,
                 print: Callable[[int, str], Any] | None = None,
                 log: Callable[[int, str, str, int], Any] | None = None) -> None:
        self._h = _hyperlight.Pool(snapshot, size, background=background, timeout=timeout,
                                   host_functions=_host_table(host_functions), print=print, log=log)
        _open_pools.add(self)

    def get(self) -> Sandbox:
        """A ready sandbox in the snapshot's state; give it back with put()."""
        return Sandbox._wrap(self._h.get())

    def put(self, sandbox: Sandbox) -> None:
        """Restores sandbox and gives it back (it is closed for its user)."""
        self._h.put(sandbox._h)

    @contextmanager
    def sandbox(self) -> Iterator[Sandbox]:
        sb = self.get()
        try:
            yield sb
        finally:
            if not sb.closed:
                self.put(sb)

    @property
    def ready(self) -> int:
        return self._h.ready

    def close(self) -> None:
        self._h.close()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# The language guests (Lua, JavaScript, Python: include/hyperlight/lang.h): hyperlight.run,
# hyperlight.Interpreter and the tool schema for agents (interpreter.py).
from .interpreter import (  # noqa: E402
    LANGUAGES,
    GuestNotFound,
    Interpreter,
    Result,
    RunError,
    find_guest,
    run,
    tool_schema,
)

__all__ += ["run", "Interpreter", "Result", "RunError", "GuestNotFound", "LANGUAGES", "find_guest", "tool_schema"]

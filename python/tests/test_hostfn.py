"""Python host functions: every type, signatures from annotations or given, exceptions and
wrong results reaching the guest as host-function errors without poisoning the sandbox."""

import pytest

import hyperlight
from conftest import CALLS, DEMO


def plus(x, n):
    return x + n


def hosts(**extra):
    fns = {
        "HostI32": hyperlight.HostFunction(lambda x: x + 1, params=["i32"], returns="i32"),
        "HostU32": hyperlight.HostFunction(lambda x: x * 2, params=["u32"], returns="u32"),
        "HostI64": hyperlight.HostFunction(lambda x: -x, params=["i64"], returns="i64"),
        "HostU64": hyperlight.HostFunction(lambda x: x // 2, params=["u64"], returns="u64"),
        "HostF32": hyperlight.HostFunction(lambda x: x * 4, params=["f32"], returns="f32"),
        "HostF64": hyperlight.HostFunction(lambda x: x / 4, params=["f64"], returns="f64"),
        "HostBool": hyperlight.HostFunction(lambda x: not x, params=["bool"], returns="bool"),
        "HostString": hyperlight.HostFunction(lambda s: s.upper() + "!", params=["string"], returns="string"),
        "HostBytes": hyperlight.HostFunction(lambda b: b[::-1], params=["bytes"], returns="bytes"),
    }
    fns.update(extra)
    return fns


def test_round_trips():
    with hyperlight.Sandbox(CALLS, host_functions=hosts()) as sb:
        assert sb.call("HostEchoI32", -5) == -4
        assert sb.call("HostEchoU32", 21) == 42
        assert sb.call("HostEchoI64", 2**62) == -(2**62)
        assert sb.call("HostEchoU64", 2**64 - 2) == 2**63 - 1
        assert sb.call("HostEchoF32", 1.5) == 6.0
        assert sb.call("HostEchoF64", 1.0) == 0.25
        assert sb.call("HostEchoBool", True) is False
        assert sb.call("HostEchoString", "héllo") == "HÉLLO!"
        assert sb.call("HostEchoBytes", b"\x00\x01\x02") == b"\x02\x01\x00"


def test_annotations():
    def host_i64(x: int) -> int:
        return x * 3

    def host_multi(a: "i32", s: str, f: float, b: bytes, t: bool) -> str:  # noqa: F821 (a type name)
        return f"{a}|{s}|{f}|{b!r}|{t}"

    def host_void() -> None:
        calls.append(1)

    calls = []
    with hyperlight.Sandbox(CALLS, host_functions={"HostI64": host_i64, "HostMulti": host_multi,
                                                     "HostVoid": host_void}) as sb:
        assert sb.call("HostEchoI64", -7) == -21
        assert sb.call("HostMulti", 7, "s", 0.5, b"\xff", True) == "7|s|0.5|b'\\xff'|True"
        assert sb.call("HostEchoVoid") == 2 and calls == [1, 1]


def test_demo_say_hello():
    def weekday() -> str:
        return "Friday"

    with hyperlight.Sandbox(DEMO, host_functions={"GetWeekday": weekday}) as sb:
        assert sb.call("SayHello", "Bob") == "Hello, Bob! Today is Friday."


def test_bad_signatures():
    with pytest.raises(TypeError, match=r"^host function 'plus': x has no annotation"):
        hyperlight.HostFunction(plus)
    with pytest.raises(TypeError, match=r"^host function 'f': x is annotated <class 'list'>, which has no boundary"):
        def f(x: list) -> int: ...
        hyperlight.HostFunction(f)
    with pytest.raises(ValueError, match=r"^unknown type 'i8'"):
        hyperlight.HostFunction(plus, params=["i8", "i32"], returns="i32")
    with pytest.raises(TypeError, match=r"^a host function must be callable, not int"):
        hyperlight.HostFunction(3)
    with pytest.raises(hyperlight.InvalidArgument):
        hyperlight.Sandbox(CALLS, host_functions={"hl.x": hyperlight.HostFunction(plus, ["i32", "i32"], "i32")})


def test_exception_reaches_guest():
    def fail(code: hyperlight.i32) -> hyperlight.i32:
        raise ValueError(f"no to {code}")

    with hyperlight.Sandbox(CALLS, host_functions={"HostFail": fail}) as sb:
        assert sb.call("CallHostFail", 3) == "rc=-4 err=ValueError: no to 3"
        assert sb.state == "ready"
        assert sb.call("EchoI32", 5) == 5


def test_host_error_code():
    def fail(code: hyperlight.i32) -> hyperlight.i32:
        raise hyperlight.HostError(code, f"host says no to {code}")

    with hyperlight.Sandbox(CALLS, host_functions={"HostFail": fail}) as sb:
        assert sb.call("CallHostFail", 1234) == "rc=1234 err=host says no to 1234"
        assert sb.call("CallHostFail", -77) == "rc=-77 err=host says no to -77"


def test_exception_becomes_guest_error():
    def boom(x: hyperlight.i32) -> hyperlight.i32:
        raise RuntimeError("boom")

    with hyperlight.Sandbox(CALLS, host_functions={"HostI32": boom}) as sb:
        with pytest.raises(hyperlight.GuestError) as e:
            sb.call("HostEchoI32", 1)
        assert str(e.value) == "guest function 'HostEchoI32' failed with code -4: HostI32: RuntimeError: boom"
        assert e.value.code == -4 and e.value.guest_message == "HostI32: RuntimeError: boom"
        assert sb.state == "ready"


@pytest.mark.parametrize(
    "ret,types,result,message",
    [
        ("x", ("i32", "i32"), "str", "HostI32() return value must be int (i32), not str"),
        (None, ("i32", "i32"), None, "HostI32() return value must be int (i32), not NoneType"),
        (2**40, ("i32", "i32"), None, "HostI32() return value: 1099511627776 is out of range for i32"),
        ("a\0b", ("string", "string"), None, "HostString() return value: a string cannot hold a NUL character"),
        (b"x", ("string", "string"), None, "HostString() return value must be str (string), not bytes"),
    ],
)
def test_wrong_result(ret, types, result, message):
    name = "HostI32" if types[0] == "i32" else "HostString"
    h = hyperlight.HostFunction(lambda x: ret, params=[types[1]], returns=types[0])
    with hyperlight.Sandbox(CALLS, host_functions={name: h}) as sb:
        with pytest.raises(hyperlight.GuestError) as e:
            sb.call("HostEcho" + ("I32" if name == "HostI32" else "String"), 1 if name == "HostI32" else "s")
        assert e.value.guest_message == f"{name}: {message}"
        assert sb.state == "ready"


def test_refused_host_calls():
    with hyperlight.Sandbox(CALLS, host_functions=hosts()) as sb:
        assert sb.call("CallHostBad", 0) == "rc=-4 err=host function 'NoSuchHostFn' not found"
        assert sb.call("CallHostBad", 1) == (
            "rc=-4 err=wrong type for argument 0 of host function 'HostI32': expected i32, got string")
        assert sb.call("CallHostBad", 7) == "rc=0 i32=42"


def test_host_function_calls_other_sandbox():
    with hyperlight.Sandbox(CALLS) as inner:
        def nested(x: hyperlight.i32) -> hyperlight.i32:
            return inner.call("Add", x, 100)

        with hyperlight.Sandbox(CALLS, host_functions={"HostI32": nested}) as outer:
            assert outer.call("HostEchoI32", 1) == 101


def test_reentrant_call_is_busy():
    box = {}

    def again(x: hyperlight.i32) -> hyperlight.i32:
        return box["sb"].call("Add", 1, 2)

    with hyperlight.Sandbox(CALLS, host_functions={"HostI32": again}) as sb:
        box["sb"] = sb
        with pytest.raises(hyperlight.GuestError) as e:
            sb.call("HostEchoI32", 1)
        assert e.value.guest_message == (
            "HostI32: Busy: the sandbox is running a call (one sandbox runs one call at a time)")
        assert sb.state == "ready"
        assert sb.call("Add", 1, 2) == 3


def test_print_and_log():
    out, logs = [], []
    with hyperlight.Sandbox(CALLS, print=lambda s, t: out.append((s, t)),
                            log=lambda *a: logs.append(a)) as sb:
        assert logs == [(2, "calls_guest: 46 functions registered", logs[0][2], logs[0][3])]
        sb.call("PrintMixed")
        assert "".join(t for s, t in out if s == 1) == "out 1 puts line\ntail!raw\n"
        assert "".join(t for s, t in out if s == 2) == "err 2\nE"
        assert [l[:2] for l in logs[1:]] == [(2, "log one"), (3, "log two")]


def test_print_exception_is_unraisable():
    seen = []
    import sys

    old = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u.exc_value)
    try:
        def bad_print(stream, text):
            raise ValueError("printer on fire")

        with hyperlight.Sandbox(CALLS, print=bad_print) as sb:
            assert sb.call("PrintThenRet", 3, 4) == "abcd"
    finally:
        sys.unraisablehook = old
    assert [str(e) for e in seen] == ["printer on fire"]


def test_system_exit_ends_the_call():
    def leave(x: hyperlight.i32) -> hyperlight.i32:
        raise SystemExit(3)

    with hyperlight.Sandbox(CALLS, host_functions={"HostI32": leave}) as sb:
        with pytest.raises(SystemExit) as e:
            sb.call("HostEchoI32", 1)
        assert e.value.code == 3
        assert sb.state == "poisoned"  # the call was interrupted: restore() makes it ready


def test_elf_from_bytes():
    with hyperlight.Sandbox(DEMO.read_bytes()) as sb:
        assert sb.call("Add", 2, 2) == 4
    with hyperlight.Sandbox(memoryview(DEMO.read_bytes())) as sb:
        assert sb.call("Echo", "mv") == "mv"


def test_annotated_types():
    def f32(x: hyperlight.f32) -> hyperlight.f32:
        return x * 4

    def u32(x: hyperlight.u32) -> hyperlight.u32:
        return x * 2

    h = hyperlight.HostFunction(f32)
    assert (h.params, h.returns) == (("f32",), "f32")
    with hyperlight.Sandbox(CALLS, host_functions={"HostF32": f32, "HostU32": u32}) as sb:
        assert sb.call("HostEchoF32", 1.5) == 6.0
        assert sb.call("HostEchoU32", 21) == 42


def test_future_annotations():
    ns = {"hyperlight": hyperlight}
    exec("from __future__ import annotations\n"
         "def f(x: hyperlight.i32, s: str, b: bytes) -> int: ...\n"
         "def g(x: int, y: float) -> None: ...\n", ns)
    assert (hyperlight.HostFunction(ns["f"]).params, hyperlight.HostFunction(ns["f"]).returns) == (
        ("i32", "string", "bytes"), "i64")
    assert (hyperlight.HostFunction(ns["g"]).params, hyperlight.HostFunction(ns["g"]).returns) == (
        ("i64", "f64"), "void")


def test_print_bytes_not_utf8():
    out = []
    with hyperlight.Sandbox(CALLS, print=lambda s, t: out.append((s, t))) as sb:
        assert sb.call("WriteOut", 1, b"ok \xff\xfe end\n") == 10
        assert sb.call("WriteOut", 2, "é".encode()) == 2
    assert out == [(1, "ok \ufffd\ufffd end\n"), (2, "é")]

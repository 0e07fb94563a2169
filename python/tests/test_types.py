"""Every boundary type through the demo and calls guests, and what is refused before the guest runs."""

import math
import struct

import pytest

import hyperlight


def test_demo(demo):
    assert demo.call("Add", 40, 2) == 42
    assert demo.call("Add", 2**31 - 1, 1) == -(2**31)  # wraps like the guest's i32
    assert demo.call("Echo", "hello") == "hello"
    assert demo.call("CountPrimes", 1000) == 168
    assert demo.call("SayHello", "Ada") == "Hello, Ada! Today is Tuesday."


def test_functions(demo):
    fns = demo.functions
    assert [str(f) for f in fns] == [
        "Add(i32, i32) -> i32",
        "CountPrimes(u32) -> u32",
        "Echo(string) -> string",
        "SayHello(string) -> string",
    ]
    assert fns[0] == hyperlight.Function("Add", "i32", ("i32", "i32"))
    assert fns[0].params == ("i32", "i32") and fns[0].returns == "i32"


@pytest.mark.parametrize(
    "fn,values",
    [
        ("EchoI32", [0, 1, -1, 2**31 - 1, -(2**31)]),
        ("EchoU32", [0, 1, 2**32 - 1]),
        ("EchoI64", [0, -1, 2**63 - 1, -(2**63)]),
        ("EchoU64", [0, 2**63, 2**64 - 1]),
        ("EchoF64", [0.0, -0.0, 1.5, -1e300, 5e-324, math.inf, -math.inf]),
        ("EchoF32", [0.0, 1.5, -2.0**100, 3.4028234663852886e38, math.inf]),
        ("EchoBool", [True, False]),
        ("EchoString", ["", "hello", "héllo wörld ✓ 🎉", "x" * 100000]),
        ("EchoBytes", [b"", b"\x00\x01\xff", bytes(range(256)) * 100]),
    ],
)
def test_echo(calls, fn, values):
    for v in values:
        r = calls.call(fn, v)
        assert r == v and type(r) is type(v)


def test_f32_rounds(calls):
    r = calls.call("EchoF32", 0.1)
    assert r == struct.unpack("f", struct.pack("f", 0.1))[0] and r != 0.1


def test_nan(calls):
    assert math.isnan(calls.call("EchoF64", math.nan))
    assert math.isnan(calls.call("EchoF32", math.nan))


def test_int_to_float_and_bytes_like(calls):
    assert calls.call("EchoF64", 3) == 3.0
    assert calls.call("EchoBytes", bytearray(b"ab")) == b"ab"
    assert calls.call("EchoBytes", memoryview(b"xyz")[1:]) == b"yz"


def test_void_and_mixed(calls):
    assert calls.call("Nop") is None
    r = calls.call("Mixed16", -5, 7, -(2**40), 2**64 - 1, 1.5, -2.25, True, "héllo", b"\x01\x02", 3, "", 9,
                   False, 2**62, b"", 4)
    assert r == ("-5|7|-1099511627776|18446744073709551615|3fc00000|c002000000000000|1|héllo|2:"
                 + r.split("|")[8].split(":")[1] + "|3||9|0|4611686018427387904|0:cbf29ce484222325|4|argc=16")


@pytest.mark.parametrize(
    "fn,value,message",
    [
        ("EchoI32", 2**31, "EchoI32() argument 1: 2147483648 is out of range for i32"),
        ("EchoI32", -(2**31) - 1, "EchoI32() argument 1: -2147483649 is out of range for i32"),
        ("EchoU32", -1, "EchoU32() argument 1: -1 is out of range for u32"),
        ("EchoU32", 2**32, "EchoU32() argument 1: 4294967296 is out of range for u32"),
        ("EchoI64", 2**63, "EchoI64() argument 1: 9223372036854775808 is out of range for i64"),
        ("EchoU64", -1, "EchoU64() argument 1: -1 is out of range for u64"),
        ("EchoU64", 2**64, "EchoU64() argument 1: 18446744073709551616 is out of range for u64"),
        ("EchoF32", 1e39, "EchoF32() argument 1: 1e+39 is out of range for f32"),
        ("EchoF64", 10**400, "EchoF64() argument 1: 1000000000000000"),
    ],
)
def test_overflow(calls, fn, value, message):
    with pytest.raises(OverflowError) as e:
        calls.call(fn, value)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize(
    "fn,value,message",
    [
        ("EchoI32", "1", "EchoI32() argument 1 must be int (i32), not str"),
        ("EchoI32", 1.0, "EchoI32() argument 1 must be int (i32), not float"),
        ("EchoI32", True, "EchoI32() argument 1 must be int (i32), not bool"),
        ("EchoU64", None, "EchoU64() argument 1 must be int (u64), not NoneType"),
        ("EchoF64", "1.0", "EchoF64() argument 1 must be float (f64), not str"),
        ("EchoF32", False, "EchoF32() argument 1 must be float (f32), not bool"),
        ("EchoBool", 1, "EchoBool() argument 1 must be bool (bool), not int"),
        ("EchoString", b"x", "EchoString() argument 1 must be str (string), not bytes"),
        ("EchoBytes", "x", "EchoBytes() argument 1 must be bytes (bytes), not str"),
        ("EchoBytes", [1], "EchoBytes() argument 1 must be bytes (bytes), not list"),
    ],
)
def test_wrong_type(calls, fn, value, message):
    with pytest.raises(TypeError) as e:
        calls.call(fn, value)
    assert str(e.value) == message
    assert calls.call("Counter") == 1  # the refused call never reached the guest


def test_wrong_count(calls):
    with pytest.raises(TypeError, match=r"^Add\(\) takes 2 arguments but 3 were given$"):
        calls.call("Add", 1, 2, 3)
    with pytest.raises(TypeError, match=r"^EchoI32\(\) takes 1 argument but 0 were given$"):
        calls.call("EchoI32")
    with pytest.raises(TypeError, match=r"^call\(\) needs the guest function's name"):
        calls.call()
    with pytest.raises(TypeError, match=r"^call\(\) needs the guest function's name"):
        calls.call(42)
    assert calls.call("Counter") == 1


def test_bad_strings(calls):
    with pytest.raises(ValueError, match=r"^EchoString\(\) argument 1: a string cannot hold a NUL character$"):
        calls.call("EchoString", "a\0b")
    with pytest.raises(UnicodeEncodeError):
        calls.call("EchoString", "\udcff")


def test_not_found(calls):
    with pytest.raises(hyperlight.NotFound, match=r"^guest function 'Nope' not found$") as e:
        calls.call("Nope")
    assert isinstance(e.value, LookupError) and e.value.status == "HL_ERR_NOT_FOUND"


def test_large_values(calls):
    assert calls.call("RetString", 200000) == ("abcdefghijklmnopqrstuvwxyz" * 8000)[:200000]
    assert calls.call("MaxBytes", 1000) == bytes((i * 7 + 3) & 0xFF for i in range(1000))
    with pytest.raises(hyperlight.TooLarge, match=r"do not fit the input buffer \(262144 bytes\)"):
        calls.call("EchoString", "x" * 300000)
    assert calls.state == "ready"

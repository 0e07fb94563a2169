"""hyperlight.run and hyperlight.Interpreter on the three language guests: values, errors,
time and output limits, persistence, pools, threads, leaks and bad input. A language whose
guest was not built is SKIPPED with the path it was looked for at."""

import gc
import json
import os
import signal
import subprocess
import sys
import threading

import pytest

import hyperlight
from conftest import BUILD, ROOT, TIME_SCALE

LANGS = ["lua", "javascript", "python"]


def guest(lang):
    path = BUILD / "guests" / f"{lang}.elf"
    if not path.is_file():
        pytest.skip(f"{path} is not built")
    return path


@pytest.fixture(params=LANGS)
def lang(request):
    guest(request.param)
    return request.param


@pytest.fixture
def interp(lang):
    with hyperlight.Interpreter(lang, pool_size=1) as i:
        yield i


# (value, Lua, JavaScript, Python): the code whose value is value.
VALUES = [
    (42, "42", "42", "42"),
    (-1.5, "-1.5", "-1.5", "-1.5"),
    ("h\u00e9llo \"q\"\n", '"h\u00e9llo \\"q\\"\\n"', '"h\u00e9llo \\"q\\"\\n"', '"h\u00e9llo \\"q\\"\\n"'),
    ([1, "two", 3.5, True, False], '{1, "two", 3.5, true, false}', '[1, "two", 3.5, true, false]',
     '[1, "two", 3.5, True, False]'),
    ({"a": 1, "b": [1, 2], "c": {"d": "e"}}, '{a=1, b={1, 2}, c={d="e"}}', '({a: 1, b: [1, 2], c: {d: "e"}})',
     '{"a": 1, "b": [1, 2], "c": {"d": "e"}}'),
    (None, "nil", "null", "None"),
    ([[], [[1]]], None, "[[], [[1]]]", "[[], [[1]]]"),  # an empty Lua table is an object
    (2**62, "1 << 62", None, "2**62"),  # JavaScript numbers are doubles
]


VALUE_CASES = [(lang, code, v[0]) for v in VALUES for lang, code in zip(LANGS, v[1:]) if code is not None]


@pytest.mark.parametrize("language,code,value", VALUE_CASES, ids=[f"{c[0]}-{c[1]}"[:30] for c in VALUE_CASES])
def test_values(language, code, value):
    guest(language)
    r = hyperlight.run(code, language)
    assert r.error is None
    assert r.value == value and type(r.value) is type(value)
    assert (r.stdout, r.stderr, r.exit_code) == ("", "", None)
    assert 0 < r.duration < 1 * TIME_SCALE


PRINTS = {
    "lua": "print('out', 1) io.stderr:write('err\\n') return 7",
    "javascript": "console.log('out', 1); console.error('err'); 7",
    "python": "import sys\nprint('out', 1)\nprint('err', file=sys.stderr)\n7",
}


def test_output_and_value(interp):
    r = interp.run(PRINTS[interp.language])
    assert (r.stdout, r.stderr, r.value, r.error) == ("out\t1\n" if interp.language == "lua" else "out 1\n",
                                                      "err\n", 7, None)


def test_statements_have_no_value(interp):
    code = {"lua": "local x = 1", "javascript": "var x = 1; console.log(x)", "python": "x = 1"}
    r = interp.run(code[interp.language])
    assert (r.value, r.error) == (None, None)


ERRORS = {
    "lua": ("error('boom')", "runtime", "eval:1: boom",
            "stack traceback:\n\t[C]: in function 'error'\n\teval:1: in main chunk\n\t[C]: in ?"),
    "javascript": ("throw new Error('boom')", "Error", "boom", "    at <eval> (<eval>:1:16)\n"),
    "python": ("raise ValueError('boom')", "ValueError", "boom",
               'Traceback (most recent call last):\n  File "<eval>", line 1, in <module>\nValueError: boom'),
}


def test_error(interp):
    code, typ, message, traceback = ERRORS[interp.language]
    r = interp.run(code)
    assert r.error == hyperlight.RunError("script", typ, message, traceback)
    assert (r.value, r.ok) == (None, False)
    assert r.as_dict()["error"] == {"kind": "script", "type": typ, "message": message, "traceback": traceback}
    assert interp.run("1 + 1").value == 2  # and it goes on


def test_python_last_expression():
    guest("python")
    with hyperlight.Interpreter("python", pool_size=1) as i:
        assert i.run("x = 20\nx + 22").value == 42
        assert i.run("def f(n):\n    return n * 2\n\nf(21)  # the value").value == 42
        r = i.run("print(1); 2")
        assert (r.stdout, r.value) == ("1\n", 2)
        assert i.run("x = 1\ny = 2").value is None
        r = i.run("x = 1\r\n\r\n1 / 0")  # the line numbers are the code's
        assert r.error.traceback == ('Traceback (most recent call last):\n  File "<eval>", line 3, in <module>\n'
                                     "ZeroDivisionError: divide by zero")
        r = i.run("x = 1\n" + LOOPS["python"] + "\nx", timeout=0.2)  # one time limit for the parts
        assert r.error.kind == "timeout" and 0.2 <= r.duration < 0.2 + 0.2 * TIME_SCALE


SYNTAX = {"lua": ("x =", "syntax"), "javascript": ("x =", "SyntaxError"), "python": ("x =", "SyntaxError")}


def test_syntax_error(interp):
    code, typ = SYNTAX[interp.language]
    r = interp.run(code)
    assert (r.error.kind, r.error.type) == ("syntax", typ)


EXITS = {"lua": "os.exit(3)", "python": "import sys\nsys.exit(3)"}


@pytest.mark.parametrize("language", sorted(EXITS))
def test_exit(language):
    guest(language)
    with hyperlight.Interpreter(language, pool_size=1) as i:
        r = i.run(EXITS[language])
        assert (r.exit_code, r.error) == (3, hyperlight.RunError("exit", "exit", "exit 3"))
        r = i.run(EXITS[language].replace("3", "0"))
        assert (r.exit_code, r.error) == (0, None)


LOOPS = {"lua": "while true do end", "javascript": "for (;;) {}", "python": "while True:\n    pass"}


def test_timeout_then_works(interp):
    r = interp.run(LOOPS[interp.language], timeout=0.2)
    assert r.error == hyperlight.RunError("timeout", "Timeout", "the code ran longer than the timeout (0.2 s)")
    assert 0.2 <= r.duration < 1.0 * TIME_SCALE
    assert interp.run("6 * 7").value == 42


PRINT_LOOPS = {
    "lua": "for i = 1, 100000 do print(i) end",
    "javascript": "for (let i = 1; i <= 100000; i++) console.log(i)",
    "python": "for i in range(1, 100001):\n    print(i)",
}
ALL_LINES = "".join(f"{i}\n" for i in range(1, 100001))


def test_output_limit(interp):
    # the limit stops the run; the timeout is only a backstop (under emulation the first
    # output may take longer than the default 1 s to arrive)
    r = interp.run(PRINT_LOOPS[interp.language], max_output=1000, timeout=60)
    assert r.error == hyperlight.RunError("output_limit", "OutputLimit",
                                          "the output went beyond max_output (1000 bytes)")
    assert r.stdout == ALL_LINES[:1000]  # truncated at the limit, exactly
    assert interp.run("6 * 7").value == 42
    # exactly fits; printing 100,000 lines takes seconds under emulated hardware KVM
    r = interp.run(PRINT_LOOPS[interp.language], max_output=len(ALL_LINES), timeout=60)
    assert (r.error, r.stdout) == (None, ALL_LINES)


BIG = {"lua": 'string.rep("x", 300000)', "javascript": '"x".repeat(300000)', "python": '"x" * 300000'}


def test_value_too_large(interp):
    r = interp.run(BIG[interp.language])
    assert r.error == hyperlight.RunError(
        "sandbox", "ValueTooLarge",
        "return value of guest function 'Eval' (300002 bytes) does not fit the output buffer (262144 bytes)")
    assert interp.run("6 * 7").value == 42


SET_X = {"lua": "x = 5", "javascript": "var x = 5", "python": "x = 5"}
GET_X = {"lua": "x", "javascript": "typeof x === 'undefined' ? null : x",
         "python": "globals().get('x')"}


def test_not_persistent_pool_reuse(lang):
    with hyperlight.Interpreter(lang, pool_size=1) as i:  # one sandbox, reused by every run
        for _ in range(20):
            assert i.run(GET_X[lang]).value is None
            assert i.run(SET_X[lang]).error is None


def test_persistent_and_reset(lang):
    with hyperlight.Interpreter(lang, persistent=True) as i:
        assert i.run(GET_X[lang]).value is None
        i.run(SET_X[lang])
        assert i.run(GET_X[lang]).value == 5
        i.reset()
        assert i.run(GET_X[lang]).value is None
        i.run(SET_X[lang])
        r = i.run(LOOPS[lang], timeout=0.2)  # a stopped run resets the interpreter
        assert r.error == hyperlight.RunError(
            "timeout", "Timeout", "the code ran longer than the timeout (0.2 s) (the interpreter's state was reset)")
        assert i.run(GET_X[lang]).value is None


def test_persistent_checkpoint(lang):
    with hyperlight.Interpreter(lang, persistent=True, checkpoint=True) as i:
        i.run(SET_X[lang])
        r = i.run(LOOPS[lang], timeout=0.2)  # a stopped run leaves the state before it
        assert r.error == hyperlight.RunError("timeout", "Timeout", "the code ran longer than the timeout (0.2 s)")
        assert i.run(GET_X[lang]).value == 5
        r = i.run(PRINT_LOOPS[lang], max_output=10, timeout=60)  # the limit stops it
        assert (r.error.kind, r.stdout) == ("output_limit", "1\n2\n3\n4\n5\n")
        assert i.run(GET_X[lang]).value == 5
        i.reset()
        assert i.run(GET_X[lang]).value is None


@pytest.mark.parametrize("persistent", [False, True])
def test_ctrl_c(lang, persistent):
    with hyperlight.Interpreter(lang, persistent=persistent, timeout=10) as i:
        i.run(SET_X[lang])
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            i.run(LOOPS[lang])
        timer.join()
        assert i.run(GET_X[lang]).value is None  # fresh: pooled, or persistent without checkpoint
        assert i.run("6 * 7").value == 42


TOKEN = {"lua": "print('{t}') return {n}", "javascript": "console.log('{t}'); {n}",
         "python": "print('{t}')\n{n}"}


def test_threads_share_one_interpreter(lang):
    errors = []
    with hyperlight.Interpreter(lang, pool_size=2) as i:
        def worker(t):
            try:
                for n in range(25):
                    r = i.run(TOKEN[lang].format(t=f"thread{t}", n=n))
                    assert (r.stdout, r.value, r.error) == (f"thread{t}\n", n, None)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


INCR = {"lua": "n = (n or 0) + 1 return n", "javascript": "globalThis.n = (globalThis.n || 0) + 1",
        "python": "n = globals().get('n', 0) + 1"}


def test_threads_persistent(lang):
    with hyperlight.Interpreter(lang, persistent=True) as i:
        threads = [threading.Thread(target=lambda: [i.run(INCR[lang]) for _ in range(25)]) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert i.run({"lua": "n", "javascript": "n", "python": "n"}[lang]).value == 100


def test_arun(lang):
    import asyncio

    async def main(i):
        return await asyncio.gather(*(i.arun(TOKEN[lang].format(t=f"task{n}", n=n)) for n in range(8)))

    with hyperlight.Interpreter(lang) as i:
        results = asyncio.run(main(i))
    assert [(r.stdout, r.value) for r in results] == [(f"task{n}\n", n) for n in range(8)]


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_leaks(lang):
    code_err = ERRORS[lang][0]
    with hyperlight.Interpreter(lang, pool_size=1) as i:
        def one(k):
            if k % 3 == 0:
                assert i.run(PRINTS[lang]).value == 7
            elif k % 3 == 1:
                assert i.run(code_err).error.kind == "script"
            else:
                assert i.run(VALUES[4][{"lua": 1, "javascript": 2, "python": 3}[lang]]).value == VALUES[4][0]

        for k in range(300):
            one(k)
        gc.collect()
        rss0, objs0 = rss(), len(gc.get_objects())
        for k in range(1000):
            one(k)
        gc.collect()
        assert len(gc.get_objects()) - objs0 < 50
        assert rss() - rss0 < 2 << 20


def test_run_function(lang):
    assert hyperlight.run("1 + 1", lang).value == 2
    alias = {"lua": "LUA", "javascript": "js", "python": "py"}[lang]
    r = hyperlight.run(PRINTS[lang], alias)
    assert (r.stderr, r.value) == ("err\n", 7)


def add(a: hyperlight.i32, b: hyperlight.i32) -> hyperlight.i32:
    return a + b


def test_host_function(lang):
    with hyperlight.Interpreter(lang, host_functions={"Add": add}) as i:
        assert i.run("host.Add(40, 2)").value == 42
        r = i.run("host.Add(1, 'x')")
        assert r.error.kind == "script"
        assert "host.Add: argument 2 must be i32" in r.error.message


def test_output_of_a_nested_run_is_its_own():
    # a host function that runs code in another interpreter: each run keeps its own output
    guest("lua")
    inner = []

    def nested() -> str:
        r = hyperlight.run("print('inner') return 1", "lua")
        inner.append((r.stdout, r.value))
        return "ok"

    with hyperlight.Interpreter("lua", host_functions={"Nested": nested}) as i:
        r = i.run("print('before') local s = host.Nested() print('after', s) return 7")
    assert (r.stdout, r.value, r.error) == ("before\nafter\tok\n", 7, None)
    assert inner == [("inner\n", 1)]


READ = {"lua": 'io.open("data.txt"):read("a")', "python": 'open("data.txt").read()'}


@pytest.mark.parametrize("language", sorted(READ))
def test_files(language, tmp_path):
    guest(language)
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    with hyperlight.Interpreter(language, files={"data.txt": data}) as i:
        for _ in range(3):  # every pooled run sees the file
            assert i.run(READ[language]).value == "a,b\n1,2\n"
    with pytest.raises(TypeError, match="^files must be a mapping of label to path, not list$"):
        hyperlight.Interpreter(language, files=[("data.txt", str(data))])
    with pytest.raises(hyperlight.FileError) as e:
        hyperlight.Interpreter(language, files={"x": tmp_path / "missing"})
    assert str(e.value) == f"map file '{tmp_path}/missing': No such file or directory"


def test_bad_input():
    with pytest.raises(ValueError, match=r"^unknown language 'ruby' \(one of: lua, javascript / js, python / py\)$"):
        hyperlight.run("1", "ruby")
    with pytest.raises(TypeError, match="^language must be a str, not int$"):
        hyperlight.Interpreter(3)
    guest("lua")
    with pytest.raises(TypeError, match="^code must be a str, not bytes$"):
        hyperlight.run(b"1", "lua")
    with pytest.raises(ValueError, match="^code must not contain NUL characters$"):
        hyperlight.run("1\0", "lua")
    with pytest.raises(TypeError, match="^timeout must be a number of seconds or None, not str$"):
        hyperlight.run("1", "lua", timeout="1")
    with pytest.raises(ValueError, match="^timeout must be > 0, not -1$"):
        hyperlight.run("1", "lua", timeout=-1)
    with pytest.raises(TypeError, match="^max_output must be an int, not float$"):
        hyperlight.run("1", "lua", max_output=1.5)
    with pytest.raises(ValueError, match="^pool_size must be >= 1$"):
        hyperlight.Interpreter("lua", pool_size=0)
    with hyperlight.Interpreter("lua", max_code=100) as i:
        assert i.run("1" + " " * 99).value == 1  # exactly max_code is accepted
        with pytest.raises(ValueError, match=r"^code is 101 bytes, more than max_code \(100\)$"):
            i.run("1" * 101)
        with pytest.raises(ValueError, match=r"^code is 102 bytes, more than max_code \(100\)$"):
            i.run("\u00e9" * 51)
    i = hyperlight.Interpreter("lua")
    i.close()
    i.close()
    with pytest.raises(hyperlight.SandboxClosed, match="^the interpreter is closed$"):
        i.run("1")


def test_guest_not_found(monkeypatch, tmp_path):
    from hyperlight import interpreter

    monkeypatch.setattr(interpreter, "_guest_dirs", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(hyperlight.GuestNotFound) as e:
        hyperlight.Interpreter("js")
    assert str(e.value) == (f"no javascript.elf for language 'javascript'; looked in: {tmp_path}/a, {tmp_path}/b "
                            "(build it with `make all`, or set HL_BUILD)")
    assert isinstance(e.value, FileNotFoundError)


def test_find_guest_build_tree(monkeypatch):
    guest("lua")
    monkeypatch.setenv("HL_BUILD", str(BUILD))
    assert hyperlight.find_guest("lua") == BUILD / "guests" / "lua.elf"


def test_tool_schema():
    s = hyperlight.tool_schema("py")
    assert s["name"] == "run_python"
    assert s["parameters"] == {"type": "object",
                               "properties": {"code": {"type": "string", "description": "the python code to run"}},
                               "required": ["code"], "additionalProperties": False}
    assert "fresh interpreter" in s["description"]
    json.dumps(s)  # it is JSON
    guest("lua")
    with hyperlight.Interpreter("lua", persistent=True) as i:
        d = i.tool_description()
        assert d["name"] == "run_lua" and "persists" in d["description"]


@pytest.mark.parametrize("example", ["agent_tool.py", "host_capability.py"])
def test_examples(example):
    guest("python")
    env = dict(os.environ, PYTHONPATH=str(BUILD / "python" / "lib"), HL_BUILD=str(BUILD))
    p = subprocess.run([sys.executable, str(ROOT / "python" / "examples" / example)], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "ok"

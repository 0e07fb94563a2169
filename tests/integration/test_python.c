/* test_python.c - the Python guest (build/guests/python.elf, lang/python/) against real KVM:
 * every protocol function (include/hyperlight/lang.h) with good and bad input and the exact
 * result, error code and message; host functions with right and wrong types; handlers with
 * a restore between requests; and hostile scripts (infinite loop, infinite recursion,
 * exhausting memory, printing without end, a handler result without a JSON form). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hyperlight/lang.h"

/* ---- what the guest prints ---- */
static struct {
    char *buf[3];
    size_t len[3];
} out;

static void on_print(void *user, int stream, const char *data, size_t len)
{
    if (stream < 1 || stream > 2) return;
    if (out.len[stream] + len > (1u << 20)) return; /* keep the first MiB */
    out.buf[stream] = realloc(out.buf[stream], out.len[stream] + len + 1);
    memcpy(out.buf[stream] + out.len[stream], data, len);
    out.len[stream] += len;
    out.buf[stream][out.len[stream]] = 0;
}

static void out_reset(void)
{
    for (int i = 1; i <= 2; i++) {
        free(out.buf[i]);
        out.buf[i] = NULL;
        out.len[i] = 0;
    }
}
static const char *out_str(int stream) { return out.buf[stream] ? out.buf[stream] : ""; }

/* ---- host functions ---- */
static int h_add(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    *r = hl_i32(a[0].v.i32 + a[1].v.i32);
    return 0;
}
static int h_greet(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    size_t len = a[0].v.buf.len + 16;
    char *s = hl_host_call_alloc(c, len);
    snprintf(s, len, "Hello, %s!", hl_value_str(&a[0]));
    *r = hl_str(s);
    return 0;
}
static int h_fail(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    return hl_host_call_error(c, 7, "failed on purpose");
}
static int h_half(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    *r = hl_f64(a[0].v.f64 / 2);
    return 0;
}
static int h_not(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    *r = hl_bool(!a[0].v.b);
    return 0;
}
static int h_big(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    *r = hl_u64(a[0].v.u64 - 1);
    return 0;
}
/* the bytes reversed */
static int h_rev(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    size_t len = a[0].v.buf.len;
    unsigned char *s = hl_host_call_alloc(c, len + 1);
    const unsigned char *in = a[0].v.buf.ptr;
    for (size_t i = 0; i < len; i++) s[i] = in[len - 1 - i];
    r->type = HL_BYTES;
    r->v.buf.ptr = s;
    r->v.buf.len = len;
    return 0;
}

/* ---- calls ---- */
static hl_sandbox *sb;
static const char *result; /* the last call's string result ("" for void) */
static hl_status status;

/* Calls fn with string arguments; returns the status and sets result. */
static hl_status callv(const char *fn, hl_type rt, int n, ...)
{
    hl_value args[4], r;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) args[i] = hl_str(va_arg(ap, const char *));
    va_end(ap);
    out_reset();
    memset(&r, 0, sizeof r);
    status = hl_call(sb, fn, rt, args, n, &r);
    result = status == HL_OK && rt == HL_STRING ? hl_value_str(&r) : "";
    return status;
}
#define EVAL(code) callv(HL_LANG_FN_EVAL, HL_STRING, 1, (code))
#define REPL(line) callv(HL_LANG_FN_REPL, HL_STRING, 1, (line))
#define RUN(code, name, argv) callv(HL_LANG_FN_RUN, HL_VOID, 3, (code), (name), (argv))
#define LOAD(code, name) callv(HL_LANG_FN_LOAD, HL_VOID, 2, (code), (name))
#define HANDLE(h, ev) callv(HL_LANG_FN_HANDLE, HL_STRING, 2, (h), (ev))

/* The call succeeded with string result want. */
#define CHECK_OK(call, want)                                                                    \
    do {                                                                                        \
        hl_status s_ = (call);                                                                  \
        if (s_ != HL_OK) fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, hl_last_error(sb)); \
        CHECK_INT(s_, HL_OK);                                                                   \
        CHECK_STR(result, (want));                                                              \
    } while (0)
/* The call failed as a guest error with code and exactly message msg. */
#define CHECK_FAIL(call, code, msg)                \
    do {                                           \
        CHECK_INT((call), HL_ERR_GUEST);           \
        CHECK_INT(hl_last_error_code(sb), (code)); \
        CHECK_STR(guest_message(), (msg));         \
    } while (0)

/* The guest's message from hl_last_error ("guest function 'X' failed with code N: MSG"). */
static const char *guest_message(void)
{
    const char *e = hl_last_error(sb), *p = strstr(e, ": ");
    return p ? p + 2 : e;
}
static const char *last_error_json(void)
{
    callv(HL_LANG_FN_LAST_ERROR, HL_STRING, 0);
    return result;
}

static void test_eval(void)
{
    CHECK_OK(EVAL("1 + 2"), "3");
    CHECK_OK(EVAL("[1, 2.5, None, True, False, 'a\"b\\n']"), "[1, 2.5, null, true, false, \"a\\\"b\\n\"]");
    CHECK_OK(EVAL("{'k': (1, 2)}"), "{\"k\": [1, 2]}");
    CHECK_OK(EVAL("{1: 'one'}"), "{\"1\": \"one\"}");
    CHECK_OK(EVAL("2 ** 70"), "1180591620717411303424");
    CHECK_OK(EVAL("'\\u00e9'"), "\"\u00e9\""); /* UTF-8 as is, valid JSON */
    CHECK_OK(EVAL("x = 5"), "null");           /* statements: run, value null */
    CHECK_OK(EVAL("x * 2"), "10");             /* state persists */
    CHECK_OK(EVAL("print('hi')"), "null");
    CHECK_STR(out_str(1), "hi\n");
    CHECK_FAIL(EVAL("1 +"), HL_LANG_ERR_SYNTAX,
               "Traceback (most recent call last):\n  File \"<eval>\", line 1\nSyntaxError: invalid syntax");
    CHECK_FAIL(EVAL("print"), HL_LANG_ERR_NOT_JSON, "TypeError: Object of type function is not JSON serializable");
    CHECK_FAIL(EVAL("float('nan')"), HL_LANG_ERR_NOT_JSON,
               "ValueError: Out of range float values are not JSON compliant");
    CHECK_OK(EVAL("l = [1]; l.append(l)"), "null");
    CHECK_FAIL(EVAL("l"), HL_LANG_ERR_NOT_JSON, "ValueError: Circular reference detected");
    CHECK_FAIL(EVAL("{(1, 2): 3}"), HL_LANG_ERR_NOT_JSON,
               "TypeError: keys must be str, int, float, bool or None, not tuple");
    CHECK_FAIL(EVAL("1 / 0"), HL_LANG_ERR_SCRIPT,
               "Traceback (most recent call last):\n  File \"<eval>\", line 1, in <module>\n"
               "ZeroDivisionError: divide by zero");
    CHECK_STR(last_error_json(), "{\"type\": \"ZeroDivisionError\", \"message\": \"divide by zero\", \"traceback\": "
                                 "\"Traceback (most recent call last):\\n  File \\\"<eval>\\\", line 1, in "
                                 "<module>\\nZeroDivisionError: divide by zero\"}");
    CHECK_OK(EVAL("sys = __import__('sys'); sys.platform"), "null");
    CHECK_OK(EVAL("sys.platform"), "\"hyperlight\"");
    CHECK_OK(EVAL("__import__('json').dumps([1])"), "\"[1]\"");
}

static void test_run(void)
{
    CHECK_OK(RUN("import sys\nprint(sys.argv)\nprint(__name__, __file__)", "script.py", "[\"a\", \"b\"]"), "");
    CHECK_STR(out_str(1), "['script.py', 'a', 'b']\n__main__ script.py\n");
    CHECK_OK(RUN("import sys\nprint(sys.argv)", "empty.py", "[]"), "");
    CHECK_STR(out_str(1), "['empty.py']\n");
    CHECK_FAIL(RUN("x = 1\ny = 2\nraise ValueError('boom')", "boom.py", "[]"), HL_LANG_ERR_SCRIPT,
               "Traceback (most recent call last):\n  File \"boom.py\", line 3, in <module>\nValueError: boom");
    CHECK_STR(last_error_json(), "{\"type\": \"ValueError\", \"message\": \"boom\", \"traceback\": \"Traceback (most "
                                 "recent call last):\\n  File \\\"boom.py\\\", line 3, in <module>\\nValueError: "
                                 "boom\"}");
    CHECK_FAIL(RUN("def f(:\n  pass", "bad.py", "[]"), HL_LANG_ERR_SYNTAX,
               "Traceback (most recent call last):\n  File \"bad.py\", line 1\nSyntaxError: invalid syntax");
    CHECK_FAIL(RUN("pass", "a.py", "[1]"), HL_LANG_ERR_NOT_JSON, "TypeError: argv_json must be a JSON array of strings");
    CHECK_FAIL(RUN("pass", "a.py", "not json"), HL_LANG_ERR_NOT_JSON, "ValueError: syntax error in JSON");
    CHECK_FAIL(RUN("import sys\nprint('before')\nsys.exit(0)\nprint('after')", "exit.py", "[]"), HL_LANG_ERR_EXIT,
               "exit 0");
    CHECK_STR(out_str(1), "before\n");
    CHECK_FAIL(RUN("import sys\nsys.exit(3)", "exit3.py", "[]"), HL_LANG_ERR_EXIT, "exit 3");
    CHECK_STR(last_error_json(), "{\"type\": \"SystemExit\", \"message\": \"3\", \"traceback\": \"exit 3\"}");
    CHECK_FAIL(RUN("raise SystemExit", "exitnone.py", "[]"), HL_LANG_ERR_EXIT, "exit 0");
    CHECK_FAIL(RUN("import sys\nsys.exit('bye')", "exitmsg.py", "[]"), HL_LANG_ERR_EXIT, "exit 1");
    CHECK_STR(out_str(2), "bye\n");
    CHECK_FAIL(EVAL("__import__('sys').exit(4)"), HL_LANG_ERR_EXIT, "exit 4");
    CHECK_OK(RUN("import sys\nsys.stderr.write('err\\n')\nprint('out', file=sys.stderr)\nsys.stdout.write('o')",
                 "streams.py", "[]"),
             "");
    CHECK_STR(out_str(1), "o");
    CHECK_STR(out_str(2), "err\nout\n");
    CHECK_FAIL(RUN("input('? ')", "in.py", "[]"), HL_LANG_ERR_SCRIPT,
               "Traceback (most recent call last):\n  File \"in.py\", line 1, in <module>\n"
               "EOFError: EOF when reading a line");
    CHECK_STR(out_str(1), "? ");
    CHECK_OK(RUN("import json, re, math, cmath, collections, random, time, struct, io, binascii, hashlib, heapq\n"
                 "import array, errno, gc, micropython, os, platform\n"
                 "print(hashlib.sha256(b'abc').digest().hex()[:16], re.sub('a+', '-', 'caaat'), os.getenv('HOME'))\n"
                 "print(json.loads('{\"a\": [1, 2]}')['a'], '%.3f %g' % (math.pi, 1e20), 7 // 2, -7 % 3)",
                 "mods.py", "[]"),
             "");
    CHECK_STR(out_str(1), "ba7816bf8f01cfea c-t None\n[1, 2] 3.142 1e+20 3 2\n");
    CHECK_FAIL(RUN("open('/etc/passwd', 'w')", "w.py", "[]"), HL_LANG_ERR_SCRIPT,
               "Traceback (most recent call last):\n  File \"w.py\", line 1, in <module>\nOSError: 30");
    CHECK_FAIL(RUN("import nosuchmodule", "imp.py", "[]"), HL_LANG_ERR_SCRIPT,
               "Traceback (most recent call last):\n  File \"imp.py\", line 1, in <module>\n"
               "ImportError: no module named 'nosuchmodule'");
}

static void test_repl(void)
{
    CHECK_OK(REPL("1 + 1"), "2");
    CHECK_OK(REPL("None"), "");
    CHECK_OK(REPL("y = 7"), "");
    CHECK_OK(REPL("y"), "7");
    CHECK_OK(REPL("'a'"), "'a'");
    CHECK_OK(REPL("_"), "'a'");
    CHECK_OK(REPL("print('p')"), "");
    CHECK_STR(out_str(1), "p\n");
    CHECK_OK(REPL("def g(n):\n    return [n] * 2\n"), "");
    CHECK_OK(REPL("g(3)"), "[3, 3]");
    CHECK_FAIL(REPL("1 / 0"), HL_LANG_ERR_SCRIPT,
               "Traceback (most recent call last):\n  File \"<stdin>\", line 1, in <module>\n"
               "ZeroDivisionError: divide by zero");
    /* what the REPL reads more lines for: an open compound statement, bracket or string */
    CHECK_FAIL(REPL("def h():"), HL_LANG_ERR_INCOMPLETE, "incomplete input");
    CHECK_FAIL(REPL("def h():\n    return 5"), HL_LANG_ERR_INCOMPLETE, "incomplete input");
    CHECK_FAIL(REPL("[1,"), HL_LANG_ERR_INCOMPLETE, "incomplete input");
    CHECK_FAIL(REPL("'''a"), HL_LANG_ERR_INCOMPLETE, "incomplete input");
    CHECK_OK(REPL("def h():\n    return 5\n"), "");
    CHECK_OK(REPL("h()"), "5");
    CHECK_FAIL(REPL("x = = 1"), HL_LANG_ERR_SYNTAX,
               "Traceback (most recent call last):\n  File \"<stdin>\", line 1\nSyntaxError: invalid syntax");
}

static const char *handlers = "count = 0\n"
                              "def double(e):\n"
                              "    return [e['n'] * 2, e.get('tag')]\n"
                              "def bump(e):\n"
                              "    global count\n"
                              "    count += 1\n"
                              "    return count\n"
                              "def bad(e):\n"
                              "    return object()\n"
                              "def boom(e):\n"
                              "    raise KeyError(e)\n";

static void test_handle(hl_snapshot *fresh)
{
    hl_snapshot *loaded;
    CHECK_OK(LOAD(handlers, "handlers.py"), "");
    CHECK_INT(hl_snapshot_take(sb, &loaded), HL_OK);
    CHECK_OK(HANDLE("double", "{\"n\": 21, \"tag\": \"x\"}"), "[42, \"x\"]");
    CHECK_OK(HANDLE("bump", "null"), "1");
    CHECK_OK(HANDLE("bump", "null"), "2");
    CHECK_INT(hl_sandbox_restore(sb, loaded), HL_OK);
    CHECK_STR(last_error_json(), "{}");
    CHECK_OK(HANDLE("bump", "null"), "1"); /* the count did not leak */
    CHECK_FAIL(HANDLE("nope", "{}"), HL_LANG_ERR_NO_HANDLER, "NameError: no global function 'nope'");
    CHECK_FAIL(HANDLE("count", "{}"), HL_LANG_ERR_NO_HANDLER, "TypeError: global 'count' is not a function");
    CHECK_FAIL(HANDLE("double", "{bad"), HL_LANG_ERR_NOT_JSON, "ValueError: syntax error in JSON");
    CHECK_FAIL(HANDLE("bad", "1"), HL_LANG_ERR_NOT_JSON, "TypeError: Object of type object is not JSON serializable");
    CHECK_FAIL(HANDLE("boom", "\"k\""), HL_LANG_ERR_SCRIPT,
               "Traceback (most recent call last):\n  File \"handlers.py\", line 11, in boom\nKeyError: k");
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);
    CHECK_FAIL(HANDLE("double", "{}"), HL_LANG_ERR_NO_HANDLER, "NameError: no global function 'double'");
    hl_snapshot_free(loaded);
}

static void test_host(void)
{
    CHECK_OK(EVAL("host.Add(40, 2)"), "42");
    CHECK_OK(EVAL("host.Greet('Bob')"), "\"Hello, Bob!\"");
    CHECK_OK(EVAL("host.Half(5)"), "2.5");
    CHECK_OK(EVAL("host.Not(False)"), "true");
    CHECK_OK(EVAL("host.Big(2 ** 64 - 1)"), "18446744073709551614");
    CHECK_OK(EVAL("list(host.Rev(b'\\x01\\x02\\x03'))"), "[3, 2, 1]");
    CHECK_OK(RUN("import host\nprint(host.Add(1, 2), host.Add)", "h.py", "[]"), "");
    CHECK_STR(out_str(1), "3 <host function Add>\n");
    const char *tb = "Traceback (most recent call last):\n  File \"<eval>\", line 1, in <module>\n";
    char want[512];
#define CHECK_HOST_ERR(code, err)                         \
    do {                                                  \
        snprintf(want, sizeof want, "%s%s", tb, (err));   \
        CHECK_FAIL(EVAL(code), HL_LANG_ERR_SCRIPT, want); \
    } while (0)
    CHECK_HOST_ERR("host.Add(1, 'x')", "TypeError: host.Add: argument 2 must be i32, got str");
    CHECK_HOST_ERR("host.Add(1.5, 1)", "TypeError: host.Add: argument 1 must be i32, got float");
    CHECK_HOST_ERR("host.Add(True, 1)", "TypeError: host.Add: argument 1 must be i32, got bool");
    CHECK_HOST_ERR("host.Add(2 ** 31, 1)", "OverflowError: host.Add: argument 1 out of range for i32");
    CHECK_HOST_ERR("host.Add(1, -2 ** 31 - 1)", "OverflowError: host.Add: argument 2 out of range for i32");
    CHECK_HOST_ERR("host.Big(-1)", "OverflowError: host.Big: argument 1 out of range for u64");
    CHECK_HOST_ERR("host.Big(2 ** 64)", "OverflowError: host.Big: argument 1 out of range for u64");
    CHECK_HOST_ERR("host.Add(1)", "TypeError: host.Add: expected 2 arguments, got 1");
    CHECK_HOST_ERR("host.Greet(b'x')", "TypeError: host.Greet: argument 1 must be string, got bytes");
    CHECK_HOST_ERR("host.Rev('x')", "TypeError: host.Rev: argument 1 must be bytes, got str");
    CHECK_HOST_ERR("host.Not(1)", "TypeError: host.Not: argument 1 must be bool, got int");
    CHECK_HOST_ERR("host.Half('1')", "TypeError: host.Half: argument 1 must be f64, got str");
    CHECK_HOST_ERR("host.Nope(1)", "AttributeError: host has no function 'Nope'");
    CHECK_HOST_ERR("host.Fail()", "RuntimeError: host.Fail: failed on purpose");
    CHECK_OK(RUN("try:\n    host.Fail()\nexcept RuntimeError as e:\n    print('caught', e)\n"
                 "try:\n    host.Add('a', 1)\nexcept TypeError as e:\n    print('caught', e)",
                 "c.py", "[]"),
             "");
    CHECK_STR(out_str(1), "caught host.Fail: failed on purpose\ncaught host.Add: argument 1 must be i32, got str\n");
}

static void test_hostile(hl_snapshot *fresh)
{
    /* an infinite loop: the timeout stops it; a restore makes the sandbox usable */
    hl_sandbox_set_timeout(sb, 300);
    double t0 = test_now_ms();
    CHECK_INT(EVAL("while True: pass"), HL_ERR_CANCELLED);
    CHECK(test_now_ms() - t0 < 5000);
    hl_sandbox_set_timeout(sb, 0);
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);
    CHECK_OK(EVAL("1 + 1"), "2");

    /* infinite recursion: Python's RecursionError (a RuntimeError), the sandbox fine */
    CHECK_INT(RUN("def f(n):\n    return f(n + 1)\nf(0)", "rec.py", "[]"), HL_ERR_GUEST);
    CHECK_INT(hl_last_error_code(sb), HL_LANG_ERR_SCRIPT);
    /* the message is cut in the middle, so it ends with the exception */
    static char msg[HL_MAX_MESSAGE + 1];
    snprintf(msg, sizeof msg, "%s", hl_last_guest_message(sb));
    size_t mlen = strlen(msg);
    const char *tail = "\nRuntimeError: maximum recursion depth exceeded";
    CHECK(mlen < HL_MAX_MESSAGE);
    CHECK(mlen > strlen(tail) && strcmp(msg + mlen - strlen(tail), tail) == 0);
    CHECK_HAS(msg, " bytes of traceback left out ...]");
    CHECK_HAS(last_error_json(), "\"type\": \"RuntimeError\", \"message\": \"maximum recursion depth exceeded\"");
    CHECK_HAS(result, "in f\\nRuntimeError: maximum recursion depth exceeded\"}");
    CHECK_HAS(result, "[... ");
    CHECK_HAS(result, " bytes of traceback left out ...]");
    CHECK(strlen(result) < (40u << 10));
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    CHECK_OK(EVAL("[1] * 3"), "[1, 1, 1]");
    CHECK_OK(RUN("def g(n):\n    return 0 if n == 0 else 1 + g(n - 1)\nprint(g(1000))", "deep.py", "[]"), "");
    CHECK_STR(out_str(1), "1000\n");

    /* source nested 100000 deep: the compiler's recursion is checked too (our patch,
     * lang/python/patches/0001-compile-check-the-C-stack-per-node.patch) */
    CHECK_INT(EVAL("len(repr(eval('[' * 100000 + ']' * 100000)))"), HL_ERR_GUEST);
    CHECK_HAS(last_error_json(), "\"type\": \"RuntimeError\", \"message\": \"maximum recursion depth exceeded\"");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    CHECK_OK(EVAL("len(repr(eval('[' * 50 + ']' * 50)))"), "100");

    /* memory: MicroPython's MemoryError, then a restore gives the memory back */
    CHECK_INT(RUN("l = []\nwhile True:\n    l.append(bytearray(1 << 20))", "mem.py", "[]"), HL_ERR_GUEST);
    CHECK_INT(hl_last_error_code(sb), HL_LANG_ERR_SCRIPT);
    CHECK_HAS(last_error_json(), "{\"type\": \"MemoryError\", \"message\": \"memory allocation failed, allocating ");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);
    CHECK_OK(EVAL("len(bytearray(1 << 20))"), "1048576");

    /* an error raised while the GC heap is full: its traceback is formatted outside the GC
     * heap, so the call fails cleanly (it used to end in nlr_jump_fail and an abort) */
    CHECK_INT(RUN("l = []\ntry:\n    while True:\n        l.append([0] * 8)\nexcept MemoryError:\n    pass\n"
                  "s = ''.join(['abc'] * 1000000)",
                  "full.py", "[]"),
              HL_ERR_GUEST);
    CHECK_INT(hl_last_error_code(sb), HL_LANG_ERR_SCRIPT);
    CHECK_HAS(hl_last_guest_message(sb), "MemoryError");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);

    /* printing 100 MB: stopped by the output limit (8 MiB in this test's configuration) */
    CHECK_INT(RUN("s = 'x' * 999\nfor i in range(100000):\n    print(s)", "flood.py", "[]"), HL_ERR_CANCELLED);
    CHECK_HAS(hl_last_error(sb), "printed and logged more than the limit of 8388608 bytes");
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);
    CHECK_OK(EVAL("'ok'"), "\"ok\"");
}

/* import and open() of host files mapped by label (hl_config_map_file) */
static void test_files(void)
{
    CHECK_OK(RUN("import mymod\nprint(mymod.VALUE, mymod.twice(21), mymod.__name__)", "imp.py", "[]"), "");
    CHECK_STR(out_str(1), "forty-two 42 mymod\n");
    CHECK_OK(RUN("from mymod import twice\nprint(twice('ab'))", "imp2.py", "[]"), "");
    CHECK_STR(out_str(1), "abab\n");
    CHECK_OK(RUN("import json\nwith open('data.json') as f:\n    d = json.load(f)\nprint(d['k'], type(d['k']))\n"
                 "print(open('data.json', 'rb').read())",
                 "open.py", "[]"),
             "");
    CHECK_STR(out_str(1), "[1, 2] <class 'list'>\nb'{\"k\": [1, 2]}\\n'\n");
    CHECK_FAIL(RUN("import broken", "imp3.py", "[]"), HL_LANG_ERR_SCRIPT,
               "Traceback (most recent call last):\n  File \"imp3.py\", line 1, in <module>\n"
               "  File \"broken.py\", line 2, in <module>\nNameError: name 'undefined_name' isn't defined");
    CHECK_FAIL(RUN("open('missing.txt')", "open2.py", "[]"), HL_LANG_ERR_SCRIPT,
               "Traceback (most recent call last):\n  File \"open2.py\", line 1, in <module>\n"
               "OSError: [Errno 2] ENOENT: can't open missing.txt");
}

/* Writes text to a new temporary file and maps it under label. */
static void map_text(hl_config *cfg, const char *label, const char *text, char *path, size_t size)
{
    snprintf(path, size, "/tmp/hl_test_python_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    close(fd);
    CHECK_INT(hl_config_map_file(cfg, path, label), HL_OK);
}

/* random is reseeded after every restore: two restores of one snapshot draw differently */
static void test_random(hl_snapshot *fresh)
{
    char a[64];
    CHECK_OK(EVAL("__import__('random').getrandbits(32) > -1"), "true");
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);
    CHECK_INT(EVAL("[__import__('random').getrandbits(32) for i in range(2)]"), HL_OK);
    snprintf(a, sizeof a, "%s", result);
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);
    CHECK_INT(EVAL("[__import__('random').getrandbits(32) for i in range(2)]"), HL_OK);
    CHECK(strcmp(a, result) != 0);
}

/* time follows the embedder's clock setting: frozen at 2000-01-01 here */
static void test_frozen_clock(const char *path)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *saved = sb;
    CHECK_INT(hl_config_set_clock(cfg, HL_CLOCK_FROZEN), HL_OK);
    CHECK_INT(hl_sandbox_new_from_file(&sb, path, cfg), HL_OK);
    CHECK_OK(EVAL("[__import__('time').time(), __import__('time').localtime()]"),
             "[946684800.0, [2000, 1, 1, 0, 0, 0, 5, 1]]");
    hl_sandbox_free(sb);
    sb = saved;
    hl_config_free(cfg);
}

int main(void)
{
    hl_config *cfg = hl_config_new();
    hl_type i32x2[] = { HL_I32, HL_I32 }, str = HL_STRING, f64 = HL_F64, b = HL_BOOL, u64 = HL_U64, bytes = HL_BYTES;
    hl_config_set_heap_size(cfg, 32u << 20);
    hl_config_set_scratch_size(cfg, 1u << 20);
    hl_config_set_limits(cfg, HL_MAX_HOST_CALLS_DEFAULT, 8u << 20);
    hl_config_set_print(cfg, on_print, NULL);
    hl_config_register_host_fn(cfg, "Add", HL_I32, i32x2, 2, h_add, NULL);
    hl_config_register_host_fn(cfg, "Greet", HL_STRING, &str, 1, h_greet, NULL);
    hl_config_register_host_fn(cfg, "Fail", HL_I32, NULL, 0, h_fail, NULL);
    hl_config_register_host_fn(cfg, "Half", HL_F64, &f64, 1, h_half, NULL);
    hl_config_register_host_fn(cfg, "Not", HL_BOOL, &b, 1, h_not, NULL);
    hl_config_register_host_fn(cfg, "Big", HL_U64, &u64, 1, h_big, NULL);
    hl_config_register_host_fn(cfg, "Rev", HL_BYTES, &bytes, 1, h_rev, NULL);
    char mod_path[64], data_path[64], broken_path[64];
    map_text(cfg, "mymod.py", "VALUE = 'forty-two'\ndef twice(x):\n    return x * 2\n", mod_path, sizeof mod_path);
    map_text(cfg, "data.json", "{\"k\": [1, 2]}\n", data_path, sizeof data_path);
    map_text(cfg, "broken.py", "x = 1\ny = undefined_name\n", broken_path, sizeof broken_path);
    const char *b_dir = getenv("HL_BUILD");
    char path[512];
    snprintf(path, sizeof path, "%s/guests/python.elf", b_dir ? b_dir : "build");
    if (hl_sandbox_new_from_file(&sb, path, cfg) != HL_OK) {
        fprintf(stderr, "cannot create the Python sandbox: %s\n", hl_last_error(NULL));
        return 1;
    }
    hl_snapshot *fresh;
    CHECK_INT(hl_snapshot_take(sb, &fresh), HL_OK);
    CHECK_STR(last_error_json(), "{}");

    test_eval();
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);
    test_run();
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);
    test_repl();
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);
    test_handle(fresh);
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);
    test_host();
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);
    test_files();
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);
    test_hostile(fresh);
    test_random(fresh);
    CHECK_OK(EVAL("__import__('time').time() > 1.7e9"), "true"); /* the real clock, by default */
    test_frozen_clock(path);

    out_reset();
    unlink(mod_path), unlink(data_path), unlink(broken_path);
    hl_snapshot_free(fresh);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    return check_exit("test_python");
}

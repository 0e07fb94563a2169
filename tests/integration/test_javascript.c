/* test_javascript.c - the JavaScript guest (build/guests/javascript.elf, lang/js/) against
 * real KVM: every protocol function (include/hyperlight/lang.h) with good and bad input and
 * the exact results and messages, host functions with right and wrong types, handlers and
 * restores, hostile scripts (endless loop, endless recursion, endless allocation, endless
 * printing), and QuickJS's own test files from its source tree, one fresh sandbox each. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hyperlight/lang.h"

#define QJS_TESTS "third_party/quickjs-2025.04.26/tests"

static char out[2][1 << 16]; /* what the guest printed: [0] stdout, [1] stderr */
static size_t out_len[2];

static void on_print(void *user, int stream, const char *data, size_t len)
{
    int i = stream == 2;
    if (out_len[i] + len >= sizeof out[i]) len = sizeof out[i] - 1 - out_len[i];
    memcpy(out[i] + out_len[i], data, len);
    out_len[i] += len;
    out[i][out_len[i]] = 0;
}

static void out_clear(void)
{
    out_len[0] = out_len[1] = 0;
    out[0][0] = out[1][0] = 0;
}

/* ---- host functions ---- */
static int h_add(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    *r = hl_i32(a[0].v.i32 + a[1].v.i32);
    return 0;
}
static int h_greet(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    char *s = hl_host_call_alloc(c, a[0].v.buf.len + 8);
    if (!s) return hl_host_call_error(c, 99, "alloc failed");
    sprintf(s, "Hello, %s", (const char *)a[0].v.buf.ptr);
    *r = hl_str(s);
    return 0;
}
static int h_fail(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    return hl_host_call_error(c, 7, "the host says no");
}
static int h_twice64(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    *r = hl_i64(a[0].v.i64 * 2);
    return 0;
}
static int h_rev(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    size_t len = a[0].v.buf.len;
    unsigned char *p = hl_host_call_alloc(c, len ? len : 1);
    const unsigned char *s = a[0].v.buf.ptr;
    for (size_t i = 0; i < len; i++) p[i] = s[len - 1 - i];
    *r = hl_bytes(p, len);
    return 0;
}

static hl_config *js_config(uint64_t timeout_ms, uint64_t max_output)
{
    hl_config *cfg = hl_config_new();
    hl_type ii[2] = { HL_I32, HL_I32 }, s[1] = { HL_STRING }, l[1] = { HL_I64 }, b[1] = { HL_BYTES };
    hl_config_set_heap_size(cfg, 64 << 20);
    hl_config_set_scratch_size(cfg, 1 << 20);
    hl_config_set_print(cfg, on_print, NULL);
    hl_config_register_host_fn(cfg, "Add", HL_I32, ii, 2, h_add, NULL);
    hl_config_register_host_fn(cfg, "Greet", HL_STRING, s, 1, h_greet, NULL);
    hl_config_register_host_fn(cfg, "Fail", HL_I32, NULL, 0, h_fail, NULL);
    hl_config_register_host_fn(cfg, "Twice64", HL_I64, l, 1, h_twice64, NULL);
    hl_config_register_host_fn(cfg, "Rev", HL_BYTES, b, 1, h_rev, NULL);
    if (timeout_ms) hl_config_set_timeout(cfg, timeout_ms);
    if (max_output) hl_config_set_limits(cfg, HL_MAX_HOST_CALLS_DEFAULT, max_output);
    return cfg;
}

static hl_sandbox *js_sandbox(const hl_config *cfg)
{
    hl_sandbox *sb = NULL;
    char path[512];
    const char *b = getenv("HL_BUILD");
    snprintf(path, sizeof path, "%s/guests/javascript.elf", b ? b : "build");
    if (hl_sandbox_new_from_file(&sb, path, cfg) != HL_OK) {
        fprintf(stderr, "cannot create sandbox for %s: %s\n", path, hl_last_error(NULL));
        exit(1);
    }
    return sb;
}

/* Calls fn with n string arguments; returns the status, *res the string result ("" for void). */
static hl_status call_s(hl_sandbox *sb, const char *fn, hl_type rt, const char **res, int n, ...)
{
    hl_value args[3], ret;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) args[i] = hl_str(va_arg(ap, const char *));
    va_end(ap);
    memset(&ret, 0, sizeof ret);
    hl_status st = hl_call(sb, fn, rt, args, n, &ret);
    *res = st == HL_OK && rt == HL_STRING ? ret.v.buf.ptr : "";
    return st;
}

static const char *eval(hl_sandbox *sb, const char *code)
{
    const char *r;
    hl_status st = call_s(sb, HL_LANG_FN_EVAL, HL_STRING, &r, 1, code);
    if (st != HL_OK) return hl_last_error(sb);
    return r;
}

/* Checks that a call failed with guest error code and a message that starts with want. */
#define CHECK_FAILS(sb, st, code, want)                                        \
    do {                                                                       \
        CHECK_INT((st), HL_ERR_GUEST);                                         \
        CHECK_INT(hl_last_error_code(sb), (code));                             \
        CHECK_STR(prefix_of(hl_last_guest_message(sb), strlen(want)), (want)); \
    } while (0)

/* The first n bytes of s (one static buffer: use at once). */
static const char *prefix_of(const char *s, size_t n)
{
    static char buf[4096];
    if (n >= sizeof buf) n = sizeof buf - 1;
    snprintf(buf, n + 1, "%s", s ? s : "");
    return buf;
}

static const char *last_error(hl_sandbox *sb)
{
    const char *r;
    if (call_s(sb, HL_LANG_FN_LAST_ERROR, HL_STRING, &r, 0) != HL_OK) return hl_last_error(sb);
    return r;
}

/* ---- Eval ---- */
static void test_eval(hl_sandbox *sb)
{
    const char *r;
    CHECK_STR(eval(sb, "1 + 2"), "3");
    CHECK_STR(eval(sb, "[1, 'a', {b: null, c: true}, 2.5]"), "[1,\"a\",{\"b\":null,\"c\":true},2.5]");
    CHECK_STR(eval(sb, "'q\"\\n'"), "\"q\\\"\\n\"");
    CHECK_STR(eval(sb, "(2n ** 64n).toString()"), "\"18446744073709551616\"");
    CHECK_STR(eval(sb, "/a(b+)c/.exec('xabbc')[1]"), "\"bb\"");
    CHECK_STR(eval(sb, "(0.1).toFixed(20)"), "\"0.10000000000000000555\"");
    CHECK_STR(eval(sb, "var g = 5; g"), "5");
    CHECK_STR(eval(sb, "g * 2"), "10"); /* globals persist between calls */
    struct {
        const char *code, *why;
    } not_json[] = {
        { "undefined", "Eval: the value has no JSON form: undefined" },
        { "var x = 1", "Eval: the value has no JSON form: undefined" },
        { "(function f() {})", "Eval: the value has no JSON form: a function" },
        { "Symbol('s')", "Eval: the value has no JSON form: a symbol" },
        { "10n", "Eval: the value has no JSON form: TypeError: Do not know how to serialize a BigInt" },
        { "var o = {}; o.o = o; o", "Eval: the value has no JSON form: TypeError: circular reference" },
        { "[1, NaN]", "Eval: the value has no JSON form: TypeError: NaN has no JSON form" },
        { "({x: -Infinity})", "Eval: the value has no JSON form: TypeError: -Infinity has no JSON form" },
    };
    for (size_t i = 0; i < sizeof not_json / sizeof not_json[0]; i++) {
        hl_status st = call_s(sb, HL_LANG_FN_EVAL, HL_STRING, &r, 1, not_json[i].code);
        CHECK_FAILS(sb, st, HL_LANG_ERR_NOT_JSON, not_json[i].why);
    }
    hl_status st = call_s(sb, HL_LANG_FN_EVAL, HL_STRING, &r, 1, "1 +");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SYNTAX, "SyntaxError: unexpected token in expression: ''\n    at <eval>:1:4");
    st = call_s(sb, HL_LANG_FN_EVAL, HL_STRING, &r, 1, "null.x");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "TypeError: cannot read property 'x' of null\n    at <eval> (<eval>:1:");
    /* A SyntaxError thrown at run time is the script's error, not a parse error. */
    st = call_s(sb, HL_LANG_FN_EVAL, HL_STRING, &r, 1, "JSON.parse('{')");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "SyntaxError: ");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
}

/* ---- Run, output, LastError ---- */
static void test_run(hl_sandbox *sb)
{
    const char *r;
    out_clear();
    hl_status st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3,
                          "console.log('hi', 1, {a: [1, 'x']}, scriptArgs); print('p', null);"
                          "console.info('i'); console.debug('d'); console.error('e', 2); console.warn('w');",
                          "t.js", "[\"a\",\"b c\"]");
    CHECK_INT(st, HL_OK);
    CHECK_STR(out[0], "hi 1 { a: [ 1, \"x\" ] } [ \"t.js\", \"a\", \"b c\" ]\np null\ni\nd\n");
    CHECK_STR(out[1], "e 2\nw\n");
    CHECK_INT(call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, "if (scriptArgs.length !== 1) throw 1", "u.js", ""), HL_OK);
    st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, "1", "t.js", "[1]");
    CHECK_FAILS(sb, st, HL_LANG_ERR_NOT_JSON, "Run: argv_json must be a JSON array of strings");
    st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, "1", "t.js", "[");
    CHECK_FAILS(sb, st, HL_LANG_ERR_NOT_JSON, "Run: argv_json is not valid JSON: SyntaxError");
    st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, "function f() { throw new TypeError('boom') }\nf()", "t.js", "[]");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "TypeError: boom\n    at f (t.js:1:");
    CHECK_HAS(hl_last_error(sb), "\n    at <eval> (t.js:2:");
    CHECK_HAS(last_error(sb), "{\"type\":\"TypeError\",\"message\":\"boom\",\"traceback\":\"    at f (t.js:1:");
    st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, "throw 42", "t.js", "[]");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "42");
    CHECK_STR(last_error(sb), "{\"type\":\"value\",\"message\":\"42\",\"traceback\":\"\"}");
    st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, "let = = 1", "bad.js", "[]");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SYNTAX, "SyntaxError: ");
    CHECK_HAS(hl_last_error(sb), "at bad.js:1:");
    /* Promise jobs run before Run returns; a rejected job fails the call. */
    out_clear();
    CHECK_INT(call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, "Promise.resolve(7).then(v => print('job', v))", "p.js", "[]"),
              HL_OK);
    CHECK_STR(out[0], "job 7\n");
    /* A rejection nothing handled once the jobs ran is the script's error, as in qjs. */
    st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, "Promise.reject(new Error('x'))", "r.js", "[]");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "Possibly unhandled promise rejection: Error: x\n    at <eval> (r.js:1:");
    out_clear();
    CHECK_INT(call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3,
                     "const p = Promise.reject(new Error('x')); p.catch(e => print('handled', e.message))", "r.js", "[]"),
              HL_OK);
    CHECK_STR(out[0], "handled x\n");
    /* A module: import of a file that is not there is the loader's error. */
    st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, "import {x} from 'nope.js'; print(x)", "m.mjs", "[]");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "ReferenceError: could not load module 'nope.js': ");
    out_clear();
    CHECK_INT(call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, "export const y = 1; print(await Promise.resolve('tla'))",
                     "m2.mjs", "[]"),
              HL_OK);
    CHECK_STR(out[0], "tla\n");
    /* std.exit(n): no catch stops it, also from a promise job; the call fails with "exit n". */
    out_clear();
    st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3,
                "import * as std from 'std'; try { std.exit(3) } catch (e) { print('caught') } finally { print('f') }",
                "x.mjs", "[]");
    CHECK_FAILS(sb, st, HL_LANG_ERR_EXIT, "exit 3");
    CHECK(strstr(out[0], "caught") == NULL);
    CHECK_STR(last_error(sb), "{\"type\":\"exit\",\"message\":\"exit 3\",\"traceback\":\"\"}");
    st = call_s(sb, HL_LANG_FN_EVAL, HL_STRING, &r, 1, "import('std').then(s => s.exit(0)); 1");
    CHECK_FAILS(sb, st, HL_LANG_ERR_EXIT, "exit 0");
    CHECK_STR(eval(sb, "2"), "2"); /* the next call is not exiting */
}

/* ---- Repl ---- */
static void test_repl(hl_sandbox *sb)
{
    struct {
        const char *line, *shown;
    } steps[] = {
        { "let rx = 40", "" },
        { "rx + 2", "42" },
        { "'s\"'", "\"s\\\"\"" },
        { "({a: [1, 2], 'b-c': {d: null}, e: undefined})", "{ a: [ 1, 2 ], \"b-c\": { d: null }, e: undefined }" },
        { "[]", "[]" },
        { "-0", "-0" },
        { "12345678901234567890n", "12345678901234567890n" },
        { "function sq(v) { return v * v }", "" },
        { "sq", "[Function sq]" },
        { "new Set([1, 'a'])", "Set(2) { 1, \"a\" }" },
        { "new Uint8Array([1, 2])", "Uint8Array(2) [ 1, 2 ]" },
        { "var c = [1]; c.push(c); c", "[ 1, [Circular] ]" },
        { "await Promise.resolve(sq(3))", "9" },
        { "undefined", "" },
    };
    const char *r;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        hl_status st = call_s(sb, HL_LANG_FN_REPL, HL_STRING, &r, 1, steps[i].line);
        if (st != HL_OK) fprintf(stderr, "Repl %s: %s\n", steps[i].line, hl_last_error(sb));
        CHECK_INT(st, HL_OK);
        CHECK_STR(r, steps[i].shown);
    }
    hl_status st = call_s(sb, HL_LANG_FN_REPL, HL_STRING, &r, 1, "rx.y.z");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "TypeError: cannot read property 'z' of undefined");
    /* A line that stops inside a statement is incomplete (the REPL sends more); one with an
     * error before its end is a syntax error. */
    const char *open_lines[] = { "function f() {", "(", "[1,", "let y =", "x.", "`abc", "/* comment", "foo(1,\n" };
    for (size_t i = 0; i < sizeof open_lines / sizeof open_lines[0]; i++) {
        st = call_s(sb, HL_LANG_FN_REPL, HL_STRING, &r, 1, open_lines[i]);
        CHECK_FAILS(sb, st, HL_LANG_ERR_INCOMPLETE, "SyntaxError: ");
    }
    const char *bad_lines[] = { "}", "a b", "'abc", "1 +* 2" };
    for (size_t i = 0; i < sizeof bad_lines / sizeof bad_lines[0]; i++) {
        st = call_s(sb, HL_LANG_FN_REPL, HL_STRING, &r, 1, bad_lines[i]);
        CHECK_FAILS(sb, st, HL_LANG_ERR_SYNTAX, "SyntaxError: ");
    }
    CHECK_INT(call_s(sb, HL_LANG_FN_REPL, HL_STRING, &r, 1, "function f2() {\nreturn 5 }"), HL_OK);
    CHECK_INT(call_s(sb, HL_LANG_FN_REPL, HL_STRING, &r, 1, "f2()"), HL_OK);
    CHECK_STR(r, "5");
    CHECK_INT(call_s(sb, HL_LANG_FN_REPL, HL_STRING, &r, 1, "rx"), HL_OK); /* the session goes on */
    CHECK_STR(r, "40");
}

/* ---- Load, Handle, restore ---- */
static const char handlers[] = "var count = 0;\n"
                               "function add(e) { return {sum: e.a + e.b} }\n"
                               "function inc() { return ++count }\n"
                               "async function later(e) { await null; return e * 2 }\n"
                               "function fn() { return () => 1 }\n"
                               "function rej() { return Promise.reject(new RangeError('nope')) }\n"
                               "function never() { return new Promise(() => {}) }\n"
                               "function thrower(e) { throw new Error('bad ' + e.n) }\n";

static void test_handle(void)
{
    hl_config *cfg = js_config(0, 0);
    hl_sandbox *sb = js_sandbox(cfg);
    hl_snapshot *snap = NULL;
    const char *r;
    CHECK_INT(call_s(sb, HL_LANG_FN_LOAD, HL_VOID, &r, 2, handlers, "handlers.js"), HL_OK);
    CHECK_STR(last_error(sb), "{}");
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    CHECK_INT(call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, &r, 2, "add", "{\"a\": 1, \"b\": 2.5}"), HL_OK);
    CHECK_STR(r, "{\"sum\":3.5}");
    CHECK_INT(call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, &r, 2, "inc", "null"), HL_OK);
    CHECK_STR(r, "1");
    CHECK_INT(call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, &r, 2, "inc", "null"), HL_OK);
    CHECK_STR(r, "2");
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_INT(call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, &r, 2, "inc", "null"), HL_OK);
    CHECK_STR(r, "1"); /* the state of the earlier requests is gone */
    CHECK_INT(call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, &r, 2, "later", "21"), HL_OK);
    CHECK_STR(r, "42");
    hl_status st = call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, &r, 2, "missing", "{}");
    CHECK_FAILS(sb, st, HL_LANG_ERR_NO_HANDLER, "Handle: no global function 'missing'");
    st = call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, &r, 2, "count", "{}");
    CHECK_FAILS(sb, st, HL_LANG_ERR_NO_HANDLER, "Handle: no global function 'count'");
    st = call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, &r, 2, "add", "{bad");
    CHECK_FAILS(sb, st, HL_LANG_ERR_NOT_JSON, "Handle: the event is not valid JSON: SyntaxError: ");
    st = call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, &r, 2, "fn", "{}");
    CHECK_FAILS(sb, st, HL_LANG_ERR_NOT_JSON, "Handle: the result of 'fn' has no JSON form: a function");
    st = call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, &r, 2, "rej", "{}");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "RangeError: nope\n    at rej (handlers.js:6:");
    st = call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, &r, 2, "never", "{}");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "InternalError: the promise never settled (nothing left to run)");
    st = call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, &r, 2, "thrower", "{\"n\": 3}");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "Error: bad 3\n    at thrower (handlers.js:8:");
    CHECK_HAS(last_error(sb),
              "{\"type\":\"Error\",\"message\":\"bad 3\",\"traceback\":\"    at thrower (handlers.js:8:");
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_STR(last_error(sb), "{}");
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* ---- host functions ---- */
static void test_host(hl_sandbox *sb)
{
    struct {
        const char *code, *want;
    } cases[] = {
        { "host.Add(40, 2)", "42" },
        { "host.Add(-5, 2n)", "-3" },
        { "host.Greet('JS')", "\"Hello, JS\"" },
        { "host.Twice64(2n ** 60n) === 2n ** 61n", "true" },
        { "host.Twice64(21)", "42" },
        { "Array.from(host.Rev(new Uint8Array([1, 2, 3])))", "[3,2,1]" },
        { "Array.from(host.Rev(new Uint8Array([9, 8]).buffer))", "[8,9]" },
        { "host.Add.name", "\"Add\"" },
        { "['Add' in host, 'Nope' in host]", "[true,false]" },
        { "try { host.Add(1, 'x') } catch (e) { e.constructor.name + ': ' + e.message }",
          "\"TypeError: host.Add: argument 2 must be i32, got string\"" },
        { "try { host.Add(1) } catch (e) { e.message }", "\"host.Add: expected 2 arguments, got 1\"" },
        { "try { host.Add(1.5, 1) } catch (e) { e.constructor.name + ': ' + e.message }",
          "\"RangeError: host.Add: argument 1 must be i32, got 1.5\"" },
        { "try { host.Add(2 ** 31, 1) } catch (e) { e.message }",
          "\"host.Add: argument 1 must be i32, got 2147483648\"" },
        { "try { host.Add(2n ** 31n, 1) } catch (e) { e.message }",
          "\"host.Add: argument 1 must be i32, got 2147483648n\"" },
        { "try { host.Twice64(2n ** 64n) } catch (e) { e.message }",
          "\"host.Twice64: argument 1 must be i64, got 18446744073709551616n\"" },
        { "try { host.Greet(null) } catch (e) { e.message }", "\"host.Greet: argument 1 must be string, got null\"" },
        { "try { host.Rev([1]) } catch (e) { e.message }", "\"host.Rev: argument 1 must be bytes, got array\"" },
        { "try { host.Nope() } catch (e) { e.constructor.name + ': ' + e.message }",
          "\"TypeError: host.Nope: no such host function\"" },
        { "try { host.Fail() } catch (e) { e.constructor.name + ': ' + e.message }",
          "\"Error: host.Fail: the host says no\"" },
        { "try { host.x = 1 } catch (e) { e.message }", "\"host is read-only\"" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) CHECK_STR(eval(sb, cases[i].code), cases[i].want);
    const char *r;
    hl_status st = call_s(sb, HL_LANG_FN_EVAL, HL_STRING, &r, 1, "host.Fail()");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "Error: host.Fail: the host says no");
}

/* ---- hostile scripts ---- */
static void test_hostile(void)
{
    const char *r;
    hl_config *cfg = js_config(500, 1 << 20);
    hl_sandbox *sb = js_sandbox(cfg);
    hl_snapshot *snap = NULL;
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);

    double t0 = test_now_ms();
    CHECK_INT(call_s(sb, HL_LANG_FN_EVAL, HL_STRING, &r, 1, "for (;;) {}"), HL_ERR_CANCELLED);
    CHECK(test_now_ms() - t0 < 5000);
    CHECK_HAS(hl_last_error(sb), "timed out after 500 ms");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_STR(eval(sb, "6 * 7"), "42");
    /* No time limit for the rest (allocation-heavy, slow with today's allocator). */
    hl_sandbox_set_timeout(sb, 0);

    /* Endless recursion is JavaScript's own catchable error; the sandbox stays Ready. */
    CHECK_STR(eval(sb, "function f(n) { return f(n + 1) + 1 }\n"
                       "try { f(0) } catch (e) { e.constructor.name + ': ' + e.message }"),
              "\"InternalError: stack overflow\"");
    hl_status st = call_s(sb, HL_LANG_FN_EVAL, HL_STRING, &r, 1, "function g() { return [g()] } g()");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "InternalError: stack overflow\n    at g (<eval>:1:");
    /* ... also in C code QuickJS recurses in (JSON.stringify of a deeply nested array). */
    CHECK_STR(eval(sb, "let deep = []; for (let i = 0; i < 1e5; i++) deep = [deep];\n"
                       "try { JSON.stringify(deep) } catch (e) { e.constructor.name + ': ' + e.message }"),
              "\"InternalError: stack overflow\"");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);

    /* Allocating without end is JavaScript's out-of-memory error. */
    st = call_s(sb, HL_LANG_FN_EVAL, HL_STRING, &r, 1, "let a = []; for (;;) a.push(new Array(10000).fill(1.5))");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "InternalError: out of memory");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    CHECK_STR(eval(sb, "a = null; [1, 2].length"), "2");
    /* Doubling a string makes ropes (cheap): it ends at QuickJS's length limit. */
    st = call_s(sb, HL_LANG_FN_EVAL, HL_STRING, &r, 1, "let s = 'x'; for (;;) s += s");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "InternalError: string too long");
    st = call_s(sb, HL_LANG_FN_EVAL, HL_STRING, &r, 1,
                "let t = []; for (let i = 0;; i++) t.push('k' + i + 'x'.repeat(100))");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "InternalError: out of memory");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_STR(eval(sb, "'still ' + 'fine'"), "\"still fine\"");

    /* Printing 100 MB meets the output limit (1 MB here). */
    out_clear();
    st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3,
                "const line = 'y'.repeat(1 << 20); for (let i = 0; i < 100; i++) print(line)", "p.js", "[]");
    CHECK_INT(st, HL_ERR_CANCELLED);
    CHECK_HAS(hl_last_error(sb), "printed and logged more than the limit of 1048576 bytes");
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_STR(eval(sb, "1"), "1");

    /* The clock: Date.now() is the host's time (within a minute), local time is UTC. */
    double host_ms = (double)time(NULL) * 1000, guest_ms = atof(eval(sb, "Date.now()"));
    CHECK(guest_ms > host_ms - 60000 && guest_ms < host_ms + 60000);
    CHECK_STR(eval(sb, "new Date(0).getTimezoneOffset()"), "0");
    CHECK_STR(eval(sb, "String(new Date(0))"), "\"Thu Jan 01 1970 00:00:00 GMT+0000\"");
    /* Math.random is seeded from getentropy, again after each restore: two restores of one
     * snapshot, and two sandboxes, do not share a sequence. */
    char first[3][64];
    for (int i = 0; i < 2; i++) {
        CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
        snprintf(first[i], sizeof first[i], "%s", eval(sb, "Math.random()"));
    }
    hl_sandbox *other = js_sandbox(cfg);
    snprintf(first[2], sizeof first[2], "%s", eval(other, "Math.random()"));
    hl_sandbox_free(other);
    CHECK(strcmp(first[0], first[1]) != 0);
    CHECK(strcmp(first[0], first[2]) != 0);
    CHECK(atof(first[0]) >= 0 && atof(first[0]) < 1 && first[0][0] == '0');
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* ---- QuickJS's own tests ---- */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 && (p = malloc(n + 1))) {
        if (fread(p, 1, n, f) != (size_t)n) {
            free(p);
            p = NULL;
        } else {
            p[n] = 0;
        }
    }
    fclose(f);
    return p;
}

/* test_builtin.js runs under `qjs --std` (Makefile of QuickJS): it uses std.gc, os.platform and
 * os.setTimeout as globals. The guest's std module has gc; it has no os module: this stand-in
 * keeps the timeouts' callbacks, and runTimers calls them once the test's Run (and all its
 * promise jobs, the FinalizationRegistry callbacks among them) is over, as qjs's event loop
 * runs timers after the jobs. */
static const char std_shim[] = "import * as std from 'std';\n"
                               "globalThis.std = std;\n"
                               "const timers = [];\n"
                               "globalThis.os = { platform: 'hyperlight', setTimeout(f) { timers.push(f) } };\n"
                               "globalThis.runTimers = () => { while (timers.length) timers.shift()() };\n";

static void test_quickjs_files(void)
{
    static const char *files[] = { "test_closure.js", "test_language.js", "test_loop.js",
                                   "test_bigint.js",  "test_builtin.js",  "test_cyclic_import.js" };
    /* test_cyclic_import.js imports these two: mapped under their names, which is where
     * QuickJS's default normalisation puts "./assert.js" from a script named so. */
    static const char *imported[] = { "assert.js", "fixture_cyclic_import.js" };
    const char *b = getenv("HL_BUILD"), *r;
    hl_config *cfg = js_config(60000, 0);
    for (size_t i = 0; i < sizeof imported / sizeof imported[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s/%s", b ? b : "build", QJS_TESTS, imported[i]);
        CHECK_INT(hl_config_map_file(cfg, path, imported[i]), HL_OK);
    }
    hl_sandbox *sb = js_sandbox(cfg);
    hl_snapshot *snap = NULL;
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s/%s", b ? b : "build", QJS_TESTS, files[i]);
        char *code = read_file(path);
        CHECK(code != NULL);
        if (!code) continue;
        CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
        if (strcmp(files[i], "test_builtin.js") == 0)
            CHECK_INT(call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, std_shim, "shim.mjs", "[]"), HL_OK);
        out_clear();
        double t0 = test_now_ms();
        hl_status st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, code, files[i], "[]");
        if (st == HL_OK && strcmp(files[i], "test_builtin.js") == 0)
            st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, "runTimers()", "timers.js", "[]");
        if (st != HL_OK) fprintf(stderr, "%s: %s\n%s%s", files[i], hl_last_error(sb), out[0], out[1]);
        else printf("     %s: passed in %.0f ms\n", files[i], test_now_ms() - t0);
        CHECK_INT(st, HL_OK);
        free(code);
    }
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* ---- ES modules from mapped files ---- */
static void test_modules(void)
{
    char dir[] = "/tmp/test_javascript.XXXXXX", path[2][600];
    const char *text[2] = { "export const add = (a, b) => a + b;\nexport default 'lib';\n",
                            "export function boom() { throw new Error('from the module') }\n" };
    const char *r;
    CHECK(mkdtemp(dir) != NULL);
    hl_config *cfg = js_config(0, 0);
    for (int i = 0; i < 2; i++) {
        snprintf(path[i], sizeof path[i], "%s/m%d.mjs", dir, i);
        FILE *f = fopen(path[i], "w");
        CHECK(f != NULL);
        if (f) {
            fputs(text[i], f);
            fclose(f);
        }
    }
    CHECK_INT(hl_config_map_file(cfg, path[0], "lib/math.mjs"), HL_OK);
    CHECK_INT(hl_config_map_file(cfg, path[1], "lib/boom.mjs"), HL_OK);
    hl_sandbox *sb = js_sandbox(cfg);
    out_clear();
    hl_status st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3,
                          "import name, { add } from './lib/math.mjs'; print(name, add(2, 3))", "main.mjs", "[]");
    CHECK_INT(st, HL_OK);
    CHECK_STR(out[0], "lib 5\n");
    /* Dynamic import from Eval, and an error thrown inside an imported module. */
    CHECK_STR(eval(sb, "var got; import('lib/math.mjs').then(m => { got = m.add(40, 2) }); 0"), "0");
    CHECK_STR(eval(sb, "got"), "42");
    st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, "import { boom } from 'lib/boom.mjs'; boom()", "b.mjs", "[]");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "Error: from the module\n    at boom (lib/boom.mjs:1:");
    st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, &r, 3, "import { x } from './lib/none.mjs'", "c.mjs", "[]");
    CHECK_FAILS(sb, st, HL_LANG_ERR_SCRIPT, "ReferenceError: could not load module 'lib/none.mjs': ");
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    for (int i = 0; i < 2; i++) unlink(path[i]);
    rmdir(dir);
}

/* Without sizes from the embedder the guest's declared defaults hold (HL_GUEST_DEFAULTS):
 * enough stack for QuickJS's own recursion limit. */
static void test_defaults(void)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb = js_sandbox(cfg);
    CHECK_STR(eval(sb, "function f(n) { return f(n + 1) + 1 }\n"
                       "try { f(0) } catch (e) { e.constructor.name + ': ' + e.message }"),
              "\"InternalError: stack overflow\"");
    CHECK_STR(eval(sb, "let big = new Uint8Array(16 << 20); big.length"), "16777216");
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

int main(void)
{
    hl_config *cfg = js_config(0, 0);
    hl_sandbox *sb = js_sandbox(cfg);
    hl_snapshot *fresh = NULL;
    const char *r;
    CHECK_INT(hl_sandbox_fn_count(sb) >= 6, 1);
    CHECK_INT(hl_snapshot_take(sb, &fresh), HL_OK);
    CHECK_STR(last_error(sb), "{}");
    test_eval(sb);
    test_run(sb);
    test_repl(sb);
    test_host(sb);
    CHECK_INT(hl_sandbox_restore(sb, fresh), HL_OK);
    CHECK_STR(last_error(sb), "{}");
    CHECK_INT(call_s(sb, HL_LANG_FN_EVAL, HL_STRING, &r, 1, "typeof g"), HL_OK);
    CHECK_STR(r, "\"undefined\""); /* the restore dropped the earlier globals */
    hl_snapshot_free(fresh);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    test_handle();
    test_modules();
    test_defaults();
    test_hostile();
    test_quickjs_files();
    return check_exit("test_javascript");
}

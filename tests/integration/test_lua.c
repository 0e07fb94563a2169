/* test_lua.c - the Lua guest (build/guests/lua.elf, lang/lua/) against real KVM: every
 * protocol function with good and bad input (exact values, codes and messages), host
 * functions with right and wrong types, handlers with restore between requests, hostile
 * scripts (endless loop, deep recursion, memory exhaustion, endless output, non-JSON
 * results), and the Lua suite tests/lang/lua/NAME.lua whose stdout must equal NAME.out. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hyperlight/lang.h"

struct out {
    char *buf[3];
    size_t len[3];
};

static void capture(void *user, int stream, const char *data, size_t len)
{
    struct out *o = user;
    int s = stream == 2 ? 2 : 1;
    o->buf[s] = realloc(o->buf[s], o->len[s] + len + 1);
    memcpy(o->buf[s] + o->len[s], data, len);
    o->len[s] += len;
    o->buf[s][o->len[s]] = 0;
}

static void out_reset(struct out *o)
{
    for (int s = 1; s <= 2; s++) {
        free(o->buf[s]);
        o->buf[s] = NULL, o->len[s] = 0;
    }
}
static const char *out_str(struct out *o, int s) { return o->buf[s] ? o->buf[s] : ""; }

static int h_add(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    (void)c, (void)n;
    *r = hl_i32(a[0].v.i32 + a[1].v.i32);
    return 0;
}
static int h_greet(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    char *s = hl_host_call_alloc(c, a[0].v.buf.len + 8);
    (void)n;
    sprintf(s, "Hello, %s", hl_value_str(&a[0]));
    *r = hl_str(s);
    return 0;
}
static int h_fail(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    (void)a, (void)n, (void)r;
    return hl_host_call_error(c, 7, "the host says no");
}
static int h_mix(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    char *s = hl_host_call_alloc(c, 128);
    (void)n;
    snprintf(s, 128, "%llu %g %d %zu", (unsigned long long)a[0].v.u64, a[1].v.f64, a[2].v.b, a[3].v.buf.len);
    *r = hl_str(s);
    return 0;
}

static struct out out;

static hl_config *lua_config(size_t heap)
{
    static const hl_type ii[] = { HL_I32, HL_I32 }, s[] = { HL_STRING }, mix[] = { HL_U64, HL_F64, HL_BOOL, HL_BYTES };
    hl_config *cfg = hl_config_new();
    if (!cfg) exit(1);
    if (heap) { /* else the guest's own defaults: 1 MiB stack, 32 MiB heap */
        hl_config_set_heap_size(cfg, heap);
        hl_config_set_scratch_size(cfg, 1 << 20);
    }
    hl_config_set_print(cfg, capture, &out);
    hl_config_register_host_fn(cfg, "Add", HL_I32, ii, 2, h_add, NULL);
    hl_config_register_host_fn(cfg, "Greet", HL_STRING, s, 1, h_greet, NULL);
    hl_config_register_host_fn(cfg, "Fail", HL_I32, NULL, 0, h_fail, NULL);
    hl_config_register_host_fn(cfg, "Mix", HL_STRING, mix, 4, h_mix, NULL);
    return cfg;
}

static hl_sandbox *lua_sandbox(const hl_config *cfg)
{
    hl_sandbox *sb = NULL;
    char path[512];
    const char *b = getenv("HL_BUILD");
    snprintf(path, sizeof path, "%s/guests/lua.elf", b ? b : "build");
    if (hl_sandbox_new_from_file(&sb, path, cfg) != HL_OK) {
        fprintf(stderr, "cannot create the Lua sandbox: %s\n", hl_last_error(NULL));
        exit(1);
    }
    return sb;
}

/* Calls fn with string arguments; returns the status; *res is the string result or the
 * guest's message. */
static hl_status call_s(hl_sandbox *sb, const char *fn, hl_type rt, int n, const char *a0, const char *a1,
                        const char *a2, const char **res)
{
    hl_value args[3] = { hl_str(a0), hl_str(a1 ? a1 : ""), hl_str(a2 ? a2 : "") }, ret;
    hl_status st = hl_call(sb, fn, rt, args, n, &ret);
    *res = st == HL_OK ? (rt == HL_STRING ? hl_value_str(&ret) : "") : hl_last_guest_message(sb);
    return st;
}

/* Eval must succeed with exactly want. */
#define EVAL_OK(sb, code, want)                                                              \
    do {                                                                                     \
        const char *r_;                                                                      \
        hl_status s_ = call_s((sb), HL_LANG_FN_EVAL, HL_STRING, 1, (code), NULL, NULL, &r_); \
        if (s_ != HL_OK) fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, code, r_);   \
        CHECK_INT(s_, HL_OK);                                                                \
        CHECK_STR(r_, want);                                                                 \
    } while (0)

/* A call must fail as a guest error with the protocol code and exactly message msg. */
#define FAILS(sb, fn, n, a0, a1, a2, lcode, msg)                                   \
    do {                                                                           \
        const char *r_;                                                            \
        hl_status s_ = call_s((sb), (fn), fn_ret(fn), (n), (a0), (a1), (a2), &r_); \
        CHECK_INT(s_, HL_ERR_GUEST);                                               \
        CHECK_INT(hl_last_error_code(sb), (lcode));                                \
        CHECK_STR(r_, msg);                                                        \
    } while (0)

static hl_type fn_ret(const char *fn)
{
    return strcmp(fn, HL_LANG_FN_RUN) == 0 || strcmp(fn, HL_LANG_FN_LOAD) == 0 ? HL_VOID : HL_STRING;
}

static void test_eval(hl_sandbox *sb)
{
    EVAL_OK(sb, "1+1", "2");
    EVAL_OK(sb, "return 1, 2", "1");
    EVAL_OK(sb, "local x = 3", "null");
    EVAL_OK(sb, "{a=1, b={1, 2, 3.5}, c='x\\n', d=true, e={}}",
            "{\"a\":1,\"b\":[1,2,3.5],\"c\":\"x\\n\",\"d\":true,\"e\":[]}");
    EVAL_OK(sb, "{['k\"ey']='\\1\\127\\u{e9}\\\\'}", "{\"k\\\"ey\":\"\\u0001\x7f\xc3\xa9\\\\\"}");
    EVAL_OK(sb, "{0.1, 1.0, 1e300, -0.0, 2^53, math.maxinteger, math.mininteger}",
            "[0.1,1.0,1e+300,-0.0,9007199254740992.0,9223372036854775807,-9223372036854775808]");
    EVAL_OK(sb, "nil", "null");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "function() end", NULL, NULL, HL_LANG_ERR_NOT_JSON, "value at . is a function");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "{f={1, print}}", NULL, NULL, HL_LANG_ERR_NOT_JSON, "value at .f[2] is a function");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "local t = {a={}} t.a.b = t return t", NULL, NULL, HL_LANG_ERR_NOT_JSON,
          "value at .a.b is a table that contains itself (a cycle)");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "{x={0/0}}", NULL, NULL, HL_LANG_ERR_NOT_JSON, "value at .x[1] is NaN");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "{['a b']=1/0}", NULL, NULL, HL_LANG_ERR_NOT_JSON, "value at [\"a b\"] is inf");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "{1, a=2}", NULL, NULL, HL_LANG_ERR_NOT_JSON,
          "value at . is a table with both string and integer keys");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "{[1]=1, [3]=3}", NULL, NULL, HL_LANG_ERR_NOT_JSON,
          "value at . is a table with integer keys that are not a sequence 1..n");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "{[true]=1}", NULL, NULL, HL_LANG_ERR_NOT_JSON,
          "value at . is a table with a key that is neither a string nor a positive integer");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "'\\xff'", NULL, NULL, HL_LANG_ERR_NOT_JSON,
          "value at . is a string that is not valid UTF-8");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "coroutine.create(print)", NULL, NULL, HL_LANG_ERR_NOT_JSON, "value at . is a thread");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "x = 1 +", NULL, NULL, HL_LANG_ERR_SYNTAX, "eval:1: unexpected symbol near <eof>");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "error('boom')", NULL, NULL, HL_LANG_ERR_SCRIPT,
          "eval:1: boom\nstack traceback:\n\t[C]: in function 'error'\n\teval:1: in main chunk\n\t[C]: in ?");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "error({code=42})", NULL, NULL, HL_LANG_ERR_SCRIPT,
          "{\"code\":42}\nstack traceback:\n\t[C]: in function 'error'\n\teval:1: in main chunk\n\t[C]: in ?");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "error(setmetatable({}, {__tostring=function() return 'E!' end}))", NULL, NULL,
          HL_LANG_ERR_SCRIPT, "E!\nstack traceback:\n\t[C]: in function 'error'\n\teval:1: in main chunk\n\t[C]: in ?");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "os.exit(3)", NULL, NULL, HL_LANG_ERR_EXIT, "exit 3");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "pcall(os.exit, false) return 5", NULL, NULL, HL_LANG_ERR_EXIT, "exit 1");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "coroutine.wrap(function() pcall(os.exit) end)() return 1", NULL, NULL,
          HL_LANG_ERR_EXIT, "exit 0");
    EVAL_OK(sb, "return 'after exit'", "\"after exit\"");
    EVAL_OK(sb, "string.format('%.17g %.3f %g %a', 0.5, 1/3, 1e20, 1)", "\"0.5 0.333 1e+20 0x1p+0\"");
}

static void test_last_error(hl_sandbox *sb)
{
    const char *r;
    CHECK_INT(call_s(sb, HL_LANG_FN_LAST_ERROR, HL_STRING, 0, "", NULL, NULL, &r), HL_OK);
    CHECK_STR(r, "{}");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "local function f() error('deep') end f()", NULL, NULL, HL_LANG_ERR_SCRIPT,
          "eval:1: deep\nstack traceback:\n\t[C]: in function 'error'\n\teval:1: in local 'f'\n\teval:1: in main chunk\n\t[C]: in ?");
    CHECK_INT(call_s(sb, HL_LANG_FN_LAST_ERROR, HL_STRING, 0, "", NULL, NULL, &r), HL_OK);
    CHECK_STR(r, "{\"message\":\"eval:1: deep\",\"traceback\":\"stack traceback:\\n\\t[C]: in function 'error'\\n\\teval:1: in "
                 "local 'f'\\n\\teval:1: in main chunk\\n\\t[C]: in ?\",\"type\":\"runtime\"}");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "+", NULL, NULL, HL_LANG_ERR_SYNTAX, "eval:1: unexpected symbol near '+'");
    CHECK_INT(call_s(sb, HL_LANG_FN_LAST_ERROR, HL_STRING, 0, "", NULL, NULL, &r), HL_OK);
    CHECK_STR(r, "{\"message\":\"eval:1: unexpected symbol near '+'\",\"traceback\":\"\",\"type\":\"syntax\"}");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "os.exit(9)", NULL, NULL, HL_LANG_ERR_EXIT, "exit 9");
    CHECK_INT(call_s(sb, HL_LANG_FN_LAST_ERROR, HL_STRING, 0, "", NULL, NULL, &r), HL_OK);
    CHECK_STR(r, "{\"message\":\"exit 9\",\"traceback\":\"\",\"type\":\"exit\"}");
    EVAL_OK(sb, "1", "1"); /* a success keeps the last failure */
    CHECK_INT(call_s(sb, HL_LANG_FN_LAST_ERROR, HL_STRING, 0, "", NULL, NULL, &r), HL_OK);
    CHECK_STR(r, "{\"message\":\"exit 9\",\"traceback\":\"\",\"type\":\"exit\"}");
}

static void test_run(hl_sandbox *sb)
{
    const char *r;
    out_reset(&out);
    CHECK_INT(call_s(sb, HL_LANG_FN_RUN, HL_VOID, 3,
                     "print(select('#', ...), arg[0], #arg, ...) io.write('w', 1, '\\n') "
                     "io.stderr:write('to stderr') print(io.read())",
                     "x.lua", "[\"a\",\"b c\"]", &r),
              HL_OK);
    CHECK_STR(out_str(&out, 1), "2\tx.lua\t2\ta\tb c\nw1\nnil\n");
    CHECK_STR(out_str(&out, 2), "to stderr");
    CHECK_INT(call_s(sb, HL_LANG_FN_RUN, HL_VOID, 3, "assert(select('#', ...) == 0 and #arg == 0)", "e.lua", "", &r),
              HL_OK);
    FAILS(sb, HL_LANG_FN_RUN, 3, "print(1)", "x.lua", "[1]", HL_LANG_ERR_NOT_JSON,
          "argv_json is not a JSON array of strings");
    FAILS(sb, HL_LANG_FN_RUN, 3, "print(1)", "x.lua", "[\"a\"", HL_LANG_ERR_NOT_JSON,
          "invalid JSON at byte 4: ',' or ']' expected");
    FAILS(sb, HL_LANG_FN_RUN, 3, "local x = = 1", "bad.lua", "[]", HL_LANG_ERR_SYNTAX,
          "bad.lua:1: unexpected symbol near '='");
    FAILS(sb, HL_LANG_FN_RUN, 3, "\n\nlocal t = nil\nreturn t.x", "s.lua", "[]", HL_LANG_ERR_SCRIPT,
          "s.lua:4: attempt to index a nil value (local 't')\nstack traceback:\n\ts.lua:4: in main chunk\n\t[C]: in ?");
    FAILS(sb, HL_LANG_FN_RUN, 3, "os.exit(42)", "exit.lua", "[]", HL_LANG_ERR_EXIT, "exit 42");
    FAILS(sb, HL_LANG_FN_RUN, 3, "\x1bLua", "bin.lua", "[]", HL_LANG_ERR_SYNTAX,
          "attempt to load a binary chunk (mode is 't')");
}

static void test_repl(hl_sandbox *sb)
{
    static const char *const lines[][2] = {
        { "1+1", "2" },
        { "x = 5", "" },
        { "x, x * 2, nil, 'str'", "5\t10\tnil\tstr" },
        { "function f(a)\n  return a * 7\nend", "" },
        { "f(6)", "42" },
        { "{1,\n2}", NULL }, /* a table: its address */
        { "setmetatable({}, {__tostring = function() return 'T' end})", "T" },
        { "print('hi')", "" },
        { "local y = 1", "" },
        { "y", "nil" },
    };
    const char *r;
    out_reset(&out);
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        CHECK_INT(call_s(sb, HL_LANG_FN_REPL, HL_STRING, 1, lines[i][0], NULL, NULL, &r), HL_OK);
        if (lines[i][1]) CHECK_STR(r, lines[i][1]);
        else CHECK(strncmp(r, "table: 0x", 9) == 0);
    }
    CHECK_STR(out_str(&out, 1), "hi\n");
    /* an incomplete statement: the host sends it again with the next line */
    FAILS(sb, HL_LANG_FN_REPL, 1, "function g(a)", NULL, NULL, HL_LANG_ERR_INCOMPLETE,
          "stdin:1: 'end' expected near <eof>");
    FAILS(sb, HL_LANG_FN_REPL, 1, "function g(a)\n  return a +", NULL, NULL, HL_LANG_ERR_INCOMPLETE,
          "stdin:2: unexpected symbol near <eof>");
    FAILS(sb, HL_LANG_FN_REPL, 1, "s = [[long", NULL, NULL, HL_LANG_ERR_INCOMPLETE,
          "stdin:1: unfinished long string (starting at line 1) near <eof>");
    CHECK_INT(call_s(sb, HL_LANG_FN_REPL, HL_STRING, 1, "function g(a)\n  return a + 1\nend", NULL, NULL, &r), HL_OK);
    CHECK_STR(r, "");
    CHECK_INT(call_s(sb, HL_LANG_FN_REPL, HL_STRING, 1, "g(1)", NULL, NULL, &r), HL_OK);
    CHECK_STR(r, "2");
    FAILS(sb, HL_LANG_FN_REPL, 1, "error('r')", NULL, NULL, HL_LANG_ERR_SCRIPT,
          "stdin:1: r\nstack traceback:\n\t[C]: in function 'error'\n\tstdin:1: in main chunk\n\t[C]: in ?");
    FAILS(sb, HL_LANG_FN_REPL, 1, "x = = 2", NULL, NULL, HL_LANG_ERR_SYNTAX, "stdin:1: unexpected symbol near '='");
    FAILS(sb, HL_LANG_FN_REPL, 1, "setmetatable({}, {__tostring = function() return {} end})", NULL, NULL,
          HL_LANG_ERR_SCRIPT, "error calling 'print' ('__tostring' must return a string)");
    FAILS(sb, HL_LANG_FN_REPL, 1, "os.exit(true)", NULL, NULL, HL_LANG_ERR_EXIT, "exit 0");
    CHECK_INT(call_s(sb, HL_LANG_FN_REPL, HL_STRING, 1, "x", NULL, NULL, &r), HL_OK);
    CHECK_STR(r, "5");
}

static void test_handle(void)
{
    hl_config *cfg = lua_config(16 << 20);
    hl_sandbox *sb = lua_sandbox(cfg);
    hl_snapshot *snap = NULL;
    const char *r;
    CHECK_INT(call_s(sb, HL_LANG_FN_LOAD, HL_VOID, 2,
                     "count = 0\nfunction inc(ev) count = count + ev.n return {count = count, echo = ev} end\n"
                     "function bad() return print end\nfunction boom(ev) error('no ' .. ev.what) end\nfunction none() end",
                     "h.lua", NULL, &r),
              HL_OK);
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    CHECK_INT(call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, 2, "inc",
                     "{\"n\":2,\"s\":\"x\\u00e9\\ud83d\\ude00\",\"l\":[1,2.5,null]}", NULL, &r),
              HL_OK);
    CHECK_STR(r, "{\"count\":2,\"echo\":{\"l\":[1,2.5],\"n\":2,\"s\":\"x\xc3\xa9\xf0\x9f\x98\x80\"}}");
    CHECK_INT(call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, 2, "inc", " { \"n\" : 3 } ", NULL, &r), HL_OK);
    CHECK_STR(r, "{\"count\":5,\"echo\":{\"n\":3}}");
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_INT(call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, 2, "inc", "{\"n\":1}", NULL, &r), HL_OK);
    CHECK_STR(r, "{\"count\":1,\"echo\":{\"n\":1}}"); /* the state did not leak across the restore */
    CHECK_INT(call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, 2, "none", "null", NULL, &r), HL_OK);
    CHECK_STR(r, "null");
    FAILS(sb, HL_LANG_FN_HANDLE, 2, "nope", "{}", NULL, HL_LANG_ERR_NO_HANDLER, "no global function 'nope'");
    FAILS(sb, HL_LANG_FN_HANDLE, 2, "count", "{}", NULL, HL_LANG_ERR_NO_HANDLER, "no global function 'count'");
    FAILS(sb, HL_LANG_FN_HANDLE, 2, "inc", "{bad", NULL, HL_LANG_ERR_NOT_JSON,
          "invalid JSON at byte 1: string key expected");
    FAILS(sb, HL_LANG_FN_HANDLE, 2, "inc", "{\"n\":1} x", NULL, HL_LANG_ERR_NOT_JSON,
          "invalid JSON at byte 8: text after the value");
    FAILS(sb, HL_LANG_FN_HANDLE, 2, "inc", "[01]", NULL, HL_LANG_ERR_NOT_JSON,
          "invalid JSON at byte 2: ',' or ']' expected");
    FAILS(sb, HL_LANG_FN_HANDLE, 2, "inc", "\"\\ud800\"", NULL, HL_LANG_ERR_NOT_JSON,
          "invalid JSON at byte 7: high surrogate not followed by a low one");
    FAILS(sb, HL_LANG_FN_HANDLE, 2, "inc", "\"a\nb\"", NULL, HL_LANG_ERR_NOT_JSON,
          "invalid JSON at byte 2: control character in string");
    FAILS(sb, HL_LANG_FN_HANDLE, 2, "inc", "", NULL, HL_LANG_ERR_NOT_JSON,
          "invalid JSON at byte 0: unexpected end of text");
    FAILS(sb, HL_LANG_FN_HANDLE, 2, "bad", "1", NULL, HL_LANG_ERR_NOT_JSON, "value at . is a function");
    FAILS(sb, HL_LANG_FN_HANDLE, 2, "boom", "{\"what\":\"luck\"}", NULL, HL_LANG_ERR_SCRIPT,
          "h.lua:4: no luck\nstack traceback:\n\t[C]: in function 'error'\n\th.lua:4: in function 'boom'\n\t[C]: in ?");
    {
        char deep[1024];
        memset(deep, '[', 201), memset(deep + 201, ']', 201), deep[402] = 0;
        FAILS(sb, HL_LANG_FN_HANDLE, 2, "none", deep, NULL, HL_LANG_ERR_NOT_JSON,
              "invalid JSON at byte 200: nested too deeply (more than 200 levels)");
        deep[200] = 0, memset(deep, '[', 200), memset(deep + 200, ']', 200), deep[400] = 0;
        CHECK_INT(call_s(sb, HL_LANG_FN_HANDLE, HL_STRING, 2, "none", deep, NULL, &r), HL_OK);
    }
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

static void test_host(hl_sandbox *sb)
{
    EVAL_OK(sb, "host.Add(40, 2)", "42");
    EVAL_OK(sb, "host.Add(40.0, -2)", "38");
    EVAL_OK(sb, "host.Greet('Lua')", "\"Hello, Lua\"");
    EVAL_OK(sb, "host.Mix(7, 2.5, true, 'ab\\0c')", "\"7 2.5 1 4\"");
    EVAL_OK(sb, "local n = {} for k in pairs(host) do n[#n + 1] = k end table.sort(n) return n",
            "[\"Add\",\"Fail\",\"Greet\",\"Mix\"]");
    EVAL_OK(sb, "select(2, pcall(host.Add, 1, 'x'))", "\"host.Add: argument 2 must be i32, got string\"");
    EVAL_OK(sb, "select(2, pcall(host.Add, 1.5, 1))", "\"host.Add: argument 1 must be i32, got float\"");
    EVAL_OK(sb, "select(2, pcall(host.Add, 2^31 // 1, 1))", "\"host.Add: argument 1 out of range for i32: 2147483648\"");
    EVAL_OK(sb, "select(2, pcall(host.Add, 1))", "\"host.Add: expected 2 arguments, got 1\"");
    EVAL_OK(sb, "select(2, pcall(host.Greet, 'a\\0b'))",
            "\"host.Greet: argument 1 must be string, got a string with a NUL byte\"");
    EVAL_OK(sb, "select(2, pcall(host.Greet, 5))", "\"host.Greet: argument 1 must be string, got number\"");
    EVAL_OK(sb, "select(2, pcall(host.Mix, -1, 1, true, ''))", "\"host.Mix: argument 1 out of range for u64: -1\"");
    EVAL_OK(sb, "select(2, pcall(host.Mix, 1, 1, 1, ''))", "\"host.Mix: argument 3 must be bool, got number\"");
    EVAL_OK(sb, "select(2, pcall(host.Fail))", "\"host.Fail: the host says no\"");
    EVAL_OK(sb, "select(2, pcall(function() return host.Nope end))", "\"eval:1: host.Nope: no such host function\"");
    EVAL_OK(sb, "select(2, pcall(function() host.x = 1 end))", "\"eval:1: host: the table is read-only\"");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "host.Fail()", NULL, NULL, HL_LANG_ERR_SCRIPT,
          "eval:1: host.Fail: the host says no\nstack traceback:\n\t[C]: in field 'Fail'\n\teval:1: in main chunk\n\t[C]: in ?");
}

static void test_hostile(void)
{
    hl_config *cfg = lua_config(16 << 20);
    hl_sandbox *sb;
    hl_snapshot *snap = NULL;
    const char *r;
    double t0;
    hl_config_set_limits(cfg, 1000, 1 << 20);
    sb = lua_sandbox(cfg);
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    /* an endless loop ends at the time limit; the sandbox works after a restore */
    hl_sandbox_set_timeout(sb, 300);
    t0 = test_now_ms();
    CHECK_INT(call_s(sb, HL_LANG_FN_EVAL, HL_STRING, 1, "while true do end", NULL, NULL, &r), HL_ERR_CANCELLED);
    CHECK(test_now_ms() - t0 < 3000);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    hl_sandbox_set_timeout(sb, 0);
    EVAL_OK(sb, "1+1", "2");
    /* nested C calls: Lua's own limit before the guard page (gsub callbacks, metamethods, parser) */
    EVAL_OK(sb,
            "local function f(n) if n == 0 then return '' end return (string.gsub('x', 'x', function() return f(n-1) end)) end "
            "return select(2, pcall(f, 1000))",
            "\"C stack overflow\"");
    EVAL_OK(sb,
            "local t = setmetatable({}, {__index = function(t, k) return t[k+1] end}) return select(2, pcall(function() "
            "return t[1] end))",
            "\"eval:1: C stack overflow\"");
    EVAL_OK(sb,
            "return (select(2, load('return ' .. string.rep('(', 10000) .. '1' .. string.rep(')', 10000)))):match('^[^\\n]*')",
            "\"C stack overflow\"");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "local t = {} local function f() t[#t + 1] = {} return f() + 1 end return f()", NULL,
          NULL, HL_LANG_ERR_SCRIPT, "not enough memory");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    /* memory exhaustion is Lua's catchable error; the same sandbox goes on */
    EVAL_OK(sb, "select(2, pcall(function() local t = {} for i = 1, 1e8 do t[i] = {i} end end))",
            "\"not enough memory\"");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "local s = 'x' while true do s = s .. s end", NULL, NULL, HL_LANG_ERR_SCRIPT,
          "not enough memory");
    EVAL_OK(sb, "local t = {} for i = 1, 10000 do t[i] = i end return #t", "10000");
    /* endless output stops at the output limit */
    out_reset(&out);
    CHECK_INT(call_s(sb, HL_LANG_FN_EVAL, HL_STRING, 1,
                     "local s = string.rep('x', 1 << 20) for i = 1, 100 do print(s) end", NULL, NULL, &r),
              HL_ERR_CANCELLED);
    CHECK_STR(hl_last_error(sb), "guest call stopped: it printed and logged more than the limit of 1048576 bytes");
    CHECK(out.len[1] <= (1 << 20) + 4096);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    EVAL_OK(sb, "'fine'", "\"fine\"");
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    /* with the guest's default sizes, deep Lua recursion is Lua's "stack overflow" */
    cfg = lua_config(0);
    sb = lua_sandbox(cfg);
    EVAL_OK(sb, "local function f(n) return 1 + f(n+1) end return select(2, pcall(f, 1))", "\"eval:1: stack overflow\"");
    FAILS(sb, HL_LANG_FN_EVAL, 1, "local function f(n) return 1 + f(n+1) end return f(1)", NULL, NULL,
          HL_LANG_ERR_SCRIPT,
          "eval:1: stack overflow\nstack traceback:\n\teval:1: in upvalue 'f'"
          "\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'"
          "\n\t...\t(skipping 99976 levels)"
          "\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'\n\teval:1: in upvalue 'f'"
          "\n\teval:1: in function <eval:1>\n\t(...tail calls...)\n\t[C]: in ?");
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* math.random: fresh seeds from the entropy in every call after a restore of one snapshot;
 * the script's own seed holds across calls and gives lua5.4's sequence. */
static void test_random(void)
{
    hl_config *cfg = lua_config(16 << 20);
    hl_sandbox *sb = lua_sandbox(cfg);
    hl_snapshot *snap = NULL;
    const char *r;
    char first[64] = "";
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    CHECK_INT(call_s(sb, HL_LANG_FN_EVAL, HL_STRING, 1, "math.random(0)", NULL, NULL, &r), HL_OK);
    snprintf(first, sizeof first, "%s", r);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_INT(call_s(sb, HL_LANG_FN_EVAL, HL_STRING, 1, "math.random(0)", NULL, NULL, &r), HL_OK);
    CHECK(strlen(first) > 0 && strcmp(first, r) != 0);
    CHECK_INT(call_s(sb, HL_LANG_FN_REPL, HL_STRING, 1, "math.randomseed(7)", NULL, NULL, &r), HL_OK);
    CHECK_STR(r, "7\t0"); /* Lua 5.4.4 returns the seed, as lua5.4 -i shows */
    CHECK_INT(call_s(sb, HL_LANG_FN_REPL, HL_STRING, 1, "math.random(0)", NULL, NULL, &r), HL_OK);
    CHECK_STR(r, "-4077065267748579521");
    CHECK_INT(call_s(sb, HL_LANG_FN_REPL, HL_STRING, 1, "math.random(1, 100)", NULL, NULL, &r), HL_OK);
    CHECK_STR(r, "88");
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* A long error: the call's message is cut at HL_MAX_MESSAGE, LastError has all of it. A stack
 * too small for Lua's C calls is refused at creation. */
static void test_limits(void)
{
    hl_config *cfg = lua_config(16 << 20);
    hl_sandbox *sb = lua_sandbox(cfg);
    const char *r;
    char want[64];
    CHECK_INT(call_s(sb, HL_LANG_FN_EVAL, HL_STRING, 1, "error(string.rep('e', 10000), 0)", NULL, NULL, &r),
              HL_ERR_GUEST);
    CHECK_INT(strlen(r), HL_MAX_MESSAGE);
    CHECK_INT(strspn(r, "e"), strlen(r));
    CHECK_INT(call_s(sb, HL_LANG_FN_LAST_ERROR, HL_STRING, 0, "", NULL, NULL, &r), HL_OK);
    CHECK_INT(strlen(r), 10000 + strlen("{\"message\":\"\",\"traceback\":\"stack traceback:\\n\\t[C]: in function "
                                        "'error'\\n\\teval:1: in main chunk\\n\\t[C]: in ?\",\"type\":\"runtime\"}"));
    snprintf(want, sizeof want, "{\"message\":\"eeee");
    CHECK(strncmp(r, want, strlen(want)) == 0);
    hl_sandbox_free(sb);
    hl_config_set_scratch_size(cfg, 64 << 10);
    sb = NULL;
    {
        char path[512];
        const char *b = getenv("HL_BUILD");
        snprintf(path, sizeof path, "%s/guests/lua.elf", b ? b : "build");
        CHECK_INT(hl_sandbox_new_from_file(&sb, path, cfg), HL_ERR_ABORTED);
    }
    CHECK_HAS(hl_last_error(NULL), "Lua guest: stack of 65536 bytes is too small");
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* Mapped host files: io.open by label, require of a module mapped as NAME.lua. */
static void test_files(void)
{
    hl_config *cfg = lua_config(16 << 20);
    hl_sandbox *sb;
    CHECK_INT(hl_config_map_file(cfg, "tests/lang/lua/limits.out", "data.txt"), HL_OK);
    CHECK_INT(hl_config_map_file(cfg, "tests/lang/lua/fixtures/mod_fixture.lua", "mod_fixture.lua"), HL_OK);
    sb = lua_sandbox(cfg);
    EVAL_OK(sb, "io.open('data.txt'):read('l')", "\"false\\tlimits.lua:3: stack overflow\"");
    EVAL_OK(sb, "require('mod_fixture').answer", "42");
    EVAL_OK(sb, "{select(2, io.open('nope.txt'))}", "[\"nope.txt: No such file or directory\",2]");
    EVAL_OK(sb, "select(2, pcall(io.lines, 'nope.txt'))", "\"cannot open file 'nope.txt' (No such file or directory)\"");
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    b[*len] = 0;
    fclose(f);
    return b;
}

/* tests/lang/lua/NAME.lua run as NAME.lua: its output must be NAME.out exactly (which is
 * what the host's lua5.4 prints for it; limits.out is written by hand, as lua5.4 on the host
 * would exhaust the host's memory, and agrees with lua5.4 where lua5.4 can run it). */
static void test_suite(hl_sandbox *sb)
{
    DIR *d = opendir("tests/lang/lua");
    struct dirent *e;
    int n = 0;
    CHECK(d != NULL);
    while (d && (e = readdir(d))) {
        char path[512], name[256];
        size_t len, wlen;
        char *code, *want;
        const char *r;
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".lua") != 0) continue;
        snprintf(path, sizeof path, "tests/lang/lua/%s", e->d_name);
        code = slurp(path, &len);
        snprintf(path + strlen(path) - 4, 5, ".out");
        want = slurp(path, &wlen);
        snprintf(name, sizeof name, "%s", e->d_name);
        out_reset(&out);
        CHECK(code && want);
        if (code && want) {
            hl_status st = call_s(sb, HL_LANG_FN_RUN, HL_VOID, 3, code, name, "[]", &r);
            if (st != HL_OK) fprintf(stderr, "%s: %s\n", name, r);
            CHECK_INT(st, HL_OK);
            if (strcmp(out_str(&out, 1), want) != 0) fprintf(stderr, "suite %s: output differs from %s\n", name, path);
            CHECK_STR(out_str(&out, 1), want);
        }
        free(code), free(want);
        n++;
    }
    if (d) closedir(d);
    CHECK(n >= 8);
}

int main(void)
{
    hl_config *cfg = lua_config(16 << 20);
    hl_sandbox *sb = lua_sandbox(cfg);
    test_last_error(sb);
    test_eval(sb);
    test_run(sb);
    test_repl(sb);
    test_host(sb);
    hl_sandbox_free(sb);
    sb = lua_sandbox(cfg);
    test_suite(sb);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    test_handle();
    test_random();
    test_limits();
    test_files();
    test_hostile();
    out_reset(&out);
    return check_exit("test_lua");
}

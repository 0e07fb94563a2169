/* lua_guest.c - the Lua 5.4 guest: one Lua state serving the language-guest protocol
 * (include/hyperlight/lang.h; docs/languages.md, "Lua"). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hyperlight/lang.h"
#include "hyperlight_guest.h"
#include "json.h"
#include "lauxlib.h"
#include "lua.h"
#include "lua_guest.h"
#include "lualib.h"

/* The sizes the guest wants when the embedder sets none: a stack for Lua's full C-call depth
 * and a heap for its full Lua stack (LUAI_MAXSTACK, lang/lua/lang.mk) with room to spare. */
HL_GUEST_DEFAULTS(1 << 20, 32 << 20);

/* Lua's C-stack limit (lang/lua/lua_limits.h), set from the PEB in hl_guest_main. */
int hl_lua_maxccalls = 200;
/* Stack bytes kept for the SDK (calls, exception handling) below Lua's deepest use, and
 * the stack one level of nested C calls may take (a string.gsub callback level takes about
 * 1.3 KiB: docs/languages.md, "Lua"). */
#define STACK_MARGIN (64u << 10)
#define STACK_PER_CCALL 3072u

static lua_State *L;

/* The last failed call's error, for LastError (malloc'd; NULL type: none). */
static struct {
    char *type, *message, *traceback;
} last;

/* Lua's allocator over the SDK's malloc (size classes over TLSF: fast for Lua's many small
 * blocks). NULL when the heap is exhausted, which Lua raises as "not enough memory". */
static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud, (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

/* The message handler of every protected call: the message as lua5.4 prints it (a table
 * error object by __tostring, else as JSON when it has a JSON form) and the traceback. */
static int msgh(lua_State *Ls)
{
    const char *msg = lua_tostring(Ls, 1);
    int code;
    if (hl_lua_is_exit(Ls, 1, &code)) return 1;
    if (!msg) {
        char *json = NULL, err[8];
        size_t n;
        if (luaL_callmeta(Ls, 1, "__tostring") && lua_type(Ls, -1) == LUA_TSTRING) {
            msg = lua_tostring(Ls, -1);
        } else if (lua_type(Ls, 1) == LUA_TTABLE && hl_json_encode(Ls, 1, &json, &n, err, sizeof err) == 0) {
            lua_pushlstring(Ls, json, n); /* a memory error here leaks json: the heap is gone anyway */
            free(json);
            msg = lua_tostring(Ls, -1);
        } else {
            msg = lua_pushfstring(Ls, "(error object is a %s value)", luaL_typename(Ls, 1));
        }
    }
    luaL_traceback(Ls, Ls, msg, 1);
    return 1;
}

/* Calls its first argument with the others: the C level lua5.4's own pmain is, so that a
 * traceback ends with "[C]: in ?" as lua5.4's does. */
static int trampoline(lua_State *Ls)
{
    lua_call(Ls, lua_gettop(Ls) - 1, LUA_MULTRET);
    return lua_gettop(Ls);
}

/* Calls the function below nargs arguments with msgh; nres results (or LUA_MULTRET). */
static int pcall_traced(int nargs, int nres)
{
    int base = lua_gettop(L) - nargs, st;
    lua_pushcfunction(L, trampoline);
    lua_insert(L, base);
    lua_pushcfunction(L, msgh);
    lua_insert(L, base);
    st = lua_pcall(L, nargs + 1, nres, base);
    lua_remove(L, base);
    return st;
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) memcpy(p, s, n), p[n] = 0;
    return p;
}

static void set_last(const char *type, const char *msg, size_t mlen, const char *tb, size_t tlen)
{
    free(last.type), free(last.message), free(last.traceback);
    last.type = dup_n(type, strlen(type));
    last.message = dup_n(msg, mlen);
    last.traceback = dup_n(tb, tlen);
}

/* Fails the guest call with the error object on top of the stack after status st. */
static int fail(int st)
{
    static const char tbmark[] = "\nstack traceback:\n";
    const char *type = st == LUA_ERRSYNTAX ? "syntax" : st == LUA_ERRMEM ? "memory" : "runtime";
    int lcode = st == LUA_ERRSYNTAX ? HL_LANG_ERR_SYNTAX : HL_LANG_ERR_SCRIPT, xcode;
    size_t n = 0;
    const char *s, *tb;
    if (hl_lua_is_exit(L, -1, &xcode)) {
        char m[32];
        int mn = snprintf(m, sizeof m, "exit %d", xcode);
        set_last("exit", m, (size_t)mn, "", 0);
        lua_settop(L, 0);
        return hl_error(HL_LANG_ERR_EXIT, "%s", m);
    }
    s = lua_tolstring(L, -1, &n);
    if (!s) s = "(error object is not a string)", n = strlen(s);
    tb = strstr(s, tbmark);
    if (tb) set_last(type, s, (size_t)(tb - s), tb + 1, n - (size_t)(tb + 1 - s));
    else set_last(type, s, n, "", 0);
    hl_error(lcode, "%s", s);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT); /* after a memory error, give the next call the heap back */
    return lcode;
}

/* Like fail, for errors of ours with a code of the protocol (no Lua traceback). */
static int fail_plain(int code, const char *type, const char *msg)
{
    set_last(type, msg, strlen(msg), "", 0);
    lua_settop(L, 0);
    return hl_error(code, "%s", msg);
}

/* Sets *ret to the JSON text of the value on top of the stack. */
static int ret_json(hl_value *ret)
{
    char *json, err[256];
    size_t n;
    char *out;
    if (hl_json_encode(L, -1, &json, &n, err, sizeof err) != 0) return fail_plain(HL_LANG_ERR_NOT_JSON, "json", err);
    out = hl_ret_alloc(n + 1);
    if (!out) {
        free(json);
        return fail_plain(HL_LANG_ERR_SCRIPT, "memory", "not enough memory");
    }
    memcpy(out, json, n + 1);
    free(json);
    *ret = hl_str(out);
    lua_settop(L, 0);
    return 0;
}

static int load(const char *code, size_t len, const char *chunkname)
{
    return luaL_loadbufferx(L, code, len, chunkname, "t");
}

/* Loads "return " .. code (an expression), else pushes nothing and returns nonzero. */
static int load_expr(const char *code, size_t len, const char *chunkname)
{
    char *buf = malloc(len + 8);
    int st;
    if (!buf) return LUA_ERRMEM;
    memcpy(buf, "return ", 7);
    memcpy(buf + 7, code, len);
    st = load(buf, len + 7, chunkname);
    free(buf);
    if (st != LUA_OK) lua_pop(L, 1);
    return st;
}

/* Protected: decodes the JSON text (light userdata 1, length 2) and pushes the value. */
static int decode_cfn(lua_State *Ls)
{
    hl_json_decode(Ls, lua_touserdata(Ls, 1), (size_t)lua_tointeger(Ls, 2));
    return 1;
}

/* Pushes the decoded JSON; returns 0, or fails the call (HL_LANG_ERR_NOT_JSON). */
static int push_json(const char *s, size_t len, int *rc)
{
    int st;
    lua_pushcfunction(L, decode_cfn);
    lua_pushlightuserdata(L, (void *)s);
    lua_pushinteger(L, (lua_Integer)len);
    st = lua_pcall(L, 2, 1, 0);
    if (st == LUA_OK) return 0;
    if (st == LUA_ERRMEM) {
        *rc = fail(st);
        return -1;
    }
    *rc = fail_plain(HL_LANG_ERR_NOT_JSON, "json", lua_tostring(L, -1));
    return -1;
}

static void begin_call(void)
{
    lua_settop(L, 0);
    hl_lua_exit_reset();
    hl_lua_random_reseed(L);
}

/* Run(code, name, argv_json): the chunk gets the arguments as ... and in the global `arg`
 * (arg[0] = name), as lua5.4 runs a script. */
static int fn_run(const hl_value *a, int argc, hl_value *ret)
{
    const char *name = hl_value_str(&a[1]), *argv = hl_value_str(&a[2]);
    char *chunk;
    int st, rc, nargs;
    (void)argc, (void)ret;
    begin_call();
    if (push_json(a[2].v.buf.len ? argv : "[]", a[2].v.buf.len ? a[2].v.buf.len : 2, &rc)) return rc;
    nargs = lua_type(L, 1) == LUA_TTABLE ? (int)lua_rawlen(L, 1) : -1;
    for (int i = 1; i <= nargs; i++) {
        if (lua_rawgeti(L, 1, i) != LUA_TSTRING) nargs = -1;
        lua_pop(L, 1);
    }
    if (nargs < 0) return fail_plain(HL_LANG_ERR_NOT_JSON, "json", "argv_json is not a JSON array of strings");
    lua_settop(L, 1);
    lua_pushstring(L, name);
    lua_rawseti(L, 1, 0);
    lua_setglobal(L, "arg");
    chunk = malloc(strlen(name) + 2);
    if (!chunk) return fail_plain(HL_LANG_ERR_SCRIPT, "memory", "not enough memory");
    chunk[0] = '@';
    strcpy(chunk + 1, name);
    st = load(hl_value_str(&a[0]), a[0].v.buf.len, chunk);
    free(chunk);
    if (st != LUA_OK) return fail(st);
    lua_getglobal(L, "arg");
    if (!lua_checkstack(L, nargs + 2)) return fail_plain(HL_LANG_ERR_SCRIPT, "memory", "too many arguments");
    for (int i = 1; i <= nargs; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -nargs - 1);
    st = pcall_traced(nargs, 0);
    if (st != LUA_OK) return fail(st);
    lua_settop(L, 0);
    return 0;
}

/* Eval(code): `return <code>` if that parses, else code as a chunk; the first value as JSON. */
static int fn_eval(const hl_value *a, int argc, hl_value *ret)
{
    const char *code = hl_value_str(&a[0]);
    size_t len = a[0].v.buf.len;
    int st;
    (void)argc;
    begin_call();
    st = load_expr(code, len, "=eval");
    if (st != LUA_OK) st = load(code, len, "=eval");
    if (st != LUA_OK) return fail(st);
    st = pcall_traced(0, 1);
    if (st != LUA_OK) return fail(st);
    return ret_json(ret);
}

/* Protected: replaces the values on the stack by one string, their tostrings joined by tabs. */
static int show_cfn(lua_State *Ls)
{
    int n = lua_gettop(Ls);
    luaL_Buffer b;
    luaL_checkstack(Ls, 2, "too many results to print");
    luaL_buffinit(Ls, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(Ls, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return 1;
}

/* True when a syntax error message says the statement is only incomplete (lua.c's test). */
static int incomplete(void)
{
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    return msg && n >= 5 && strcmp(msg + n - 5, "<eof>") == 0;
}

/* Repl(line): lua5.4's interactive mode. An expression shows its values (tostring, tab
 * separated); a statement shows "". An incomplete statement (lua5.4's ">>" prompt) fails with
 * HL_LANG_ERR_INCOMPLETE and the parser's message: the host sends it again with the next line
 * after a newline. */
static int fn_repl(const hl_value *a, int argc, hl_value *ret)
{
    const char *line = hl_value_str(&a[0]), *s;
    size_t len = a[0].v.buf.len, n;
    char *out;
    int st;
    (void)argc;
    begin_call();
    st = load_expr(line, len, "=stdin");
    if (st != LUA_OK) st = load(line, len, "=stdin");
    if (st == LUA_ERRSYNTAX && incomplete()) {
        int rc = hl_error(HL_LANG_ERR_INCOMPLETE, "%s", lua_tostring(L, -1));
        lua_settop(L, 0);
        return rc;
    }
    if (st != LUA_OK) return fail(st);
    st = pcall_traced(0, LUA_MULTRET);
    if (st != LUA_OK) return fail(st);
    if (lua_gettop(L) == 0) {
        *ret = hl_str("");
        return 0;
    }
    lua_pushcfunction(L, show_cfn);
    lua_insert(L, 1);
    st = lua_pcall(L, lua_gettop(L) - 1, 1, 0);
    if (st == LUA_ERRRUN) {
        /* as lua5.4 reports a failing print of the results */
        lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1));
        lua_remove(L, -2);
    }
    if (st != LUA_OK) return fail(st);
    s = lua_tolstring(L, -1, &n);
    out = hl_ret_alloc(n + 1);
    if (!out) return fail_plain(HL_LANG_ERR_SCRIPT, "memory", "not enough memory");
    memcpy(out, s, n + 1);
    *ret = hl_str(out);
    lua_settop(L, 0);
    return 0;
}

/* Load(code, name): runs code (usually defining global handler functions). */
static int fn_load(const hl_value *a, int argc, hl_value *ret)
{
    const char *name = hl_value_str(&a[1]);
    char *chunk = malloc(strlen(name) + 2);
    int st;
    (void)argc, (void)ret;
    begin_call();
    if (!chunk) return fail_plain(HL_LANG_ERR_SCRIPT, "memory", "not enough memory");
    chunk[0] = '@';
    strcpy(chunk + 1, name);
    st = load(hl_value_str(&a[0]), a[0].v.buf.len, chunk);
    free(chunk);
    if (st != LUA_OK) return fail(st);
    st = pcall_traced(0, 0);
    return st != LUA_OK ? fail(st) : 0;
}

/* Handle(handler, event_json): handler(event); its first result as JSON. */
static int fn_handle(const hl_value *a, int argc, hl_value *ret)
{
    const char *name = hl_value_str(&a[0]);
    int st, rc;
    (void)argc;
    begin_call();
    lua_pushglobaltable(L);
    lua_pushstring(L, name);
    if (lua_rawget(L, -2) != LUA_TFUNCTION) {
        char m[320];
        snprintf(m, sizeof m, "no global function '%.255s'", name);
        return fail_plain(HL_LANG_ERR_NO_HANDLER, "handler", m);
    }
    lua_remove(L, 1);
    if (push_json(hl_value_str(&a[1]), a[1].v.buf.len, &rc)) return rc;
    st = pcall_traced(1, 1);
    if (st != LUA_OK) return fail(st);
    return ret_json(ret);
}

/* LastError(): {"message", "traceback", "type"} of the last failure, or {}. */
static int fn_last_error(const hl_value *a, int argc, hl_value *ret)
{
    (void)a, (void)argc;
    begin_call();
    if (!last.type || !last.message || !last.traceback) {
        *ret = hl_str("{}");
        return 0;
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, last.type);
    lua_setfield(L, -2, "type");
    lua_pushstring(L, last.message);
    lua_setfield(L, -2, "message");
    lua_pushstring(L, last.traceback);
    lua_setfield(L, -2, "traceback");
    return ret_json(ret);
}

/* An error outside any protected call (only Lua's own start-up can raise one). */
static int panic(lua_State *Ls) { hl_abort(1, "Lua guest: unprotected error: %s", lua_tostring(Ls, -1)); }

void hl_guest_main(void)
{
    const struct hl_peb *peb = hl_guest_peb();
    size_t usable = peb->stack_size > STACK_MARGIN ? peb->stack_size - STACK_MARGIN : 0;
    if (usable / STACK_PER_CCALL < (size_t)hl_lua_maxccalls) hl_lua_maxccalls = (int)(usable / STACK_PER_CCALL);
    if (hl_lua_maxccalls < 20)
        hl_abort(1, "Lua guest: stack of %llu bytes is too small", (unsigned long long)peb->stack_size);
    L = lua_newstate(l_alloc, NULL);
    if (!L) hl_abort(1, "Lua guest: not enough memory for the Lua state");
    lua_atpanic(L, panic);
    luaL_openlibs(L);
    hl_lua_open_exit(L);
    hl_lua_open_random(L);
    hl_lua_open_host(L);
    lua_settop(L, 0);
    hl_guest_register(HL_LANG_FN_RUN, fn_run, HL_VOID, 3, HL_STRING, HL_STRING, HL_STRING);
    hl_guest_register(HL_LANG_FN_EVAL, fn_eval, HL_STRING, 1, HL_STRING);
    hl_guest_register(HL_LANG_FN_REPL, fn_repl, HL_STRING, 1, HL_STRING);
    hl_guest_register(HL_LANG_FN_LOAD, fn_load, HL_VOID, 2, HL_STRING, HL_STRING);
    hl_guest_register(HL_LANG_FN_HANDLE, fn_handle, HL_STRING, 2, HL_STRING, HL_STRING);
    hl_guest_register(HL_LANG_FN_LAST_ERROR, fn_last_error, HL_STRING, 0);
}

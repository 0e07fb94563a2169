/* lua_host.c - the Lua guest's `host` table: host.NAME(...) calls the embedder's host function
 * NAME, its arguments checked against the signature the SDK reports (hl_host_fn_lookup). */
#include <stdint.h>
#include <string.h>

#include "hyperlight_guest.h"
#include "lauxlib.h"
#include "lua_guest.h"

static const char *type_name(hl_type t)
{
    static const char *const names[] = { "void", "i32", "u32", "i64", "u64", "f32", "f64", "bool", "string", "bytes" };
    return (unsigned)t <= HL_TYPE_MAX ? names[t] : "?";
}

/* What a Lua value is, in the words of the error messages: its Lua type, or "float" for a
 * number without an integer value. */
static const char *lua_kind(lua_State *L, int i)
{
    if (lua_type(L, i) == LUA_TNUMBER && !lua_isinteger(L, i)) return "float";
    return luaL_typename(L, i);
}

static int arg_type_error(lua_State *L, const char *fn, int i, hl_type want)
{
    return luaL_error(L, "host.%s: argument %d must be %s, got %s", fn, i, type_name(want), lua_kind(L, i));
}

/* Converts Lua argument i to *v of type t, raising the Lua error if it does not fit. */
static void check_arg(lua_State *L, const char *fn, int i, hl_type t, hl_value *v)
{
    int isnum = 0;
    lua_Integer n = 0;
    v->type = t;
    switch (t) {
    case HL_I32:
    case HL_U32:
    case HL_I64:
    case HL_U64:
        if (lua_type(L, i) == LUA_TNUMBER) n = lua_tointegerx(L, i, &isnum);
        if (lua_type(L, i) != LUA_TNUMBER || !isnum) arg_type_error(L, fn, i, t);
        if ((t == HL_I32 && (n < INT32_MIN || n > INT32_MAX)) ||
            (t == HL_U32 && (n < 0 || n > (lua_Integer)UINT32_MAX)) || (t == HL_U64 && n < 0))
            luaL_error(L, "host.%s: argument %d out of range for %s: %I", fn, i, type_name(t), n);
        if (t == HL_I32) v->v.i32 = (int32_t)n;
        if (t == HL_U32) v->v.u32 = (uint32_t)n;
        if (t == HL_I64) v->v.i64 = n;
        if (t == HL_U64) v->v.u64 = (uint64_t)n;
        return;
    case HL_F32:
    case HL_F64:
        if (lua_type(L, i) != LUA_TNUMBER) arg_type_error(L, fn, i, t);
        if (t == HL_F32) v->v.f32 = (float)lua_tonumber(L, i);
        if (t == HL_F64) v->v.f64 = lua_tonumber(L, i);
        return;
    case HL_BOOL:
        if (lua_type(L, i) != LUA_TBOOLEAN) arg_type_error(L, fn, i, t);
        v->v.b = lua_toboolean(L, i);
        return;
    case HL_STRING:
    case HL_BYTES:
        if (lua_type(L, i) != LUA_TSTRING) arg_type_error(L, fn, i, t);
        v->v.buf.ptr = lua_tolstring(L, i, &v->v.buf.len);
        if (t == HL_STRING && memchr(v->v.buf.ptr, 0, v->v.buf.len))
            luaL_error(L, "host.%s: argument %d must be string, got a string with a NUL byte", fn, i);
        return;
    default: luaL_error(L, "host.%s: parameter %d has an unknown type", fn, i);
    }
}

/* Pushes the host function's result (consuming ret); returns the number of Lua values. */
static int push_result(lua_State *L, hl_value *ret)
{
    switch (ret->type) {
    case HL_VOID: return 0;
    case HL_I32: lua_pushinteger(L, ret->v.i32); return 1;
    case HL_U32: lua_pushinteger(L, ret->v.u32); return 1;
    case HL_I64: lua_pushinteger(L, ret->v.i64); return 1;
    case HL_U64: lua_pushinteger(L, (lua_Integer)ret->v.u64); return 1; /* wraps above 2^63-1, as Lua does */
    case HL_F32: lua_pushnumber(L, ret->v.f32); return 1;
    case HL_F64: lua_pushnumber(L, ret->v.f64); return 1;
    case HL_BOOL: lua_pushboolean(L, ret->v.b); return 1;
    case HL_STRING:
    case HL_BYTES: {
        /* Copied into a Lua string and freed before anything here can raise. */
        luaL_Buffer b;
        size_t len = ret->v.buf.len;
        char *p = luaL_buffinitsize(L, &b, len);
        memcpy(p, ret->v.buf.ptr, len);
        hl_value_free(ret);
        luaL_pushresultsize(&b, len);
        return 1;
    }
    default: return 0;
    }
}

/* host.NAME(...): upvalue 1 is NAME. */
static int host_call(lua_State *L)
{
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    const hl_host_fn_info *fi = hl_host_fn_lookup(name);
    hl_value args[HL_MAX_ARGS], ret;
    int n = lua_gettop(L), rc;
    if (!fi) return luaL_error(L, "host.%s: no such host function", name);
    if (n != fi->nparams)
        return luaL_error(L, "host.%s: expected %d argument%s, got %d", name, fi->nparams, fi->nparams == 1 ? "" : "s",
                          n);
    for (int i = 0; i < n; i++) check_arg(L, name, i + 1, fi->params[i], &args[i]);
    /* The result's memory would be lost if pushing it raised: make room first. */
    luaL_checkstack(L, 2, "host call");
    memset(&ret, 0, sizeof ret);
    rc = hl_call_host(name, fi->ret, args, n, &ret);
    if (rc != 0) return luaL_error(L, "host.%s: %s", name, hl_host_error());
    return push_result(L, &ret);
}

/* __index of `host`: host.NAME is a function calling NAME; an unknown NAME is an error. */
static int host_index(lua_State *L)
{
    const char *name = lua_tostring(L, 2);
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "host: function names are strings, got %s", luaL_typename(L, 2));
    if (!hl_host_fn_lookup(name)) return luaL_error(L, "host.%s: no such host function", name);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, host_call, 1);
    return 1;
}

static int host_newindex(lua_State *L) { return luaL_error(L, "host: the table is read-only"); }

/* pairs(host): the host function names, each with its function. */
static int host_next(lua_State *L)
{
    lua_Integer i = luaL_checkinteger(L, lua_upvalueindex(1));
    const hl_host_fn_info *fi = hl_host_fn_at((int)i);
    if (!fi) return 0;
    lua_pushinteger(L, i + 1);
    lua_replace(L, lua_upvalueindex(1));
    lua_pushstring(L, fi->name);
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, host_call, 1);
    return 2;
}

static int host_pairs(lua_State *L)
{
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, host_next, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

void hl_lua_open_host(lua_State *L)
{
    static const luaL_Reg meta[] = {
        { "__index", host_index }, { "__newindex", host_newindex }, { "__pairs", host_pairs }, { NULL, NULL }
    };
    lua_newtable(L);
    luaL_newlib(L, meta);
    lua_pushliteral(L, "host");
    lua_setfield(L, -2, "__name");
    lua_setmetatable(L, -2);
    lua_setglobal(L, "host");
}

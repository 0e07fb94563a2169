/* lua_exit.c - os.exit in the Lua guest: it ends the guest call (HL_LANG_ERR_EXIT, "exit N")
 * instead of the process, and no pcall in the script can catch
 * it: pcall, xpcall and coroutine.resume re-raise it. */
#include <stdlib.h>

#include "lauxlib.h"
#include "lua_guest.h"

static char exit_key; /* its address is the error object of an exit */
static int exit_pending, exit_code;

int hl_lua_is_exit(lua_State *L, int idx, int *code)
{
    if (lua_type(L, idx) != LUA_TLIGHTUSERDATA || lua_touserdata(L, idx) != &exit_key) return 0;
    *code = exit_code;
    return 1;
}

void hl_lua_exit_reset(void) { exit_pending = 0; }

/* os.exit([code [, close]]): code true (the default) is 0, false is 1, else an integer. */
static int os_exit(lua_State *L)
{
    if (lua_isboolean(L, 1)) exit_code = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
    else exit_code = (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
    exit_pending = 1;
    lua_pushlightuserdata(L, &exit_key);
    return lua_error(L);
}

/* The continuation: after the wrapped catcher returned (or resumed after a yield). */
static int catcher_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status, (void)ctx;
    if (exit_pending) {
        lua_pushlightuserdata(L, &exit_key);
        return lua_error(L);
    }
    return lua_gettop(L);
}

/* Calls upvalue 1 (pcall, xpcall or coroutine.resume) with the arguments, yieldable. The
 * arguments are checked here first, so that a bad one is reported with this function's
 * name and the caller's position, as lua5.4 reports it for the function it wraps. */
static int catcher(lua_State *L)
{
    switch (lua_tointeger(L, lua_upvalueindex(2))) {
    case 0: luaL_checkany(L, 1); break;
    case 1: luaL_checktype(L, 2, LUA_TFUNCTION); break;
    default: luaL_checktype(L, 1, LUA_TTHREAD);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, catcher_k);
    return catcher_k(L, LUA_OK, 0);
}

/* which: 0 pcall, 1 xpcall, 2 coroutine.resume (what catcher checks) */
static void wrap(lua_State *L, int table, const char *name, int which)
{
    table = lua_absindex(L, table);
    lua_getfield(L, table, name);
    lua_pushinteger(L, which);
    lua_pushcclosure(L, catcher, 2);
    lua_setfield(L, table, name);
}

void hl_lua_open_exit(lua_State *L)
{
    lua_pushglobaltable(L);
    wrap(L, -1, "pcall", 0);
    wrap(L, -1, "xpcall", 1);
    lua_getfield(L, -1, "coroutine");
    wrap(L, -1, "resume", 2);
    lua_pop(L, 1);
    lua_getfield(L, -1, "os");
    lua_pushcfunction(L, os_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 2);
}

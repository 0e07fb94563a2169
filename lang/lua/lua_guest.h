/* lua_guest.h - what the Lua guest's files share (lang/lua/). */
#ifndef HL_LUA_GUEST_H
#define HL_LUA_GUEST_H

#include <stddef.h>

#include "lua.h"

/* Sets the global table `host` (lua_host.c). */
void hl_lua_open_host(lua_State *L);

/* Replaces os.exit, and wraps pcall, xpcall and coroutine.resume so that they do not catch
 * an exit (lua_exit.c). */
void hl_lua_open_exit(lua_State *L);
/* True when the error object at idx is an os.exit; *code is the exit code. */
int hl_lua_is_exit(lua_State *L, int idx, int *code);
/* Clears a pending exit (at the start of every guest call). */
void hl_lua_exit_reset(void);

/* Replaces math.randomseed and reseeds math.random from the entropy at the start of every
 * guest call unless the script chose a seed (lua_random.c). */
void hl_lua_open_random(lua_State *L);
void hl_lua_random_reseed(lua_State *L);

#endif

/* lua_random.c - the Lua guest's seeds from the SDK's entropy (getentropy): the string-hash
 * seed of the state (luai_makeseed, lang/lua/lua_limits.h) and math.random's generator, which
 * is reseeded at the start of every guest call until the script seeds it itself with
 * math.randomseed(x [, y]). Sandboxes restored from one snapshot then draw different numbers;
 * a script that asks for a fixed sequence gets it, across calls too. */
#include <time.h>
#include <unistd.h>

#include "lauxlib.h"
#include "lua_guest.h"

static int user_seeded; /* math.randomseed was called with a seed */
static char orig_key;   /* registry key of the library's math.randomseed */

unsigned int hl_lua_makeseed(void)
{
    unsigned int s;
    if (getentropy(&s, sizeof s) != 0) s = (unsigned int)time(NULL);
    return s;
}

static void push_entropy_seed(lua_State *L)
{
    lua_Integer s[2];
    if (getentropy(s, sizeof s) != 0) s[0] = (lua_Integer)time(NULL), s[1] = (lua_Integer)(size_t)L;
    lua_pushinteger(L, s[0]);
    lua_pushinteger(L, s[1]);
}

/* math.randomseed([x [, y]]): with no argument a seed from the entropy. */
static int randomseed(lua_State *L)
{
    int n = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &orig_key);
    lua_insert(L, 1);
    if (n == 0) push_entropy_seed(L);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    user_seeded = n > 0;
    return lua_gettop(L);
}

void hl_lua_random_reseed(lua_State *L)
{
    if (user_seeded) return;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &orig_key);
    push_entropy_seed(L);
    lua_call(L, 2, 0);
}

void hl_lua_open_random(lua_State *L)
{
    lua_getglobal(L, "math");
    lua_getfield(L, -1, "randomseed");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &orig_key);
    lua_pushcfunction(L, randomseed);
    lua_setfield(L, -2, "randomseed");
    lua_pop(L, 1);
}

/* fuzz_lua_json.c - libFuzzer harness for the Lua guest's JSON decoder and encoder
 * (lang/lua/json.c): any bytes either decode or fail with a Lua error, and whatever decodes
 * and then encodes must decode again. Runs on the host with the Lua sources (natively, not
 * in a guest); lang/lua/lang.mk builds it as build/fuzz/fuzz_lua_json (make fuzz). */
#include <stdint.h>
#include <stdlib.h>

#include "json.h"
#include "lauxlib.h"
#include "lualib.h"

static int decode(lua_State *L)
{
    hl_json_decode(L, lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
    return 1;
}

static int decode_p(lua_State *L, const void *p, size_t n)
{
    lua_pushcfunction(L, decode);
    lua_pushlightuserdata(L, (void *)p);
    lua_pushinteger(L, (lua_Integer)n);
    return lua_pcall(L, 2, 1, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L;
    char *out, err[256];
    size_t len;
    if (!L) L = luaL_newstate();
    lua_settop(L, 0);
    if (decode_p(L, data, size) == LUA_OK && hl_json_encode(L, -1, &out, &len, err, sizeof err) == 0) {
        if (decode_p(L, out, len) != LUA_OK) abort();
        free(out);
    }
    lua_settop(L, 0);
    return 0;
}

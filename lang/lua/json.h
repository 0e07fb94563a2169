/* json.h - JSON text <-> Lua values for the Lua guest (docs/languages.md, "Lua"). */
#ifndef HL_LUA_JSON_H
#define HL_LUA_JSON_H

#include <stddef.h>

#include "lua.h"

/* Nesting limit of both directions (arrays and objects inside each other). */
#define HL_JSON_MAX_DEPTH 200

/* Encodes the value at index idx of L as JSON text in malloc'd memory (*out, *len; the
 * caller frees *out). Returns 0, or -1 with a NUL-terminated reason in err (errlen bytes),
 * e.g. "value at .a[2] is a function". Raises no Lua error and leaves the stack as it was. */
int hl_json_encode(lua_State *L, int idx, char **out, size_t *len, char *err, size_t errlen);

/* Decodes JSON text s[0..len) and pushes the value. Bad text raises a Lua error whose message
 * is "invalid JSON at byte N: what" (N counts from 0). Call it in protected mode. */
void hl_json_decode(lua_State *L, const char *s, size_t len);

#endif

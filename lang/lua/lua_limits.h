/* lua_limits.h - included before every Lua source of the guest (lang/lua/lang.mk): Lua's
 * C-stack limit LUAI_MAXCCALLS (llimits.h, 200 by default) becomes a variable, which
 * lua_guest.c sets from the stack size in the PEB at start-up, so that running out of nested
 * C calls is Lua's "stack overflow" error before the guard page below the stack is hit. */
#ifndef HL_LUA_LIMITS_H
#define HL_LUA_LIMITS_H

extern int hl_lua_maxccalls;
#define LUAI_MAXCCALLS hl_lua_maxccalls

/* The state's string-hash seed from the SDK's entropy (lua_random.c), not from time(NULL)
 * and an address as lstate.c would, which are alike in every sandbox. */
unsigned int hl_lua_makeseed(void);
#define luai_makeseed(L) hl_lua_makeseed()

#endif

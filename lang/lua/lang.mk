# lang/lua/lang.mk - the Lua 5.4 guest (build/guests/lua.elf): Lua 5.4.4 compiled once with
# hyperlight-cc into build/obj/lang/lua/, plus our protocol code (lang/lua/*.c). Also the same
# Lua sources built natively with gcc -O2 (build/native/lua, `make native-lua`) for the
# benchmark. Sources are unpacked by lang/lua/fetch.sh (scripts/setup.sh).

LUA_DIR := $(B)/third_party/lua-5.4.4
LUA_STAMP := $(LUA_DIR)/.hyperlight-unpacked
# The library's 32 files: everything but the two programs lua.c and luac.c.
LUA_LIB_NAMES := lapi lcode lctype ldebug ldo ldump lfunc lgc llex lmem lobject lopcodes \
	lparser lstate lstring ltable ltm lundump lvm lzio lauxlib lbaselib lcorolib ldblib \
	liolib lmathlib loadlib loslib lstrlib ltablib lutf8lib linit
# LUA_COMPAT_5_3 as Lua's own Makefile builds it; a Lua stack of at most 200,000 slots
# (lang/lua/patches/0002-maxstack-from-build.patch says why). In the guest, LUAI_MAXCCALLS is a variable
# the guest sets from the stack size in the PEB (lang/lua/lua_limits.h).
LUA_DEFS := -DLUA_COMPAT_5_3 -DLUAI_MAXSTACK=200000
LUA_GUEST_DEFS := $(LUA_DEFS) -include lang/lua/lua_limits.h
LUA_OBJ := $(patsubst %,$(B)/obj/lang/lua/lua/%.o,$(LUA_LIB_NAMES))
LUA_LIB := $(B)/obj/lang/lua/liblua.a
LUA_GUEST_SRC := $(wildcard lang/lua/*.c)
LUA_GUEST_OBJ := $(patsubst lang/lua/%.c,$(B)/obj/lang/lua/%.o,$(LUA_GUEST_SRC))
LUA_ELF := $(B)/guests/lua.elf
LANG_GUESTS += $(LUA_ELF)

$(LUA_DIR)/src/%.c: | $(LUA_STAMP)
	@test -f $@
# fetch.sh unpacks afresh when a patch changed (and rewrites the stamp: everything rebuilds).
$(LUA_STAMP): lang/lua/fetch.sh $(wildcard lang/lua/patches/*.patch)
	$(Q)bash lang/lua/fetch.sh

$(B)/obj/lang/lua/lua/%.o: $(LUA_DIR)/src/%.c $(LUA_STAMP) lang/lua/lua_limits.h lang/lua/lang.mk $(GUEST_SDK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC [lua] $<")
	$(Q)$(HLCC) $(LUA_GUEST_DEFS) -c $< -o $@

$(LUA_LIB): $(LUA_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/obj/lang/lua/%.o: lang/lua/%.c $(LUA_STAMP) $(GUEST_SDK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC [g]  $<")
	$(Q)$(HLCC) $(WARN) -g $(LUA_GUEST_DEFS) -I$(LUA_DIR)/src -Iinclude -MMD -MP -c $< -o $@

$(LUA_ELF): $(LUA_GUEST_OBJ) $(LUA_LIB) $(GUEST_SDK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUEST   $@")
	$(Q)$(HLCC) -o $@ $(LUA_GUEST_OBJ) $(LUA_LIB)

# The integration test runs the guest and the Lua suite under tests/lang/lua/.
ifneq ($(LANG_TEST_DEPS),)
$(B)/tests/integration/test_lua $(B)/tests/integration/test_lua_printf: | $(LUA_ELF)
endif

# ---- native build for the benchmark (not part of make test) ----
LUA_NATIVE := $(B)/native/lua
LUA_NATIVE_OBJ := $(patsubst %,$(B)/obj/native/lua/%.o,$(LUA_LIB_NAMES) lua)
.PHONY: native-lua
native-lua: $(LUA_NATIVE)
$(B)/obj/native/lua/%.o: $(LUA_DIR)/src/%.c $(LUA_STAMP) lang/lua/lang.mk
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC [native] $<")
	$(Q)$(CC) -std=gnu99 -O2 $(LUA_DEFS) -c $< -o $@
$(LUA_NATIVE): $(LUA_NATIVE_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ -lm

# ---- the JSON codec's fuzzer (make fuzz / fuzz-smoke pick it up from tests/fuzz/) ----
LUA_LIB_SRC := $(patsubst %,$(LUA_DIR)/src/%.c,$(LUA_LIB_NAMES))
$(B)/fuzz/fuzz_lua_json: tests/fuzz/fuzz_lua_json.c lang/lua/json.c lang/lua/json.h $(LUA_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang -g -O1 -fsanitize=fuzzer,address,undefined $(LUA_DEFS) -I$(LUA_DIR)/src -Ilang/lua \
		-o $@ $< lang/lua/json.c $(LUA_LIB_SRC) -lm

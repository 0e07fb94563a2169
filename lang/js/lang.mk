# lang/js/lang.mk - the JavaScript guest (build/guests/javascript.elf): QuickJS 2025-04-26
# compiled with hyperlight-cc, plus our guest code (lang/js/*.c). Included by the Makefile.
# The source tree comes from lang/js/fetch.sh (run by scripts/setup.sh). `make native-js`
# builds the same QuickJS for the host (build/native/qjs, for comparisons).

QJS_VER := 2025.04.26
QJS_DIR := $(B)/third_party/quickjs-$(QJS_VER)
QJS_STAMP := $(QJS_DIR)/.hyperlight-stamp
# As QuickJS's own Makefile: _GNU_SOURCE, CONFIG_VERSION, -fwrapv (its code relies on signed
# overflow wrapping) and its warning set. hyperlight-cc defines __hyperlight__ (our patches'
# guest branches) and drops __linux__, under which QuickJS includes <malloc.h> for
# malloc_usable_size (its memory accounting, JS_SetMemoryLimit): included here, else the
# call would be an implicit declaration returning int.
QJS_DEFS := -D_GNU_SOURCE -DCONFIG_VERSION='"2025-04-26"'
QJS_GUEST_CFLAGS := $(QJS_DEFS) -fwrapv -include malloc.h -Wall -Wno-array-bounds -Wno-format-truncation \
	-Wno-infinite-recursion
JS_LIB_SRC := quickjs.c libregexp.c libunicode.c cutils.c dtoa.c
JS_LIB_OBJ := $(patsubst %.c,$(B)/obj/lang/js/qjs/%.o,$(JS_LIB_SRC))
JS_GUEST_SRC := $(wildcard lang/js/*.c)
JS_GUEST_OBJ := $(patsubst lang/js/%.c,$(B)/obj/lang/js/%.o,$(JS_GUEST_SRC))
JS_GUEST := $(B)/guests/javascript.elf
LANG_GUESTS += $(JS_GUEST)

$(QJS_STAMP): lang/js/fetch.sh $(wildcard lang/js/patches/*.patch)
	$(Q)bash lang/js/fetch.sh

# Static pattern rules: a plain pattern would let make try to remake the .d files through
# its built-in %: %.o rule. QuickJS includes no SDK header: it is compiled again when its
# source, its headers (the .d files), hyperlight-cc's or our flags change, not when the SDK's
# library does (order-only: hyperlight-cc only needs it to exist).
$(JS_LIB_OBJ): $(B)/obj/lang/js/qjs/%.o: $(QJS_STAMP) $(HLCC) lang/js/lang.mk | $(GUEST_SDK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC [js] $*.c")
	$(Q)$(HLCC) $(QJS_GUEST_CFLAGS) -MMD -MP -c $(QJS_DIR)/$*.c -o $@

$(JS_GUEST_OBJ): $(B)/obj/lang/js/%.o: lang/js/%.c $(QJS_STAMP) $(GUEST_SDK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC [g]  $<")
	$(Q)$(HLCC) $(QJS_DEFS) $(WARN) -Iinclude -isystem $(QJS_DIR) -MMD -MP -c $< -o $@

$(JS_GUEST): $(JS_GUEST_OBJ) $(JS_LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUEST   $@")
	$(Q)$(HLCC) -o $@ $^

# The test runs the guest (order-only: not an input of the link).
ifneq ($(LANG_TEST_DEPS),)
$(B)/tests/integration/test_javascript: | $(JS_GUEST)
endif


# The host's qjs from the same patched source, built by QuickJS's own Makefile in its tree
# (without LTO, to keep the build short), copied to build/native/qjs.
.PHONY: native-js
native-js: $(B)/native/qjs
$(B)/native/qjs: $(QJS_STAMP)
	$(Q)$(MAKE) -C $(QJS_DIR) CONFIG_LTO= qjs
	@mkdir -p $(dir $@)
	$(Q)cp $(QJS_DIR)/qjs $@

# lang/python/lang.mk - the Python guest (build/guests/python.elf): MicroPython 1.25.0's embed
# package, generated from the unpacked Debian source (lang/python/fetch.sh) with our
# configuration, plus the extmod modules we enable, compiled with hyperlight-cc; and the same
# sources built natively with gcc -O2 (build/native/micropython, `make native-python`), the
# reference the MicroPython test suite and the benchmark compare the guest against.

PY_VER := 1.25.0
PY_TOP := $(B)/third_party/micropython-$(PY_VER)
PY_UNPACKED := $(PY_TOP)/.hyperlight-unpacked
PY_OBJ := $(B)/obj/lang/python
PY_GEN := $(PY_OBJ)/gen
PY_PKG := $(PY_GEN)/micropython_embed
PY_PKG_STAMP := $(PY_GEN)/.package
PY_ELF := $(B)/guests/python.elf
PY_NATIVE := $(B)/native/micropython
LANG_GUESTS += $(PY_ELF)

# The extmod modules (MICROPY_PY_* in lang/python/mpconfigport.h); keep in step with
# HLPY_EXTMOD in lang/python/micropython_embed.mk.
PY_EXTMOD := modjson modre modrandom modtime modbinascii modhashlib modheapq modplatform modos
# py/*.c named from the unpacked tree (the package's copies exist only after generation). In
# a fresh tree the sources are not unpacked yet when make reads this file: the list is then a
# makefile make knows how to make (unpacking first), and make starts again once it is made.
# Goals that build nothing do not need it.
PY_CORE_MK := $(PY_OBJ)/core.mk
ifneq ($(filter-out clean format format-check check-structure setup asan-inner,$(or $(MAKECMDGOALS),all)),)
-include $(PY_CORE_MK)
endif
$(PY_CORE_MK): $(PY_UNPACKED)
	@mkdir -p $(dir $@)
	$(Q)printf 'PY_CORE := %s\n' "$$(cd $(PY_TOP)/py && ls *.c | tr '\n' ' ')" > $@
PY_PORT := mpy_port hlpy_host hlpy_json
PY_LIB_OBJ = $(patsubst %.c,$(1)/py/%.o,$(PY_CORE)) $(patsubst %,$(1)/extmod/%.o,$(PY_EXTMOD)) \
	$(1)/shared/timeutils.o $(1)/shared/gchelper_generic.o $(patsubst %,$(1)/port/%.o,$(PY_PORT))
PY_INC := -I$(PY_PKG) -I$(PY_TOP) -Ilang/python -I. -Iinclude
PY_GUEST_OBJ := $(call PY_LIB_OBJ,$(PY_OBJ)) $(PY_OBJ)/port/python_guest.o
PY_NATIVE_OBJ := $(call PY_LIB_OBJ,$(B)/obj/native/python) $(B)/obj/native/python/port/native_main.o

.PHONY: native-python
native-python: $(PY_NATIVE)

$(PY_UNPACKED): lang/python/fetch.sh $(wildcard lang/python/patches/*.patch)
	$(Q)bash lang/python/fetch.sh && touch $@

# The embed package: qstrs and module registrations are scanned from py/, the extmod
# modules and our port files. Regenerated files replace the old ones only when their text
# changed, so an edit of one of our files recompiles the interpreter only if it added a
# name.
PY_SCANNED := lang/python/mpconfigport.h lang/python/micropython_embed.mk $(patsubst %,lang/python/%.c,$(PY_PORT)) \
	lang/python/python_guest.c
# $(PY_GENHDR) is touched only when a generated header changed: every object depends on it,
# because make would not see a header that changes while it runs (it keeps the mtimes it
# read), but it does look again at the targets of a rule it has just run.
PY_GENHDR := $(PY_GEN)/.genhdr
$(PY_PKG_STAMP) $(PY_GENHDR) &: $(PY_UNPACKED) $(PY_SCANNED)
	@mkdir -p $(PY_GEN)/new
	@$(if $(Q),echo "  GEN     $(PY_PKG)")
	$(Q)cp lang/python/mpconfigport.h $(PY_GEN)/new/mpconfigport.h
	$(Q)$(MAKE) --no-print-directory -s -C $(PY_GEN)/new -f $(CURDIR)/lang/python/micropython_embed.mk \
		MICROPYTHON_TOP=$(abspath $(PY_TOP)) HLPY_ROOT=$(CURDIR) >$(PY_GEN)/gen.log 2>&1 || \
		{ cat $(PY_GEN)/gen.log; exit 1; }
	$(Q)cd $(PY_GEN)/new/micropython_embed && find . -type f | while read -r f; do \
		mkdir -p "../../micropython_embed/$$(dirname "$$f")"; \
		cmp -s "$$f" "../../micropython_embed/$$f" && continue; \
		cp "$$f" "../../micropython_embed/$$f"; \
		case "$$f" in ./genhdr/*) touch ../../.genhdr ;; esac; done
	$(Q)[ -f $(PY_GENHDR) ] || touch $(PY_GENHDR)
	$(Q)touch $(PY_PKG_STAMP)

# ---- the guest ----
PY_GUEST_CFLAGS := $(PY_INC) -Wno-unused-parameter -MMD -MP
$(PY_OBJ)/py/%.o: $(PY_TOP)/py/%.c $(PY_GENHDR)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC [py] $*.c")
	$(Q)$(HLCC) $(PY_GUEST_CFLAGS) -c $(PY_PKG)/py/$*.c -o $@
$(PY_OBJ)/extmod/%.o: $(PY_TOP)/extmod/%.c $(PY_GENHDR)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC [py] extmod/$*.c")
	$(Q)$(HLCC) $(PY_GUEST_CFLAGS) -c $(PY_TOP)/extmod/$*.c -o $@
$(PY_OBJ)/shared/timeutils.o: $(PY_GENHDR)
	@mkdir -p $(dir $@)
	$(Q)$(HLCC) $(PY_GUEST_CFLAGS) -c $(PY_TOP)/shared/timeutils/timeutils.c -o $@
$(PY_OBJ)/shared/gchelper_generic.o: $(PY_GENHDR)
	@mkdir -p $(dir $@)
	$(Q)$(HLCC) $(PY_GUEST_CFLAGS) -c $(PY_PKG)/shared/runtime/gchelper_generic.c -o $@
$(PY_OBJ)/port/%.o: lang/python/%.c $(GUEST_SDK) $(PY_GENHDR)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC [py] $<")
	$(Q)$(HLCC) $(PY_GUEST_CFLAGS) $(WARN) -c $< -o $@

$(PY_ELF): $(PY_GUEST_OBJ) $(GUEST_SDK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUEST   $@")
	$(Q)$(HLCC) -o $@ $(PY_GUEST_OBJ)

# ---- the native build ----
PY_NATIVE_CFLAGS := -std=gnu11 -O2 -DHLPY_NATIVE $(PY_INC) -Wno-unused-parameter -MMD -MP
$(B)/obj/native/python/py/%.o: $(PY_TOP)/py/%.c $(PY_GENHDR)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC [nat] $*.c")
	$(Q)$(CC) $(PY_NATIVE_CFLAGS) -c $(PY_PKG)/py/$*.c -o $@
$(B)/obj/native/python/extmod/%.o: $(PY_TOP)/extmod/%.c $(PY_GENHDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PY_NATIVE_CFLAGS) -c $(PY_TOP)/extmod/$*.c -o $@
$(B)/obj/native/python/shared/timeutils.o: $(PY_GENHDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PY_NATIVE_CFLAGS) -c $(PY_TOP)/shared/timeutils/timeutils.c -o $@
$(B)/obj/native/python/shared/gchelper_generic.o: $(PY_GENHDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PY_NATIVE_CFLAGS) -c $(PY_PKG)/shared/runtime/gchelper_generic.c -o $@
$(B)/obj/native/python/port/%.o: lang/python/%.c $(PY_GENHDR)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC [nat] $<")
	$(Q)$(CC) $(PY_NATIVE_CFLAGS) $(WARN) -c $< -o $@
$(PY_NATIVE): $(PY_NATIVE_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ -lm

-include $(wildcard $(PY_OBJ)/*/*.d $(B)/obj/native/python/*/*.d)

# ---- tests (order-only: the test programs link $^, and find the guests at run time) ----
ifneq ($(LANG_TEST_DEPS),)
$(B)/tests/integration/test_python: | $(PY_ELF)
$(B)/tests/integration/test_python_suite: | $(PY_ELF) $(PY_NATIVE)
endif
tests: $(PY_NATIVE)

# hyperlight-c build. `make demo` sets up, builds and runs the demo; `make test` runs every
# test; `make install PREFIX=/usr/local` installs. Everything is built under build/, laid out
# like an installation prefix (bin/, include/, lib/), so build/ itself is usable as one.
# V=1 shows the commands.

B := build
# gcc unless CC is given (make's built-in default is cc, which `CC ?=` would keep)
ifeq ($(origin CC),default)
CC := gcc
endif
PREFIX ?= /usr/local
Q := $(if $(V),,@)

PICOLIBC := $(B)/lib/hyperlight/picolibc
SETUP_STAMP := $(PICOLIBC)/lib/libc.a

WARN := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
HOST_CFLAGS := -std=gnu11 -O2 -g $(WARN) -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIC \
	-fvisibility=hidden -DHL_BUILDING_LIBRARY -Iinclude -Isrc/common -Isrc/host -MMD -MP \
	$(EXTRA_CFLAGS)
HOST_LDFLAGS := -pthread -lseccomp $(EXTRA_LDFLAGS)
# picolibc's <time.h> declares CLOCK_MONOTONIC and CLOCK_THREAD_CPUTIME_ID only where these
# say the system has them (its sys/features.h sets them for RTEMS alone); src/guest/time.c
# implements them. Not _POSIX_CPUTIME: with it <time.h> declares a function of pid_t without
# defining pid_t, so a guest that includes <time.h> first would not compile.
GUEST_POSIX := -D_POSIX_MONOTONIC_CLOCK=200112L -D_POSIX_THREAD_CPUTIME=1
# How guest code is compiled: the SDK is built with these, and hyperlight-cc (generated from
# tools/hyperlight-cc.in) passes the same to every guest. The one list of them. A guest is not
# Linux: __hyperlight__ says what it is, and the compiler's Linux macros go (interpreters and
# picolibc's headers take Linux branches on them; docs/guest.md).
GUEST_CODE_FLAGS := -std=gnu11 -O2 -ffreestanding -fno-pic -fno-pie -mno-red-zone -fno-stack-protector \
	-mno-avx -fno-asynchronous-unwind-tables -ffunction-sections -fdata-sections $(GUEST_POSIX) \
	-D__hyperlight__ -U__linux__ -U__linux -Ulinux -U__gnu_linux__
# The SDK's own C code uses no x87/SSE register (its user's state; hl_scrub_fpu, fpu.S, resets it):
# it runs the same under CR0.TS or KVM's emulator, which cannot emulate SSE moves.
# Like a guest's, its headers are picolibc's and the compiler's own, never /usr/include.
GUEST_CFLAGS := $(GUEST_CODE_FLAGS) -mgeneral-regs-only -g $(WARN) -nostdinc -isystem $(PICOLIBC)/include \
	-isystem $(shell $(CC) -print-file-name=include) -Iinclude -Isrc/common -MMD -MP
# Programs that use the library (tests, tools, examples) see only the public API, plus
# src/host for the few tests that reach inside.
APP_CFLAGS := -std=gnu11 -O2 -g $(WARN) -Iinclude -Isrc/common -Isrc/host -Itests -MMD -MP \
	$(EXTRA_CFLAGS)

HOST_SRC := $(wildcard src/host/*.c) $(wildcard src/common/*.c)
GUEST_SRC := $(wildcard src/guest/*.c) $(wildcard src/common/*.c)
GUEST_ASM := $(wildcard src/guest/*.S)
HOST_OBJ := $(patsubst %.c,$(B)/obj/host/%.o,$(HOST_SRC))
GUEST_OBJ := $(patsubst %.c,$(B)/obj/guest/%.o,$(GUEST_SRC)) $(patsubst %.S,$(B)/obj/guest/%.o,$(GUEST_ASM))

LIB_A := $(B)/lib/libhyperlight.a
LIB_SO := $(B)/lib/libhyperlight.so
GUEST_LIB := $(B)/lib/libhyperlight_guest.a
GUEST_LD := $(B)/lib/hyperlight/hyperlight_guest.ld
GUEST_SPECS := $(B)/lib/hyperlight/hyperlight_guest.specs
HLCC := $(B)/bin/hyperlight-cc
CLI := $(B)/bin/hyperlight
PC := $(B)/lib/pkgconfig/hyperlight.pc
HEADERS := include/hyperlight.h include/hyperlight_guest.h include/hyperlight/abi.h include/hyperlight/value.h include/hyperlight/lang.h
STAGED_HEADERS := $(patsubst include/%,$(B)/include/%,$(HEADERS))
GUEST_SDK := $(GUEST_LIB) $(GUEST_LD) $(GUEST_SPECS) $(HLCC) $(STAGED_HEADERS) $(SETUP_STAMP)

EXAMPLE_GUESTS := $(patsubst examples/guests/%.c,$(B)/guests/%.elf,$(wildcard examples/guests/*.c))
TEST_GUESTS := $(patsubst tests/guests/%.c,$(B)/tests/guests/%.elf,$(wildcard tests/guests/*.c))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(wildcard tests/unit/*.c))
INTEG_TESTS := $(patsubst tests/integration/%.c,$(B)/tests/integration/%,$(wildcard tests/integration/*.c))
EXAMPLE_HOSTS := $(patsubst examples/host/%.c,$(B)/bin/%,$(wildcard examples/host/*.c))
# The benchmark is one program linked from every bench/*.c (bench/main.c says what is where).
BENCH := $(B)/bin/hyperlight-bench
LANG_BENCH := $(B)/bin/hyperlight-lang-bench
# The floor of `hyperlight serve` (bench/serve/floor.c): in `all`, since bench/serve/run.sh
# needs only the built server and it (make bench-serve).
SERVE_FLOOR := $(B)/bin/hyperlight-serve-floor
BENCH_OBJ := $(patsubst %.c,$(B)/obj/app/%.o,$(wildcard bench/*.c))
BENCH_GUESTS := $(patsubst bench/guests/%.c,$(B)/tests/guests/%.elf,$(wildcard bench/guests/*.c))

.PHONY: all setup lib guest-sdk guests tests demo test unit integration bench bench-alloc install clean format \
	bench-lang bench-serve test-asan asan-inner fuzz fuzz-smoke fuzz-seeds test-hwkvm check-structure \
	format-check python python-test serve-test
# Keep intermediate objects: without this make deletes them and relinks every time.
.SECONDARY:
# The language guests: each lang/<language>/lang.mk adds its guest to LANG_GUESTS and its
# rules (the interpreter's sources are fetched and unpacked by lang/<language>/fetch.sh, which
# scripts/setup.sh runs).
LANG_GUESTS :=
# The language tests need their guests built first; the ASan build of the tests runs them
# against the normal build's guests and says so by emptying this.
LANG_TEST_DEPS := 1
-include $(sort $(wildcard lang/*/lang.mk))
all: lib guest-sdk $(CLI) guests $(EXAMPLE_HOSTS) $(PC) $(LANG_GUESTS) $(SERVE_FLOOR)
lib: $(LIB_A) $(LIB_SO) $(STAGED_HEADERS)
guest-sdk: $(GUEST_SDK)
guests: $(EXAMPLE_GUESTS) $(TEST_GUESTS) $(BENCH_GUESTS)
tests: all $(UNIT_TESTS) $(INTEG_TESTS) $(BENCH) $(LANG_BENCH)

# ---- setup: Debian packages and picolibc (idempotent) ----
setup $(SETUP_STAMP):
	$(Q)bash scripts/setup.sh
# picolibc is rebuilt when its build script, cross file or patches change (build-picolibc.sh
# compares its stamp, and touches libc.a when there was nothing to do).
$(SETUP_STAMP): scripts/build-picolibc.sh scripts/picolibc-cross.txt $(wildcard scripts/picolibc-patches/*.patch)

# ---- host library ----
# (setup first: the host library needs the Debian -dev packages it installs, libseccomp's)
$(B)/obj/host/%.o: %.c | $(SETUP_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(HOST_CFLAGS) -c $< -o $@

$(LIB_A): $(HOST_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIB_SO): $(HOST_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -shared -Wl,-soname,libhyperlight.so -o $@ $^ $(HOST_LDFLAGS)

$(B)/include/%.h: include/%.h
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

$(PC): Makefile
	@mkdir -p $(dir $@)
	$(Q)printf 'prefix=%s\nincludedir=$${prefix}/include\nlibdir=$${prefix}/lib\n\nName: hyperlight\nDescription: run functions in KVM micro-VM sandboxes\nVersion: 0.1.0\nCflags: -I$${includedir}\nLibs: -L$${libdir} -lhyperlight\nLibs.private: -pthread -lseccomp\n' \
		"$(if $(PC_PREFIX),$(PC_PREFIX),$(abspath $(B)))" > $@

# ---- guest SDK ----
$(B)/obj/guest/%.o: %.c | $(SETUP_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC [g]  $<")
	$(Q)$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(B)/obj/guest/%.o: %.S
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_LIB): $(GUEST_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

# The linker script takes its addresses from abi.h: preprocessed as assembly, so abi.h gives
# the bare numbers.
$(GUEST_LD): src/guest/hyperlight_guest.ld include/hyperlight/abi.h
	@mkdir -p $(dir $@)
	$(Q){ echo '/* hyperlight_guest.ld - the guest image layout (from src/guest/hyperlight_guest.ld and include/hyperlight/abi.h) */'; \
		$(CC) -E -P -undef -x assembler-with-cpp -Iinclude $<; } > $@.tmp && mv $@.tmp $@

$(GUEST_SPECS): src/guest/hyperlight_guest.specs
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

# Rewritten only when its text changes, so that editing the Makefile does not rebuild every
# guest.
$(HLCC): tools/hyperlight-cc.in Makefile
	@mkdir -p $(dir $@)
	$(Q)sed 's|@GUEST_CODE_FLAGS@|$(strip $(GUEST_CODE_FLAGS))|' $< > $@.tmp && chmod +x $@.tmp && \
		{ cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@; }

# Guests are built with the wrapper users get, so the wrapper is tested by every build.
$(B)/guests/%.elf: examples/guests/%.c $(GUEST_SDK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUEST   $@")
	$(Q)$(HLCC) -o $@ $<

$(B)/tests/guests/%.elf: tests/guests/%.c $(GUEST_SDK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUEST   $@")
	$(Q)$(HLCC) -o $@ $<

$(B)/tests/guests/%.elf: bench/guests/%.c $(GUEST_SDK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUEST   $@")
	$(Q)$(HLCC) -o $@ $<

# The allocator benchmark's guest once more with each of picolibc's allocators linked in front
# of the SDK's (objects on the command line come before its archive).
ALLOC_VARIANTS := $(B)/tests/guests/alloc_bench_nano.elf $(B)/tests/guests/alloc_bench_full.elf
$(B)/bench-malloc/nano.a $(B)/bench-malloc/full.a &: bench/build-malloc-variants.sh $(SETUP_STAMP)
	$(Q)bash bench/build-malloc-variants.sh

$(B)/tests/guests/alloc_bench_%.elf: bench/guests/alloc_bench.c $(GUEST_SDK) $(B)/bench-malloc/%.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUEST   $@")
	$(Q)$(HLCC) -o $@ $< -Wl,--whole-archive $(B)/bench-malloc/$*.a -Wl,--no-whole-archive

# ---- programs using the library ----
$(B)/obj/app/%.o: %.c $(STAGED_HEADERS) | $(SETUP_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(APP_CFLAGS) -c $< -o $@

# `hyperlight serve` (tools/serve/) is built on Debian's libmicrohttpd and jansson.
$(CLI): $(patsubst %.c,$(B)/obj/app/%.o,$(wildcard tools/*.c tools/serve/*.c)) $(LIB_A)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(HOST_LDFLAGS) -lmicrohttpd -ljansson

$(B)/bin/%: $(B)/obj/app/examples/host/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(HOST_LDFLAGS)

# The language benchmark (bench/lang/langbench.c): the floor and the tools of the benchmark.
$(LANG_BENCH): $(B)/obj/app/bench/lang/langbench.o $(patsubst %,$(B)/obj/app/bench/%.o,floor stats util perf) $(LIB_A)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(HOST_LDFLAGS) -lm

bench-lang: all $(LANG_BENCH)
	$(LANG_BENCH)

$(SERVE_FLOOR): $(B)/obj/app/bench/serve/floor.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(HOST_LDFLAGS)

$(BENCH): $(BENCH_OBJ) $(LIB_A)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(HOST_LDFLAGS) -lm

$(B)/tests/unit/%: $(B)/obj/app/tests/unit/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(HOST_LDFLAGS) -lm

$(B)/tests/integration/%: $(B)/obj/app/tests/integration/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(HOST_LDFLAGS) -lm

# ---- the two README commands ----
demo: all
	@echo '$$ $(CLI) info $(B)/guests/demo.elf'
	@$(CLI) info $(B)/guests/demo.elf
	@echo '$$ $(CLI) call $(B)/guests/demo.elf SayHello str:World'
	@$(CLI) call $(B)/guests/demo.elf SayHello str:World
	@echo '$$ $(CLI) call $(B)/guests/demo.elf Add i32:40 i32:2'
	@$(CLI) call $(B)/guests/demo.elf Add i32:40 i32:2
	@echo '$$ $(CLI) call $(B)/guests/demo.elf CountPrimes u32:1000000'
	@$(CLI) call $(B)/guests/demo.elf CountPrimes u32:1000000
	@echo '$$ $(CLI) snapshot $(B)/guests/demo.elf $(B)/demo.snap && $(CLI) call $(B)/demo.snap Echo "from a snapshot file"'
	@$(CLI) snapshot $(B)/guests/demo.elf $(B)/demo.snap && $(CLI) call $(B)/demo.snap Echo "from a snapshot file"
	@for s in examples/scripts/hello.lua examples/scripts/hello.js examples/scripts/hello.py; do \
		echo "\$$ $(CLI) run $$s"; $(CLI) run $$s || exit 1; done
	@bash scripts/demo-serve.sh $(B)

test: tests python
	$(Q)bash tests/run.sh $(B)
	$(Q)$(MAKE) --no-print-directory python-test
	$(Q)$(MAKE) --no-print-directory serve-test

# `hyperlight serve` against real HTTP clients (tests/serve/test_serve.py, Debian's Python),
# and its container image and Kubernetes manifests checked against it (tests/serve/test_deploy.py).
serve-test: all guests
	$(Q)$(PYTHON) tests/serve/test_serve.py $(B)
	$(Q)$(PYTHON) tests/serve/test_deploy.py $(B)

# The Python package (python/): the extension built against $(LIB_A) into $(B)/python/lib,
# importable from there; its tests run with Debian's Python (docs/python.md).
PYTHON := /usr/bin/python3
python: $(LIB_A) $(STAGED_HEADERS)
	$(Q)cd python && HL_BUILD=$(abspath $(B)) $(PYTHON) setup.py -q build --build-base $(abspath $(B))/python/build \
		--build-lib $(abspath $(B))/python/lib
python-test: python guests
	$(Q)PYTHONPATH=$(abspath $(B))/python/lib HL_BUILD=$(abspath $(B)) $(PYTHON) -m pytest -q -p no:cacheprovider python/tests

# The same tests, C and Python, on hardware KVM (kvm_amd, npt=1 and npt=0) under QEMU emulation
# (docs/platforms.md).
test-hwkvm: tests python
	$(Q)bash scripts/test-hwkvm.sh

# The host side built with AddressSanitizer and UBSan into $(B)/asan; the guests are the
# normal build's (they are not host code).
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
test-asan: all guests
	$(Q)$(MAKE) --no-print-directory B=$(B)/asan SETUP_STAMP=$(SETUP_STAMP) LANG_TEST_DEPS= \
		EXTRA_CFLAGS="$(ASAN_FLAGS) -U_FORTIFY_SOURCE" EXTRA_LDFLAGS="$(ASAN_FLAGS)" asan-inner
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		bash tests/run.sh $(B)/asan $(B)
asan-inner: $(UNIT_TESTS) $(INTEG_TESTS)

# libFuzzer harnesses (clang) for every decoder of guest- or file-supplied bytes. fuzz-smoke
# runs each for FUZZ_SECONDS on a scratch copy of its committed seed corpus.
FUZZ_SECONDS ?= 20
FUZZERS := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz: $(FUZZERS)
$(B)/fuzz/%: tests/fuzz/%.c $(HOST_SRC) $(wildcard tests/fuzz/*.h src/host/*.h src/common/*.h include/*.h include/hyperlight/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc/common -Isrc/host \
		-o $@ $< $(HOST_SRC) -pthread -lseccomp
fuzz-smoke: $(FUZZERS)
	$(Q)for f in $(FUZZERS); do n=$$(basename $$f); n=$${n#fuzz_}; \
		rm -rf $(B)/fuzz/work-$$n && mkdir -p $(B)/fuzz/work-$$n && \
		echo "  fuzz $$n for $(FUZZ_SECONDS) s" && \
		$$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix=$(B)/fuzz/work-$$n/ $(B)/fuzz/work-$$n tests/fuzz/corpus/$$n \
			> $(B)/fuzz/work-$$n.log 2>&1 || { tail -40 $(B)/fuzz/work-$$n.log; exit 1; }; \
		grep -E 'stat::number_of_executed_units|cov:' $(B)/fuzz/work-$$n.log | tail -2; done

# Regenerates the seed corpora made from the build (run it when the snapshot format or the
# guest ABI changes; needs KVM): the snapshot-file seeds from the test guests, and the ELF
# seeds test_elf writes.
SNAPFILE_SEEDER := $(B)/tests/fuzz/make_snapfile_seeds
$(SNAPFILE_SEEDER): $(B)/obj/app/tests/fuzz/make_snapfile_seeds.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(HOST_LDFLAGS)
fuzz-seeds: all guests $(SNAPFILE_SEEDER) $(B)/tests/unit/test_elf
	$(Q)$(SNAPFILE_SEEDER) tests/fuzz/corpus/snapfile $(B)
	$(Q)HL_BUILD=$(B) HL_ELF_SEEDS=tests/fuzz/corpus/elf $(B)/tests/unit/test_elf

unit: $(UNIT_TESTS)
	$(Q)for t in $(UNIT_TESTS); do $$t || exit 1; done

bench: tests
	$(Q)$(B)/bin/hyperlight-bench

bench-serve: all
	$(Q)bash bench/serve/run.sh $(B)

bench-alloc: $(BENCH) $(BENCH_GUESTS) $(ALLOC_VARIANTS)
	$(Q)$(B)/bin/hyperlight-bench --alloc

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include/hyperlight \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/lib/hyperlight
	install -m 755 $(CLI) $(HLCC) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 include/hyperlight.h include/hyperlight_guest.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/hyperlight/abi.h include/hyperlight/value.h include/hyperlight/lang.h \
		$(DESTDIR)$(PREFIX)/include/hyperlight/
	install -m 644 $(LIB_A) $(GUEST_LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(GUEST_LD) $(GUEST_SPECS) $(DESTDIR)$(PREFIX)/lib/hyperlight/
	cp -r $(PICOLIBC) $(DESTDIR)$(PREFIX)/lib/hyperlight/
	install -d $(DESTDIR)$(PREFIX)/lib/hyperlight/guests
	$(if $(LANG_GUESTS),install -m 644 $(LANG_GUESTS) $(DESTDIR)$(PREFIX)/lib/hyperlight/guests/)
	$(MAKE) --no-print-directory PC_PREFIX=$(PREFIX) PC=$(DESTDIR)$(PREFIX)/lib/pkgconfig/hyperlight.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/hyperlight.pc

clean:
	rm -rf $(B)/obj $(B)/lib/*.a $(B)/lib/*.so $(B)/bin $(B)/guests $(B)/tests $(B)/include

# The tree's shape: file and function sizes, include layering, where KVM is used, who writes
# a sandbox's error state, magic values defined once (scripts/check-structure.sh).
check-structure:
	$(Q)bash scripts/check-structure.sh

# clang-format with .clang-format over the C sources scripts/check-format.sh lists (not the
# assembly or the linker script). format rewrites them; format-check only checks
# (scripts/check-format.sh does the same with a summary).
CLANG_FORMAT ?= clang-format
FORMAT_FILES = $(shell bash scripts/check-format.sh --files)
format:
	$(Q)$(CLANG_FORMAT) --style=file -i $(FORMAT_FILES)
format-check:
	$(Q)$(CLANG_FORMAT) --style=file --dry-run -Werror $(FORMAT_FILES)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

/* mpconfigport.h - MicroPython's configuration for the Python guest (build/guests/python.elf)
 * and for the same interpreter built natively (build/native/micropython, HLPY_NATIVE): the
 * EXTRA_FEATURES ROM level, double floats, arbitrary-precision ints (MPZ), a C stack check,
 * and the extmod modules that need no operating system (lang/python/lang.mk lists their
 * sources). Both builds use one configuration so their test results compare like for like. */
#include <stdint.h>

#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

/* Core */
#define MICROPY_ENABLE_COMPILER (1)
#define MICROPY_ENABLE_GC (1)
#define MICROPY_ENABLE_FINALISER (1)
/* The GC's mark stack: with the default 64 entries a heap of many nested objects overflows
 * it, and every overflow rescans the whole heap (200k small dicts took 73 s in a 120 MB heap). */
#define MICROPY_ALLOC_GC_STACK_SIZE (4096)
#define MICROPY_HELPER_REPL (1)
#define MICROPY_STACK_CHECK (1)
#define MICROPY_FLOAT_IMPL (MICROPY_FLOAT_IMPL_DOUBLE)
#define MICROPY_LONGINT_IMPL (MICROPY_LONGINT_IMPL_MPZ)
#define MICROPY_ERROR_REPORTING (MICROPY_ERROR_REPORTING_DETAILED)
#define MICROPY_WARNINGS (1)
#define MICROPY_PY_BUILTINS_HELP (0)
#define MICROPY_PY_BUILTINS_INPUT (0) /* input() is ours: raises EOFError (mpy_port.c) */
#define MICROPY_KBD_EXCEPTION (0)
#define MICROPY_ENABLE_SCHEDULER (0)
#define MICROPY_PERSISTENT_CODE_LOAD (0)
#define MICROPY_EPOCH_IS_1970 (1)
#define MICROPY_USE_INTERNAL_PRINTF (0)
#define MICROPY_USE_INTERNAL_ERRNO (0)
#define MICROPY_ALLOC_PATH_MAX (256)
#define MICROPY_PY_SYS_PLATFORM "hyperlight"
#define MICROPY_PY_SYS_PATH_ARGV_DEFAULTS (0)
#define MICROPY_PY_SYS_STDFILES (1)
#define MICROPY_PY_SYS_EXIT (1)
#define MICROPY_PY_SYS_EXC_INFO (1)
#define MICROPY_PY_SYS_SETTRACE (0)
#define MICROPY_PY_SYS_STDIO_BUFFER (0)
#define MICROPY_PY_UCTYPES (0)
#define MICROPY_PY_THREAD (0)

/* Imports: from files through open/read (mapped host files in the guest), no VFS. */
#define MICROPY_ENABLE_EXTERNAL_IMPORT (1)
#define MICROPY_READER_POSIX (1)
#define MICROPY_VFS (0)
#define MICROPY_PY_IO_IOBASE (1)
#define MICROPY_PY_IO_FILEIO (0)
#define MICROPY_PY_BUILTINS_OPEN_FIX (0)

/* extmod modules (sources listed in lang/python/lang.mk) */
#define MICROPY_PY_JSON (1)
#define MICROPY_PY_RE (1)
#define MICROPY_PY_RE_SUB (1)
#define MICROPY_PY_RE_MATCH_GROUPS (1)
#define MICROPY_PY_RE_MATCH_SPAN_START_END (1)
#define MICROPY_PY_RANDOM (1)
#define MICROPY_PY_RANDOM_EXTRA_FUNCS (1)
#define MICROPY_PY_RANDOM_SEED_INIT_FUNC (hlpy_random_seed())
#define MICROPY_PY_TIME (1)
#define MICROPY_PY_TIME_TIME_TIME_NS (1)
#define MICROPY_PY_TIME_GMTIME_LOCALTIME_MKTIME (1)
#define MICROPY_PY_TIME_INCLUDEFILE "lang/python/modtime_port.h"
#define MICROPY_PY_BINASCII (1)
#define MICROPY_PY_BINASCII_CRC32 (0)
#define MICROPY_PY_HASHLIB (1)
#define MICROPY_PY_HASHLIB_SHA256 (1)
#define MICROPY_PY_HASHLIB_SHA1 (0) /* needs axtls or mbedtls, not in the Debian +ds tarball */
#define MICROPY_PY_HASHLIB_MD5 (0)
#define MICROPY_PY_HEAPQ (1)
#define MICROPY_PY_PLATFORM (1)
#define MICROPY_PY_OS (1)
#define MICROPY_PY_OS_INCLUDEFILE "lang/python/modos_port.h"
#define MICROPY_PY_OS_GETENV_PUTENV_UNSETENV (1)
#define MICROPY_PY_OS_URANDOM (1)
#define MICROPY_PY_OS_UNAME (1)
#define MICROPY_PY_OS_DUPTERM (0)
#define MICROPY_PY_OS_SYNC (0)
#define MICROPY_PY_OS_SEP (1)
#define MICROPY_PY_OS_STATVFS (0)
#define MICROPY_PY_OS_SYSTEM (0)
#define MICROPY_PY_OS_ERRNO (1)
#define MICROPY_PY_DEFLATE (0)
#define MICROPY_PY_SELECT (0)
#define MICROPY_PY_MACHINE (0)
#define MICROPY_PY_NETWORK (0)
#define MICROPY_PY_SOCKET (0)
#define MICROPY_PY_SSL (0)
#define MICROPY_PY_ASYNCIO (0)
#define MICROPY_PY_FRAMEBUF (0)
#define MICROPY_PY_BTREE (0)
#define MICROPY_PY_CRYPTOLIB (0)
#define MICROPY_PY_WEBSOCKET (0)
#define MICROPY_PY_WEBREPL (0)
#define MICROPY_PY_ONEWIRE (0)
#define MICROPY_PY_BLUETOOTH (0)
#define MICROPY_PY_LWIP (0)
#define MICROPY_PY_MARSHAL (0)

/* The machine */
typedef intptr_t mp_int_t;
typedef uintptr_t mp_uint_t;
typedef long mp_off_t;
#define MP_SSIZE_MAX (INTPTR_MAX) /* picolibc's <limits.h> has no SSIZE_MAX */
#define MICROPY_MPHALPORT_H "lang/python/mphalport.h"
#define MICROPY_HW_BOARD_NAME "hyperlight"
#define MICROPY_HW_MCU_NAME "x86_64"
#define MICROPY_HEAP_SIZE_DEFAULT (8u << 20)

#include <alloca.h>

/* The random module's default seed (getentropy; mpy_port.c). */
uint32_t hlpy_random_seed(void);

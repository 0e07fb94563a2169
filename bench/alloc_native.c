/* alloc_native.c - the SDK's allocator (src/guest/malloc.c) compiled into the benchmark and run
 * natively on the host over a static arena, with the workloads of alloc_work.h: the row that
 * tells the allocator's own cost from what running in a guest adds (bench/alloc.c). The public
 * names are renamed (n_malloc, ...) so glibc's stay the process's allocator. */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "hyperlight_guest.h"
#include "util.h"

#define malloc n_malloc
#define free n_free
#define calloc n_calloc
#define realloc n_realloc
#define reallocarray n_reallocarray
#define memalign n_memalign
#define aligned_alloc n_aligned_alloc
#define posix_memalign n_posix_memalign
#define valloc n_valloc
#define pvalloc n_pvalloc
#define malloc_usable_size n_malloc_usable_size
#define cfree n_cfree
#define mallinfo(x) n_mallinfo(x)
#define malloc_stats n_malloc_stats
#define mallopt n_mallopt
#define malloc_trim n_malloc_trim
#define sbrk n_sbrk
static void *n_sbrk(ptrdiff_t incr);
#include "../src/guest/malloc.c"
#include "alloc_work.h"

#define ARENA (256u << 20) /* untouched until used: bss */
static _Alignas(4096) char arena[ARENA];
static size_t arena_used;

static void *n_sbrk(ptrdiff_t incr)
{
    if (incr < 0 || (size_t)incr > ARENA - arena_used) {
        errno = ENOMEM;
        return (void *)-1;
    }
    void *p = arena + arena_used;
    arena_used += (size_t)incr;
    return p;
}

void hl_abort(int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die("alloc: the SDK allocator on the host aborted (%d): %s", code, msg);
}

uint64_t alloc_native_mix(uint32_t ops, uint32_t seed) { return alloc_mix(ops, seed); }
uint64_t alloc_native_build(uint32_t n) { return alloc_build(n); }

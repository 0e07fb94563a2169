/* test_malloc.c - unit tests for the guest allocator (src/guest/malloc.c), compiled for the
 * host with its public names renamed (t_malloc, ...) over a static arena that a test sbrk
 * hands out. After every phase the whole heap is walked and checked: headers, sizes, the
 * free lists and bitmaps, the flags. hl_abort jumps back into the test, so the checks on bad
 * pointers and double frees are tested too. No VM.
 *
 * Build and run: make build/tests/unit/test_malloc && build/tests/unit/test_malloc */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hyperlight_guest.h"

#define malloc t_malloc
#define free t_free
#define calloc t_calloc
#define realloc t_realloc
#define reallocarray t_reallocarray
#define memalign t_memalign
#define aligned_alloc t_aligned_alloc
#define posix_memalign t_posix_memalign
#define valloc t_valloc
#define pvalloc t_pvalloc
#define malloc_usable_size t_malloc_usable_size
#define cfree t_cfree
#define mallinfo(x) t_mallinfo(x) /* not the struct tag */
#define malloc_stats t_malloc_stats
#define mallopt t_mallopt
#define malloc_trim t_malloc_trim
#define sbrk t_sbrk
void *t_sbrk(ptrdiff_t incr);
#include "../../src/guest/malloc.c"
#undef malloc
#undef free
#undef calloc
#undef realloc
#undef memalign
#undef malloc_usable_size

#define AS_MALLOC t_malloc
#define AS_FREE t_free
#define AS_CALLOC t_calloc
#define AS_REALLOC t_realloc
#define AS_MEMALIGN t_memalign
#define AS_USABLE t_malloc_usable_size
#include "alloc_stress.h"

#define ARENA (64u << 20)
static _Alignas(4096) char arena[ARENA];
static size_t arena_used, arena_limit = ARENA;

void *t_sbrk(ptrdiff_t incr)
{
    if (incr < 0 || (size_t)incr > arena_limit - arena_used) {
        errno = ENOMEM;
        return (void *)-1;
    }
    void *p = arena + arena_used;
    arena_used += (size_t)incr;
    return p;
}

static jmp_buf on_abort;
static char abort_msg[256];
static int abort_code, abort_armed;

void hl_abort(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(abort_msg, sizeof abort_msg, fmt, ap);
    va_end(ap);
    abort_code = code;
    if (!abort_armed) {
        fprintf(stderr, "test_malloc: unexpected hl_abort(%d): %s\n", code, abort_msg);
        exit(1);
    }
    abort_armed = 0;
    longjmp(on_abort, 1);
}

/* Walks every block of the heap (one region: the test's sbrk is contiguous) and checks the
 * allocator's invariants; returns the bytes free in TLSF. */
static size_t heap_check(void)
{
    size_t free_bytes = 0, free_blocks = 0, cached = 0;
    int prev_free = 0;
    blk *b = (blk *)H.lo;
    for (;;) {
        CHECK((b->head & MAGIC_MASK) == MAGIC);
        CHECK(!!(b->head & F_PREV_FREE) == prev_free);
        if ((uintptr_t)b == H.top - HDR) break;
        size_t s = bsize(b);
        CHECK(s >= MIN_BLOCK && s % 16 == 0 && (uintptr_t)b % 16 == 8);
        if (s < MIN_BLOCK || (uintptr_t)b + s > H.top - HDR) return 0;
        int is_free = !(b->head & F_BUSY);
        if (is_free) {
            CHECK(!prev_free); /* free neighbours are always merged */
            CHECK(*(uint64_t *)((char *)b + s - HDR) == s);
            unsigned fl, sl;
            mapping(s, &fl, &sl);
            CHECK(H.sl_map[fl] & (1u << sl));
            free_bytes += s;
            free_blocks++;
        }
        if (b->head & F_CACHED) cached += s;
        prev_free = is_free;
        b = next_phys(b);
    }
    CHECK_INT(cached, H.cached);
    size_t listed = 0;
    for (unsigned fl = 0; fl < FL_COUNT; fl++)
        for (unsigned sl = 0; sl < SL_COUNT; sl++) {
            CHECK(!!H.lists[fl][sl] == !!(H.sl_map[fl] & (1u << sl)));
            for (blk *f = H.lists[fl][sl]; f; f = f->next) {
                unsigned a, c;
                mapping(bsize(f), &a, &c);
                CHECK(a == fl && c == sl && !(f->head & F_BUSY));
                listed++;
            }
        }
    CHECK_INT(listed, free_blocks);
    return free_bytes;
}

static void test_basics(void)
{
    void *z = t_malloc(0);
    CHECK(z && (uintptr_t)z % 16 == 0 && t_malloc_usable_size(z) >= 1);
    t_free(z);
    t_free(NULL);
    CHECK_INT(t_malloc_usable_size(NULL), 0);
    for (size_t n = 1; n <= 2048; n++) {
        uint8_t *p = t_malloc(n);
        CHECK(p && (uintptr_t)p % 16 == 0 && t_malloc_usable_size(p) >= n);
        memset(p, 0xAB, t_malloc_usable_size(p));
        t_free(p);
    }
    /* a freed small block comes back for the same size: the cache is LIFO */
    void *a = t_malloc(100), *b = t_malloc(100);
    t_free(a);
    CHECK(t_malloc(100) == a);
    t_free(a);
    t_free(b);
    /* calloc zeroes a dirty block, and refuses an overflowing product */
    uint8_t *d = t_malloc(300);
    memset(d, 0xFF, 300);
    t_free(d);
    uint8_t *c = t_calloc(3, 100);
    CHECK(c == d);
    int zero = 1;
    for (int i = 0; i < 300; i++) zero &= c[i] == 0;
    CHECK(zero);
    t_free(c);
    errno = 0;
    CHECK(t_calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(t_reallocarray(NULL, SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(t_malloc(SIZE_MAX) == NULL && errno == ENOMEM);
    heap_check();
}

static void test_realloc_in_place(void)
{
    /* a large block followed by free space grows where it is, and shrinks where it is */
    uint8_t *p = t_malloc(4000), *guard = t_malloc(20000);
    t_free(guard); /* the space after p is free now (merged with the top) */
    for (int i = 0; i < 4000; i++) p[i] = (uint8_t)i;
    uint8_t *q = t_realloc(p, 16000);
    CHECK(q == p);
    int same = 1;
    for (int i = 0; i < 4000; i++) same &= q[i] == (uint8_t)i;
    CHECK(same);
    CHECK(t_realloc(q, 2000) == q);
    CHECK(t_malloc_usable_size(q) >= 2000 && t_malloc_usable_size(q) < 2000 + MIN_BLOCK + 16);
    CHECK(t_realloc(q, 0) == NULL);
    heap_check();
}

static void test_aligned(void)
{
    for (size_t align = 1; align <= 65536; align <<= 1)
        for (size_t n = 0; n < 5000; n += 777) {
            uint8_t *p = t_memalign(align, n), *q = t_aligned_alloc(align, n);
            void *r = NULL;
            int rc = t_posix_memalign(&r, align, n);
            CHECK(p && q && (uintptr_t)p % align == 0 && (uintptr_t)q % align == 0);
            CHECK((uintptr_t)p % 16 == 0 && t_malloc_usable_size(p) >= n);
            if (align >= sizeof(void *)) CHECK(rc == 0 && r && (uintptr_t)r % align == 0);
            else CHECK_INT(rc, EINVAL);
            if (p) memset(p, 1, n);
            t_free(p);
            t_free(q);
            t_free(r);
        }
    void *v = t_valloc(10), *pv = t_pvalloc(5000);
    CHECK((uintptr_t)v % 4096 == 0 && (uintptr_t)pv % 4096 == 0 && t_malloc_usable_size(pv) >= 8192);
    t_free(v);
    t_free(pv);
    void *r = NULL;
    CHECK_INT(t_posix_memalign(&r, 24, 10), EINVAL);
    errno = 0;
    CHECK(t_memalign(24, 10) == NULL && errno == EINVAL);
    heap_check();
}

static void test_stress(void)
{
    static const uint64_t seeds[] = { 1, 42, 0xC0FFEE, 123456789 };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        int fails = alloc_stress(seeds[i], 40000);
        if (fails) fprintf(stderr, "seed %llu: %s\n", (unsigned long long)seeds[i], as_first_failure);
        CHECK_INT(fails, 0);
        heap_check();
    }
}

/* Fills the heap, checks ENOMEM, frees everything and fills it again as far. */
static void test_exhaustion(void)
{
    static void *blocks[70000];
    size_t counts[2];
    for (int round = 0; round < 2; round++) {
        size_t n = 0, bytes = 0;
        for (; n < 70000; n++) {
            size_t sz = n % 3 ? 1000 : 100 + n % 5000;
            errno = 0;
            if (!(blocks[n] = t_malloc(sz))) break;
            bytes += sz;
        }
        CHECK(n < 70000 && errno == ENOMEM);
        CHECK(bytes > ARENA / 100 * 95); /* the overhead: a header per block and the last step */
        counts[round] = n;
        heap_check();
        for (size_t i = 0; i < n; i++) t_free(blocks[i]);
        heap_check();
        struct mallinfo mi = t_mallinfo();
        CHECK((size_t)mi.arena == arena_used && mi.uordblks == 16); /* first header alignment, sentinel */
        void *big = t_malloc((H.top - H.lo) / 10 * 9);              /* after a flush of the caches */
        CHECK(big != NULL);
        t_free(big);
    }
    CHECK(counts[1] >= counts[0]); /* everything freed is usable again */
}

/* On a fresh heap of 1 MiB: when a 64 KiB step no longer fits, the last bytes of sbrk extend
 * the free block at the top, so one block can take nearly all of the heap. */
static void test_last_bytes(void)
{
    memset(&H, 0, sizeof H);
    arena_used = 0;
    arena_limit = 1u << 20;
    void *p = t_malloc(900 * 1024);
    CHECK(p != NULL);
    t_free(p);
    p = t_malloc((1u << 20) - 100);
    CHECK(p != NULL);
    CHECK(arena_used > (1u << 20) - 64); /* all but the rounding */
    heap_check();
    t_free(p);
    errno = 0;
    CHECK(t_malloc(1u << 20) == NULL && errno == ENOMEM);
    heap_check();
}

static void expect_abort(void (*fn)(void *), void *p, const char *msg)
{
    abort_msg[0] = 0;
    abort_armed = 1;
    if (!setjmp(on_abort)) {
        fn(p);
        abort_armed = 0;
        CHECK(!"no abort");
    }
    CHECK_INT(abort_code, HL_GUEST_ERR_HEAP);
    CHECK(strstr(abort_msg, msg) != NULL);
    if (!strstr(abort_msg, msg)) fprintf(stderr, "  abort message: %s\n", abort_msg);
}

static void do_free(void *p) { t_free(p); }
static void do_realloc(void *p) { (void)t_realloc(p, 10); }

static void test_bad_pointers(void)
{
    char *small = t_malloc(40), *large = t_malloc(5000);
    t_free(small);
    expect_abort(do_free, small, "free(");
    expect_abort(do_free, small, "block already freed (double free?)");
    t_free(large);
    expect_abort(do_free, large, "block already freed (double free?)");
    expect_abort(do_realloc, large, "realloc(");
    char local[32];
    expect_abort(do_free, local, "not a pointer from malloc");
    char *p = t_malloc(64);
    memset(p, 0, 64);
    expect_abort(do_free, p + 16, "not a block from malloc, or its header was overwritten");
    expect_abort(do_free, p + 1, "not a pointer from malloc");
    t_free(p);
    heap_check();
}

int main(void)
{
    test_basics();
    test_realloc_in_place();
    test_aligned();
    test_stress();
    test_bad_pointers();
    test_exhaustion();
    test_last_bytes();
    return check_exit("test_malloc");
}

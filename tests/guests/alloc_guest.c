/* alloc_guest.c - guest for the allocator tests (tests/integration/test_alloc.c): the SDK's
 * malloc family (src/guest/malloc.c) under a seeded stress, alignment, exhaustion, dirty
 * memory, and bad frees. A failed check returns error 1 with a message saying which.
 *
 *   Stress(u64 seed, u32 ops) -> i32       alloc_stress() of tests/alloc_stress.h: 0 failures
 *   Aligned() -> i32                       every aligned API at every power of two 1..64 KiB;
 *                                          returns the number of blocks checked
 *   Realloc(u32 from, u32 to) -> i32       realloc keeps the first min(from, to) bytes; 1 when
 *                                          the block stayed where it was
 *   Usable(u32 n) -> u64                   malloc_usable_size(malloc(n))
 *   Exhaust(u32 size) -> u32               mallocs blocks of size until malloc fails with
 *                                          ENOMEM, keeps them; returns how many
 *   Release() -> u32                       frees what Exhaust kept; returns how many
 *   Arena() -> u64                         mallinfo().arena: the bytes the heap took from sbrk
 *   Huge() -> i32                          malloc, calloc, realloc and memalign of more than
 *                                          the heap: NULL and ENOMEM each (the block given to
 *                                          realloc unchanged); returns 4
 *   Dirty(u32 n) -> u32                    mallocs n bytes, fills them with 0xA5, frees them;
 *                                          then mallocs n again and counts the 0xA5 bytes
 *                                          (malloc does not zero), frees; returns the count
 *   CallocZero(u32 n) -> u32               calloc(1, n): the bytes that are not zero
 *   BadFree(u32 kind) -> i32               0: double free of a small block, 1: of a large one,
 *                                          2: free of a stack address, 3: of a pointer inside
 *                                          a block, 4: realloc of a freed block; never returns */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "../alloc_stress.h"
#include "hyperlight_guest.h"

static int stress(const hl_value *a, int argc, hl_value *r)
{
    int fails = alloc_stress(a[0].v.u64, a[1].v.u32);
    if (fails) return hl_error(1, "%d failures, first: %s", fails, as_first_failure);
    *r = hl_i32(0);
    return 0;
}

static int aligned(const hl_value *a, int argc, hl_value *r)
{
    int n = 0;
    for (size_t align = 1; align <= 65536; align <<= 1)
        for (size_t size = 0; size <= 3000; size += 1000) {
            void *p[4] = { memalign(align, size), aligned_alloc(align, size), NULL, NULL };
            int rc = posix_memalign(&p[2], align, size);
            if (align >= sizeof(void *) && rc) return hl_error(1, "posix_memalign(%zu, %zu) = %d", align, size, rc);
            if (align < sizeof(void *) && rc != EINVAL)
                return hl_error(1, "posix_memalign(%zu, %zu) = %d, want EINVAL", align, size, rc);
            if (align == 4096) p[3] = valloc(size);
            size_t want = align < 16 ? 16 : align;
            for (int i = 0; i < 4; i++) {
                if (!p[i]) {
                    if (i == 3 && align != 4096) continue;
                    if (i == 2 && align < sizeof(void *)) continue;
                    return hl_error(1, "aligned API %d failed for (%zu, %zu)", i, align, size);
                }
                if ((uintptr_t)p[i] % want || malloc_usable_size(p[i]) < size)
                    return hl_error(1, "aligned API %d: %p for (%zu, %zu)", i, p[i], align, size);
                memset(p[i], 0x5A, size);
                n++;
            }
            for (int i = 0; i < 4; i++) free(p[i]);
        }
    void *pv = pvalloc(5000);
    if (!pv || (uintptr_t)pv % 4096 || malloc_usable_size(pv) < 8192) return hl_error(1, "pvalloc(5000) = %p", pv);
    free(pv);
    *r = hl_i32(n + 1);
    return 0;
}

static int re_alloc(const hl_value *a, int argc, hl_value *r)
{
    uint32_t from = a[0].v.u32, to = a[1].v.u32, keep = from < to ? from : to;
    unsigned char *p = malloc(from), *q;
    if (!p) return hl_error(1, "malloc(%u) failed", from);
    for (uint32_t i = 0; i < from; i++) p[i] = (unsigned char)(i * 7 + 3);
    if (!(q = realloc(p, to))) return hl_error(1, "realloc(%u) failed", to);
    for (uint32_t i = 0; i < keep; i++)
        if (q[i] != (unsigned char)(i * 7 + 3)) return hl_error(1, "byte %u changed", i);
    *r = hl_i32(q == p);
    free(q);
    return 0;
}

static int usable(const hl_value *a, int argc, hl_value *r)
{
    void *p = malloc(a[0].v.u32);
    *r = hl_u64(malloc_usable_size(p));
    free(p);
    return 0;
}

static void **kept; /* Exhaust's blocks, each holding a pointer to the one before */

static int exhaust(const hl_value *a, int argc, hl_value *r)
{
    uint32_t n = 0, size = a[0].v.u32 < sizeof(void *) ? sizeof(void *) : a[0].v.u32;
    void **p;
    errno = 0;
    while ((p = malloc(size))) {
        *p = kept;
        kept = p;
        n++;
    }
    if (errno != ENOMEM) return hl_error(1, "malloc failed with errno %d, want ENOMEM", errno);
    *r = hl_u32(n);
    return 0;
}

static int release(const hl_value *a, int argc, hl_value *r)
{
    uint32_t n = 0;
    while (kept) {
        void **next = *kept;
        free(kept);
        kept = next;
        n++;
    }
    *r = hl_u32(n);
    return 0;
}

static int arena(const hl_value *a, int argc, hl_value *r)
{
    *r = hl_u64(mallinfo().arena);
    return 0;
}

static int huge(const hl_value *a, int argc, hl_value *r)
{
    size_t big = (size_t)1 << 31; /* larger than any heap (HL_HEAP_MAX) */
    char *small = malloc(10);
    int n = 0;
    if (!small) return hl_error(1, "malloc(10) failed");
    memcpy(small, "123456789", 10);
    errno = 0;
    n += !malloc(big) && errno == ENOMEM;
    errno = 0;
    n += !calloc(big / 16, 16) && errno == ENOMEM;
    errno = 0;
    n += !realloc(small, big) && errno == ENOMEM;
    errno = 0;
    n += !memalign(4096, big) && errno == ENOMEM;
    if (memcmp(small, "123456789", 10) != 0) return hl_error(1, "a failed realloc changed the block");
    free(small);
    *r = hl_i32(n);
    return 0;
}

static int dirty(const hl_value *a, int argc, hl_value *r)
{
    uint32_t n = a[0].v.u32, count = 0;
    unsigned char *p = malloc(n);
    if (!p) return hl_error(1, "malloc(%u) failed", n);
    memset(p, 0xA5, n);
    free(p);
    if (!(p = malloc(n))) return hl_error(1, "malloc(%u) failed", n);
    for (uint32_t i = 0; i < n; i++) count += p[i] == 0xA5;
    free(p);
    *r = hl_u32(count);
    return 0;
}

static int calloc_zero(const hl_value *a, int argc, hl_value *r)
{
    uint32_t n = a[0].v.u32, count = 0;
    unsigned char *p = calloc(1, n);
    if (!p) return hl_error(1, "calloc(1, %u) failed", n);
    for (uint32_t i = 0; i < n; i++) count += p[i] != 0;
    free(p);
    *r = hl_u32(count);
    return 0;
}

/* The compiler must not see where p comes from (it rejects frees it can prove wrong). */
static void *hide(void *p)
{
    __asm__("" : "+r"(p));
    return p;
}

static int bad_free(const hl_value *a, int argc, hl_value *r)
{
    char local[64];
    char *small = malloc(40), *large = malloc(40000);
    memset(small, 0, 40);
    memset(large, 0, 40000);
    switch (a[0].v.u32) {
    case 0:
        free(small);
        free(small);
        break;
    case 1:
        free(large);
        free(large);
        break;
    case 2: free(hide(local)); break;
    case 3: free(hide(large + 1024)); break;
    case 4:
        free(large);
        (void)!realloc(large, 10);
        break;
    }
    return hl_error(1, "BadFree(%u) returned", a[0].v.u32);
}

void hl_guest_main(void)
{
    hl_guest_register("Stress", stress, HL_I32, 2, HL_U64, HL_U32);
    hl_guest_register("Aligned", aligned, HL_I32, 0);
    hl_guest_register("Realloc", re_alloc, HL_I32, 2, HL_U32, HL_U32);
    hl_guest_register("Usable", usable, HL_U64, 1, HL_U32);
    hl_guest_register("Exhaust", exhaust, HL_U32, 1, HL_U32);
    hl_guest_register("Release", release, HL_U32, 0);
    hl_guest_register("Arena", arena, HL_U64, 0);
    hl_guest_register("Huge", huge, HL_I32, 0);
    hl_guest_register("Dirty", dirty, HL_U32, 1, HL_U32);
    hl_guest_register("CallocZero", calloc_zero, HL_U32, 1, HL_U32);
    hl_guest_register("BadFree", bad_free, HL_I32, 1, HL_U32);
}

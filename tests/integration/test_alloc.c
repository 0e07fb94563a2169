/* test_alloc.c - the guest SDK's allocator (src/guest/malloc.c) in a real sandbox: a seeded
 * stress with content checks, realloc, alignment of every aligned API, usable sizes,
 * exhaustion and recovery (also on the smallest heap), calloc on a heap dirtied before a
 * snapshot, and bad frees. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define HEAP (32u << 20)

static int64_t call1(hl_sandbox *sb, const char *fn, hl_type ret, hl_value arg)
{
    hl_value v;
    hl_status st = hl_call(sb, fn, ret, &arg, 1, &v);
    if (st != HL_OK) {
        fprintf(stderr, "%s: %s\n", fn, hl_last_error(sb));
        return -1;
    }
    return ret == HL_I32 ? v.v.i32 : ret == HL_U32 ? (int64_t)v.v.u32 : (int64_t)v.v.u64;
}

static int64_t call0(hl_sandbox *sb, const char *fn, hl_type ret)
{
    hl_value v;
    if (hl_call(sb, fn, ret, NULL, 0, &v) != HL_OK) {
        fprintf(stderr, "%s: %s\n", fn, hl_last_error(sb));
        return -1;
    }
    return ret == HL_I32 ? v.v.i32 : ret == HL_U32 ? (int64_t)v.v.u32 : (int64_t)v.v.u64;
}

static void test_stress(hl_sandbox *sb)
{
    static const uint64_t seeds[] = { 1, 42, 0xC0FFEE };
    for (int i = 0; i < 3; i++) {
        hl_value a[2] = { hl_u64(seeds[i]), hl_u32(30000) }, v;
        hl_status st = hl_call(sb, "Stress", HL_I32, a, 2, &v);
        if (st != HL_OK) fprintf(stderr, "Stress(%llu): %s\n", (unsigned long long)seeds[i], hl_last_error(sb));
        CHECK_INT(st, HL_OK);
    }
}

static void test_realloc(hl_sandbox *sb)
{
    static const uint32_t sizes[][2] = { { 10, 500 },      { 500, 10 },      { 100, 5000 },
                                         { 5000, 100000 }, { 100000, 3000 }, { 1, 1 << 20 } };
    for (int i = 0; i < 6; i++) {
        hl_value a[2] = { hl_u32(sizes[i][0]), hl_u32(sizes[i][1]) }, v;
        CHECK_INT(hl_call(sb, "Realloc", HL_I32, a, 2, &v), HL_OK);
    }
    /* shrinking stays in place */
    hl_value a[2] = { hl_u32(100000), hl_u32(3000) }, v;
    CHECK_INT(hl_call(sb, "Realloc", HL_I32, a, 2, &v), HL_OK);
    CHECK_INT(v.v.i32, 1);
}

static void test_sizes(hl_sandbox *sb)
{
    /* 4 sizes at 17 alignments: memalign and aligned_alloc at each, posix_memalign from 8 on
     * (below it EINVAL, checked), valloc at 4096; and one pvalloc */
    CHECK_INT(call0(sb, "Aligned", HL_I32), 4 * (17 + 17 + 14 + 1) + 1);
    static const uint32_t n[] = { 0, 1, 8, 24, 25, 100, 512, 1000, 4096, 100000 };
    for (int i = 0; i < 10; i++) {
        int64_t u = call1(sb, "Usable", HL_U64, hl_u32(n[i]));
        CHECK(u >= (int64_t)n[i] && u < (int64_t)n[i] + 32);
    }
    CHECK_INT(call1(sb, "Usable", HL_U64, hl_u32(1)), 24); /* the smallest block: 32 bytes, 8 of header */
}

static void test_exhaustion(hl_sandbox *sb)
{
    CHECK_INT(call0(sb, "Huge", HL_I32), 4);
    static const uint32_t sizes[] = { 100, 4000, 65536 };
    for (int i = 0; i < 3; i++) {
        int64_t first = call1(sb, "Exhaust", HL_U32, hl_u32(sizes[i]));
        CHECK(first > (int64_t)(HEAP / 100 * 90 / (sizes[i] + 16))); /* most of the heap */
        CHECK_INT(call0(sb, "Release", HL_U32), first);
        CHECK_INT(call1(sb, "Exhaust", HL_U32, hl_u32(sizes[i])), first); /* all of it is back */
        CHECK_INT(call0(sb, "Release", HL_U32), first);
    }
    int64_t arena = call0(sb, "Arena", HL_U64);
    CHECK(arena > HEAP / 100 * 99 && arena <= HEAP); /* all the heap, taken through sbrk */
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    test_stress(sb); /* and the heap works as before */
}

static void test_dirty_restore(hl_sandbox *sb)
{
    /* malloc does not zero: a block freed and taken again holds what it held, but its links */
    CHECK_INT(call1(sb, "Dirty", HL_U32, hl_u32(100)), 100 - 8);
    CHECK_INT(call1(sb, "Dirty", HL_U32, hl_u32(200000)), 200000 - 16);
    hl_snapshot *snap;
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    CHECK_INT(call1(sb, "CallocZero", HL_U32, hl_u32(100)), 0);
    CHECK_INT(call1(sb, "CallocZero", HL_U32, hl_u32(200000)), 0);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_INT(call1(sb, "CallocZero", HL_U32, hl_u32(100)), 0);
    CHECK_INT(call1(sb, "CallocZero", HL_U32, hl_u32(200000)), 0);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_INT(call1(sb, "Dirty", HL_U32, hl_u32(100)), 100 - 8); /* the dirt came back with the snapshot */
    hl_snapshot_free(snap);
}

static void test_bad_free(hl_sandbox *sb)
{
    static const char *const want[] = { "free(0x", "block already freed (double free?)", "not a pointer from malloc",
                                        "not a block from malloc, or its header was overwritten", "realloc(0x" };
    static const char *const want2[] = { "block already freed (double free?)", "block already freed (double free?)",
                                         "free(0x", "free(0x", "block already freed (double free?)" };
    hl_snapshot *snap;
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    for (uint32_t k = 0; k < 5; k++) {
        hl_value a = hl_u32(k), v;
        CHECK_INT(hl_call(sb, "BadFree", HL_I32, &a, 1, &v), HL_ERR_ABORTED);
        CHECK_INT(hl_last_error_code(sb), HL_GUEST_ERR_HEAP);
        CHECK_HAS(hl_last_error(sb), want[k]);
        CHECK_HAS(hl_last_error(sb), want2[k]);
        CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
        CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
        CHECK_INT(call1(sb, "CallocZero", HL_U32, hl_u32(1000)), 0);
    }
    hl_snapshot_free(snap);
}

/* The smallest heap the configuration allows: less than one 64 KiB growth step after the
 * runtime's own allocations; the allocator takes what is left, all of it again after a free. */
static void test_small_heap(void)
{
    hl_config *cfg = hl_config_new();
    CHECK_INT(hl_config_set_heap_size(cfg, HL_HEAP_MIN), HL_OK);
    hl_sandbox *sb = must_sandbox("alloc_guest", cfg);
    int64_t first = call1(sb, "Exhaust", HL_U32, hl_u32(100));
    CHECK(first > (int64_t)(HL_HEAP_MIN / 100 * 85 / 112)); /* 112-byte blocks */
    CHECK_INT(call0(sb, "Release", HL_U32), first);
    CHECK_INT(call1(sb, "Exhaust", HL_U32, hl_u32(100)), first);
    CHECK_INT(call0(sb, "Release", HL_U32), first);
    CHECK_INT(call0(sb, "Huge", HL_I32), 4);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

int main(void)
{
    hl_config *cfg = hl_config_new();
    CHECK_INT(hl_config_set_heap_size(cfg, HEAP), HL_OK);
    hl_sandbox *sb = must_sandbox("alloc_guest", cfg);
    test_stress(sb);
    test_realloc(sb);
    test_sizes(sb);
    test_exhaustion(sb);
    test_dirty_restore(sb);
    test_bad_free(sb);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    test_small_heap();
    return check_exit("test_alloc");
}

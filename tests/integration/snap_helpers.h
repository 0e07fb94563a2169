/* snap_helpers.h - calls into tests/guests/snap_guest.c shared by the snapshot tests. A
 * failed call prints why and returns the all-ones value, which no check expects. */
#ifndef HL_TEST_SNAP_HELPERS_H
#define HL_TEST_SNAP_HELPERS_H

#include "harness.h"

static uint64_t call_u64(hl_sandbox *sb, const char *fn)
{
    hl_value r;
    if (hl_call(sb, fn, HL_U64, NULL, 0, &r) != HL_OK) {
        fprintf(stderr, "%s: %s\n", fn, hl_last_error(sb));
        return UINT64_MAX;
    }
    return r.v.u64;
}

/* Fill(pages, seed): the guest writes pattern(seed) over that many arena pages. */
static uint32_t fill(hl_sandbox *sb, uint32_t pages, uint32_t seed)
{
    hl_value a[2] = { hl_u32(pages), hl_u32(seed) }, r;
    if (hl_call(sb, "Fill", HL_U32, a, 2, &r) != HL_OK) {
        fprintf(stderr, "Fill: %s\n", hl_last_error(sb));
        return UINT32_MAX;
    }
    return r.v.u32;
}

/* Check(seed): arena pages that do not hold pattern(seed). */
static uint32_t bad_pages(hl_sandbox *sb, uint32_t seed)
{
    hl_value a = hl_u32(seed), r;
    if (hl_call(sb, "Check", HL_U32, &a, 1, &r) != HL_OK) {
        fprintf(stderr, "Check: %s\n", hl_last_error(sb));
        return UINT32_MAX;
    }
    return r.v.u32;
}

/* Twice(i32) -> i32, the host function snap_guest's CallTwice calls. */
static int twice(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    *r = hl_i32(a[0].v.i32 * 2);
    return 0;
}

#endif

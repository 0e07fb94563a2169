/* defaults_guest.c - a guest that declares the stack and heap it wants (HL_GUEST_DEFAULTS):
 * 1 MiB and 32 MiB. Sizes reports what the PEB and hl_guest_stack_bounds say. */
#include <stdio.h>

#include "hyperlight_guest.h"

HL_GUEST_DEFAULTS(1 << 20, 32 << 20);

/* Sizes() -> "stack=S heap=H bounds=B": B is "ok" when the stack bounds are the PEB's and
 * hold a local variable of this function. */
static int sizes(const hl_value *a, int n, hl_value *r)
{
    static char out[128];
    const struct hl_peb *peb = hl_guest_peb();
    uintptr_t lo, hi, here = (uintptr_t)&lo;
    hl_guest_stack_bounds(&lo, &hi);
    snprintf(out, sizeof out, "stack=%llu heap=%llu bounds=%s", (unsigned long long)peb->stack_size,
             (unsigned long long)peb->heap_size,
             lo == peb->stack_gpa && hi == peb->stack_gpa + peb->stack_size && here >= lo && here < hi ? "ok" : "bad");
    *r = hl_str(out);
    return 0;
}

void hl_guest_main(void) { hl_guest_register("Sizes", sizes, HL_STRING, 0); }

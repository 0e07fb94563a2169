/* init_guest.c - a guest whose initialisation calls the host (host function InitHook). */
#include "hyperlight_guest.h"

static int32_t from_init;

static int get(const hl_value *a, int n, hl_value *r)
{
    *r = hl_i32(from_init);
    return 0;
}

void hl_guest_main(void)
{
    hl_value v;
    if (hl_call_host("InitHook", HL_I32, NULL, 0, &v) != 0) hl_abort(1, "InitHook failed: %s", hl_host_error());
    from_init = v.v.i32;
    hl_guest_register("FromInit", get, HL_I32, 0);
}

/* init_modes_guest.c - a guest whose initialisation does what its init data says: "spin"
 * never finishes it; anything else registers one function (Ok). */
#include <string.h>

#include "hyperlight_guest.h"

static volatile uint64_t sink;

static int ok(const hl_value *a, int n, hl_value *r)
{
    *r = hl_i32(1);
    return 0;
}

void hl_guest_main(void)
{
    size_t len;
    const char *mode = hl_guest_init_data(&len);
    if (mode && len == 4 && memcmp(mode, "spin", 4) == 0)
        for (;;) sink++; /* never exits to the host */
    hl_guest_register("Ok", ok, HL_I32, 0);
}

/* init_modes_guest.c - a guest whose initialisation does what its init data says: "spin"
 * never finishes it; "max" registers exactly HL_MAX_FUNCS functions, "over" one more; "long"
 * a name of 300 bytes; "abort" aborts with a message of HL_MAX_MESSAGE bytes, 'a' + i % 26
 * at offset i; anything else registers one function (Ok). */
#include <stdio.h>
#include <string.h>

#include "hyperlight_guest.h"

static volatile uint64_t sink;
static char names[HL_MAX_FUNCS + 1][8];
static char long_name[301];
static char message[HL_MAX_MESSAGE + 1];

static int ok(const hl_value *a, int n, hl_value *r)
{
    *r = hl_i32(1);
    return 0;
}

static bool is(const char *mode, size_t len, const char *want)
{
    return mode && len == strlen(want) && memcmp(mode, want, len) == 0;
}

/* Registers n functions F0000, F0001, ...; a refusal within the first HL_MAX_FUNCS aborts at
 * once (one beyond is left to the SDK to report). */
static void register_many(int n)
{
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "F%04d", i);
        if (hl_guest_register(names[i], ok, HL_I32, 0) != 0 && i < HL_MAX_FUNCS)
            hl_abort(1, "registering %s failed", names[i]);
    }
}

void hl_guest_main(void)
{
    size_t len;
    const char *mode = hl_guest_init_data(&len);
    if (is(mode, len, "spin")) {
        for (;;) sink++; /* never exits to the host */
    } else if (is(mode, len, "max")) {
        register_many(HL_MAX_FUNCS);
    } else if (is(mode, len, "over")) {
        register_many(HL_MAX_FUNCS + 1);
    } else if (is(mode, len, "abort")) {
        for (unsigned i = 0; i < HL_MAX_MESSAGE; i++) message[i] = (char)('a' + i % 26);
        hl_abort(5, "%s", message);
    } else if (is(mode, len, "long")) {
        memset(long_name, 'n', 300);
        hl_guest_register(long_name, ok, HL_I32, 0);
    } else {
        hl_guest_register("Ok", ok, HL_I32, 0);
    }
}

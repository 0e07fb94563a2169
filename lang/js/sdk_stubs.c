/* sdk_stubs.c - stand-ins for the guest SDK's host-function table until it lands (weak:
 * the SDK's definitions replace them). Removed once main has them. */
#include "hyperlight_guest.h"

__attribute__((weak)) int hl_host_fn_count(void) { return 0; }
__attribute__((weak)) const hl_host_fn_info *hl_host_fn_at(int i) { return 0; }
__attribute__((weak)) const hl_host_fn_info *hl_host_fn_lookup(const char *name) { return 0; }

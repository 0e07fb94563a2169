/* hostfn_stub.c - stands in for the guest SDK's host-function table while the SDK lacks it
 * (lang/python/lang.mk links it only then): no host function is known. */
#include <stddef.h>

#include "hyperlight_guest.h"

int hl_host_fn_count(void) { return 0; }
const hl_host_fn_info *hl_host_fn_at(int i) { return NULL; }
const hl_host_fn_info *hl_host_fn_lookup(const char *name) { return NULL; }

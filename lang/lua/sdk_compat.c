/* sdk_compat.c - TEMPORARY: weak stand-ins for guest SDK functions that are declared in
 * include/hyperlight_guest.h but land on another branch (the host-function table) or are
 * missing from the SDK (rename). The SDK's own definitions replace these once merged. */
#include <errno.h>
#include <stdio.h>

#include "hyperlight_guest.h"

__attribute__((weak)) int hl_host_fn_count(void) { return 0; }
__attribute__((weak)) const hl_host_fn_info *hl_host_fn_at(int i)
{
    (void)i;
    return NULL;
}
__attribute__((weak)) const hl_host_fn_info *hl_host_fn_lookup(const char *name)
{
    (void)name;
    return NULL;
}
__attribute__((weak)) int rename(const char *from, const char *to)
{
    (void)from, (void)to;
    errno = ENOSYS;
    return -1;
}

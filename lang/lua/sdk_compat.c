/* sdk_compat.c - TEMPORARY: a weak rename() for loslib.c's os.rename, which the guest SDK
 * does not provide yet (its POSIX leaves are in src/guest/libc_glue.c). Fails like the SDK's
 * other file calls; the SDK's own definition replaces it once it exists. */
#include <errno.h>
#include <stdio.h>

__attribute__((weak)) int rename(const char *from, const char *to)
{
    (void)from, (void)to;
    errno = ENOSYS;
    return -1;
}

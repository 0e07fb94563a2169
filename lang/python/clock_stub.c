/* clock_stub.c - stands in for clock_gettime while the guest SDK lacks it (lang/python/lang.mk
 * links it only then): the time of gettimeofday, which fails with ENOSYS in a guest without
 * a clock, so time.time() raises OSError rather than inventing a time. */
#include <sys/time.h>
#include <time.h>

int clock_gettime(clockid_t id, struct timespec *ts)
{
    struct timeval tv;
    (void)id;
    if (gettimeofday(&tv, NULL) != 0) return -1;
    ts->tv_sec = tv.tv_sec;
    ts->tv_nsec = tv.tv_usec * 1000;
    return 0;
}

/* modtime_port.h - the port half of MicroPython's time module (included by extmod/modtime.c
 * through MICROPY_PY_TIME_INCLUDEFILE): wall time from clock_gettime(CLOCK_REALTIME). In a
 * guest without a clock the call fails and time() raises OSError. */
#include <errno.h>
#include <time.h>

#include "shared/timeutils/timeutils.h"

static mp_obj_t mp_time_time_get(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) mp_raise_OSError(errno);
    return mp_obj_new_float((mp_float_t)ts.tv_sec + (mp_float_t)ts.tv_nsec / 1e9);
}

/* localtime() without a time zone: UTC, like gmtime(). */
static mp_obj_t mp_time_localtime_get(void)
{
    struct timespec ts;
    timeutils_struct_time_t tm;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) mp_raise_OSError(errno);
    timeutils_seconds_since_epoch_to_struct_time((uint64_t)ts.tv_sec, &tm);
    mp_obj_t t[8] = {
        mp_obj_new_int(tm.tm_year), mp_obj_new_int(tm.tm_mon), mp_obj_new_int(tm.tm_mday), mp_obj_new_int(tm.tm_hour),
        mp_obj_new_int(tm.tm_min),  mp_obj_new_int(tm.tm_sec), mp_obj_new_int(tm.tm_wday), mp_obj_new_int(tm.tm_yday),
    };
    return mp_obj_new_tuple(8, t);
}

/* mphalport.h - MicroPython's hardware abstraction for the Python guest and its native twin:
 * stdout/stderr are file descriptors 1 and 2, time is clock_gettime (mpy_port.c). */
#ifndef HLPY_MPHALPORT_H
#define HLPY_MPHALPORT_H

#include <stddef.h>
#include <stdint.h>

/* No keyboard interrupt: a runaway script is stopped by the host (hl_config_set_timeout). */
static inline void mp_hal_set_interrupt_char(int c) { (void)c; }

/* Writes len bytes of str to file descriptor fd (1 or 2), all of them unless it fails. */
void hlpy_write_fd(int fd, const char *str, size_t len);

#endif

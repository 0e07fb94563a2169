/* coredump.h - ELF core files of faulted guests (coredump.c). */
#ifndef HL_COREDUMP_H
#define HL_COREDUMP_H

#include <stdbool.h>
#include <stddef.h>

#include "hyperlight.h"

/* Checks that (dir) is an existing, writable directory and stores its absolute path in
 * (out)[HL_CORE_DIR_MAX + 1] ("" for a NULL or empty dir: dumps off). */
hl_status hl_coredump_dir_check(const char *dir, char *out, char *err);
/* Whether (sb) writes core dumps. */
bool hl_coredump_enabled(const hl_sandbox *sb);
/* On a guest fault, after sb->err describes it: if (sb) has a core directory, writes an ELF
 * core file of the guest there and puts " (core dump: PATH)" or " (core dump failed:
 * REASON)" in (note)[len] and returns true; false (nothing written) without a directory.
 * (sig) is the signal the core reports, or 0 to derive it from the pending exception. */
bool hl_coredump_write(hl_sandbox *sb, int sig, char *note, size_t len);

#endif

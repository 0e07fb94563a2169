/* harness.h - helpers for integration tests: guests are real ELF files run in real KVM VMs.
 * Tests run from the repository root (tests/run.sh); HL_BUILD names the build directory. */
#ifndef HL_HARNESS_H
#define HL_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "hyperlight.h"

/* Path of a guest built from tests/guests/NAME.c (or examples/guests for "demo"). */
static inline const char *guest_path(const char *name)
{
    static char path[4][512];
    static int next;
    const char *b = getenv("HL_BUILD");
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s/%s.elf", b ? b : "build",
             strcmp(name, "demo") == 0 ? "guests" : "tests/guests", name);
    return p;
}

/* Creates a sandbox or fails the test program at once (nothing else can run without it). */
static inline hl_sandbox *must_sandbox(const char *guest, const hl_config *cfg)
{
    hl_sandbox *sb = NULL;
    if (hl_sandbox_new_from_file(&sb, guest_path(guest), cfg) != HL_OK) {
        fprintf(stderr, "cannot create sandbox for %s: %s\n", guest, hl_last_error(NULL));
        exit(1);
    }
    return sb;
}

#endif

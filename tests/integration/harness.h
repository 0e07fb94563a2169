/* harness.h - helpers for integration tests: guests are real ELF files run in real KVM VMs.
 * Tests run from the repository root (tests/run.sh); HL_BUILD names the build directory. */
#ifndef HL_HARNESS_H
#define HL_HARNESS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "hyperlight.h"

/* Path of a guest built from tests/guests/NAME.c (or examples/guests for "demo"). */
static inline const char *guest_path(const char *name)
{
    static char path[4][512];
    static int next;
    const char *b = getenv("HL_BUILD");
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s/%s.elf", b ? b : "build", strcmp(name, "demo") == 0 ? "guests" : "tests/guests",
             name);
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

/* The two families of KVM that behave differently (docs/platforms.md): kvm_pvm, software
 * virtualization where a guest exception ends in a triple fault that KVM describes, and
 * hardware KVM (kvm_amd, kvm_intel), where the guest catches and reports its exceptions. */
static inline int test_on_pvm(void) { return access("/sys/module/kvm_pvm", F_OK) == 0; }

/* Milliseconds on the monotonic clock. */
static inline double test_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Open file descriptors of this process (to compare before and after: nothing leaked). */
static inline int test_count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

#endif

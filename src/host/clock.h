/* clock.h - the guest's clock and entropy (clock.c): what the host writes into the meta
 * page's clock and entropy blocks (include/hyperlight/abi.h) when a VM starts and after
 * every restore. */
#ifndef HL_CLOCK_H
#define HL_CLOCK_H

#include <stdint.h>

#include "chacha20.h"
#include "error.h"
#include "hyperlight/abi.h"
#include "vm.h"

/* The frozen instant (HL_CLOCK_FROZEN): 2000-01-01 00:00:00 UTC, and CLOCK_MONOTONIC 1 s. */
#define HL_FROZEN_REALTIME_NS (946684800ull * 1000000000ull)
#define HL_FROZEN_MONOTONIC_NS 1000000000ull

typedef struct hl_clock_src {
    uint32_t mode;      /* HL_CLOCK_MODE_* the guest is told */
    uint64_t tsc_hz;    /* the guest's TSC frequency; 0: no real clock */
    uint64_t mult;      /* ns per tick << HL_CLOCK_SHIFT */
    int64_t tsc_offset; /* guest TSC - host TSC */
    uint64_t start_ns;  /* host CLOCK_MONOTONIC at the VM's creation */
    hl_chacha rng;      /* the sandbox's entropy stream, keyed once from getrandom */
} hl_clock_src;

/* Sets (c) up for a new VM (vm) with (mode) (an HL_CLOCK_* of the configuration): asks the
 * backend for its TSC (no ioctl) and the kernel for 32 bytes of entropy (one getrandom).
 * A REAL clock whose TSC frequency KVM did not give becomes OFF. Fails only if getrandom
 * does, with HL_ERR_SYSTEM and a message in (err). */
hl_status hl_clock_start(hl_clock_src *c, const hl_vm *vm, int mode, char *err);
/* Writes the clock block (the host's clocks now, against the guest's TSC now) and the
 * entropy block (a fresh seed and epoch) into (meta), the host's view of the guest's meta
 * page, while the vCPU is stopped. No system call: the host's clocks come from the vDSO. */
void hl_clock_write(hl_clock_src *c, struct hl_meta *meta);

#endif

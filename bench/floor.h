/* floor.h - the floors: minimal VMs the benchmark builds by hand (page tables and a few
 * instructions) in the same CPU mode as a sandbox, exiting with `out` in a loop. floor.c is the
 * one file of the benchmark that uses the library's internals; what else the benchmark needs
 * from them is declared here too, so that no other file includes a src/host header. */
#ifndef BENCH_FLOOR_H
#define BENCH_FLOOR_H

#include <stdbool.h>
#include <stdint.h>

#include "hyperlight.h"
#include "perf.h"
#include "stats.h"

/* Exported for tests and benchmarks, not in the public header (src/host/internal.h): the VM
 * exits a sandbox made since its creation. */
uint64_t hl_sandbox_exit_count(const hl_sandbox *sb);

/* Whether /dev/kvm is kvm_pvm (the library's test: hl_kvm_is_pvm). */
bool floor_kvm_is_pvm(void);
/* The size of a sandbox's writable memslot (slot 1): the dirty floors get one as large. */
uint64_t floor_sandbox_rw_size(const hl_sandbox *sb);

typedef struct floor_vm floor_vm;

/* The bare floor: a VM whose guest loops on `out %eax, $0x10; jmp`. */
floor_vm *floor_create(void);
/* One KVM_RUN of it (one exit). */
void floor_exit(floor_vm *f);
/* The fresh-VM floor's memory (the bare floor's), without a VM: floor_fresh_vm creates them. */
floor_vm *floor_prepare_fresh(void);
/* KVM_CREATE_VM ... first exit: hl_vm_create + one hl_vm_run of f's memory, timed in sp (the
 * VM is destroyed outside it); with sp->keep, the KVM_RUN part goes into run_part. Returns the
 * time. */
uint64_t floor_fresh_vm(floor_vm *f, span *sp, samples *run_part);
void floor_destroy(floor_vm *f);

/* A dirty floor: the least a call + restore of a guest that writes n pages can cost with this
 * design. One run = registers reloaded through kvm_run's sync_regs (as hl_sandbox_restore does), one
 * KVM_RUN in which the guest writes its n pages natively and exits, KVM_GET_DIRTY_LOG of a
 * slot as large as a sandbox's slot 1, and memcpy of every page the log reports from a
 * pristine copy. With reprotect, KVM_CLEAR_DIRTY_LOG then write-protects those pages again,
 * so the next run's writes fault; without, they stay writable (KVM's manual dirty-log
 * protection keeps reporting them), as the library does for pages every call writes. */
typedef struct dfloor dfloor;

/* pristine: slot1_size bytes of zeros (as the guest's slot 1 starts), shared by the floors;
 * slot1_size must hold the VIF page and n pages after it. */
dfloor *dfloor_create(uint32_t n, uint64_t slot1_size, uint8_t *pristine);
void dfloor_run(dfloor *d, bool reprotect);
/* Pages copied by the last run. */
uint64_t dfloor_copied(const dfloor *d);
void dfloor_destroy(dfloor *d);

#endif

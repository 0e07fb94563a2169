/* vm_kvm.h - the KVM backend's own state, shared by vm_kvm.c and vm_kvm_x86_64.c only. */
#ifndef HL_VM_KVM_H
#define HL_VM_KVM_H

#include <linux/kvm.h>
#include <sys/types.h>

#include "vm.h"

struct hl_vm {
    int vmfd, vcpufd;
    struct kvm_run *run;
    size_t run_size;
    bool pvm;
    bool manual_dirty; /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is on */
    bool vif_locked;   /* the MSR filter refuses writes to the virtual-IF MSR */
    /* The last exit left an I/O or MMIO instruction pending: KVM completes it at the next
     * KVM_RUN (KVM API, "KVM_EXIT_IO"/"KVM_EXIT_MMIO"), so vCPU state read or loaded before
     * that is not the guest's; hl_vm_complete finishes it first. */
    bool pending;
    uint64_t tsc_hz;    /* the guest's TSC frequency (KVM_GET_TSC_KHZ), 0 if unknown */
    int64_t tsc_offset; /* guest TSC - host TSC, measured at creation */
    int statsfd;        /* the vCPU's KVM statistics, or -1 */
    off_t emul_at;      /* where its insn_emulation counter is, or -1 */
    struct hl_vm_slot {
        uint64_t gpa, size;
        void *host;
        uint32_t flags;
    } slots[HL_NSLOTS];
};

/* The architecture's part of creating a VM (vm_kvm_x86_64.c): the MSR filter, before the
 * vCPU exists. */
hl_status hl_kvm_arch_vm(hl_vm *vm, char *err);
/* ... and once the vCPU exists: CPUID, and the registers (s->cpu, or a first boot's). */
hl_status hl_kvm_arch_vcpu(hl_vm *vm, const hl_vm_setup *s, char *err);
/* One KVM_RUN (the architecture repairs what the guest may leave in the host thread). */
int hl_kvm_run_once(hl_vm *vm);

#endif

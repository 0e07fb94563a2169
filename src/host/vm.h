/* vm.h - the hypervisor backend's contract (vm_kvm.c, vm_kvm_x86_64.c). */
#ifndef HL_VM_H
#define HL_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/user.h>
#include "base.h"

/* The backend owns the VM: its file descriptors and kvm_run are private to vm_kvm*.c, the
 * only files that include <linux/kvm.h> or issue ioctls. vm_kvm.c holds what any KVM
 * architecture would share (VM, memslots, dirty log, run, kick); vm_kvm_x86_64.c what is
 * x86-64's (CPUID, MSRs, registers, the vCPU state's layout). */
enum hl_exit_kind {
    HL_EXIT_OUT,      /* port, value */
    HL_EXIT_IN,       /* port */
    HL_EXIT_MMIO,     /* addr, is_write */
    HL_EXIT_SHUTDOWN, /* triple fault */
    HL_EXIT_HLT,
    HL_EXIT_INTR,      /* KVM_RUN returned EINTR */
    HL_EXIT_EMULATION, /* KVM could not emulate the guest's instruction */
    HL_EXIT_OTHER,     /* reason */
};

typedef struct hl_exit {
    int kind;
    uint16_t port;
    uint32_t value;
    uint64_t addr;
    bool is_write;
    uint32_t reason; /* KVM exit reason */
} hl_exit;

/* Memslots (KVM_SET_USER_MEMORY_REGION slot numbers). */
enum {
    HL_SLOT_RO = 0,    /* [HL_PEB_GPA, ro_end): PEB, code, read-only data; KVM_MEM_READONLY */
    HL_SLOT_RW = 1,    /* [ro_end, total): everything the guest may write; dirty-logged */
    HL_SLOT_PT = 2,    /* [HL_PT_GPA, pt_end): page tables, writable for the CPU's walker; dirty-logged */
    HL_SLOT_FILE0 = 3, /* + i: mapped file i, read-only */
    HL_NSLOTS = HL_SLOT_FILE0 + HL_MAX_FILES,
};

typedef struct hl_vm hl_vm;

/* The vCPU state a snapshot keeps: KVM's struct kvm_regs, kvm_sregs and kvm_fpu, as bytes
 * (their layouts are part of KVM's stable ABI; vm_kvm.c asserts the sizes). */
typedef struct hl_cpu_state {
    uint64_t regs[18]; /* rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags */
    uint8_t sregs[312];
    uint8_t fpu[416];
} hl_cpu_state;
#define HL_REG_RSP 6
#define HL_REG_RIP 16

typedef struct hl_vm_setup {
    int nfiles; /* read-only slots HL_SLOT_FILE0 + i for mapped files: */
    hl_gpa file_gpa[HL_MAX_FILES];
    void *file_host[HL_MAX_FILES];
    uint64_t file_len[HL_MAX_FILES];
    void *ro; /* host view of [ro_gpa, ro_gpa + ro_size), read-only */
    hl_gpa ro_gpa;
    uint64_t ro_size;
    void *pt; /* host view of [HL_PT_GPA, HL_PT_GPA + pt_size): page tables */
    uint64_t pt_size;
    void *rw; /* host view of [rw_gpa, rw_gpa + rw_size), writable */
    hl_gpa rw_gpa;
    uint64_t rw_size;
    const hl_cpu_state *cpu; /* state to load, or NULL for a first boot at: */
    uint64_t cr3, rip, rsp, rdi;
} hl_vm_setup;

bool hl_kvm_is_pvm(void);
/* Checks the capability table (vm_kvm.c) with check(ctx, KVM_CAP_...), which answers as
 * KVM_CHECK_EXTENSION does. Returns false with err naming the first required capability
 * missing; *manual_dirty says whether manual dirty-log protection can be used. */
bool hl_kvm_caps_check(int (*check)(void *ctx, int cap), void *ctx, bool *manual_dirty, char *err, size_t len);
/* Creates the VM and its vCPU from (s) into *out; NULL on failure. */
hl_status hl_vm_create(hl_vm **out, const hl_vm_setup *s, char *err);
/* What the core may know about a VM. */
bool hl_vm_is_pvm(const hl_vm *vm);       /* kvm_pvm (the guest runs in ring 3, a PEB flag says so) */
bool hl_vm_vif_locked(const hl_vm *vm);   /* the virtual-IF MSR can no longer be moved */
bool hl_vm_manual_dirty(const hl_vm *vm); /* dirty pages stay writable until hl_vm_dirty_clear */
/* The guest's TSC: its frequency in Hz (*hz, 0 if KVM would not say) and what the guest's
 * rdtsc reads minus what the host's reads at the same instant (*offset), both learnt when the
 * VM was created (no ioctl). */
void hl_vm_tsc(const hl_vm *vm, uint64_t *hz, int64_t *offset);
/* The ioctls a confined thread issues on the VM's descriptors while it runs calls (for
 * confine.c's seccomp filter): up to (max) {fd, request} pairs into (out); the count. */
typedef struct hl_vm_ioctl {
    int fd;
    unsigned long request;
} hl_vm_ioctl;
int hl_vm_confine_ioctls(const hl_vm *vm, hl_vm_ioctl *out, int max);
/* Runs the vCPU until the next exit. Returns HL_OK with *ex filled, or an error. */
hl_status hl_vm_run(hl_vm *vm, hl_exit *ex, char *err);
typedef struct hl_vm_state {
    uint64_t rip, rsp, rflags, cr2, rax, cr0, cr3, cr4, efer;
    int exception;       /* vector of the exception being delivered, or -1 if none known */
    uint32_t error_code; /* its error code, if it has one */
} hl_vm_state;
hl_status hl_vm_state_get(hl_vm *vm, hl_vm_state *st);
/* The control registers as KVM copied them to kvm_run at the last exit (no ioctl); the
 * other fields are zero, exception -1. */
void hl_vm_state_synced(const hl_vm *vm, hl_vm_state *st);
/* Full vCPU state through ioctls (snapshots, and resets of a poisoned vCPU). cpu_get reads
 * the state as KVM holds it, which is the guest's only after hl_vm_complete; cpu_set and
 * regs_sync complete a pending instruction themselves before they load anything. */
hl_status hl_vm_cpu_get(hl_vm *vm, hl_cpu_state *cpu, char *err);
/* Sets cpu's x87/SSE state to its reset value (FNINIT, MXCSR default, zero registers). */
void hl_vm_cpu_reset_fpu(hl_cpu_state *cpu);
/* events: also clear KVM's queued exception, interrupt and NMI state, and PKRU on kvm_pvm
 * (one or two more ioctls; needed after any call that did not end cleanly). */
hl_status hl_vm_cpu_set(hl_vm *vm, const hl_cpu_state *cpu, bool events, char *err);
/* Loads cpu's general registers, and its segment and control registers if the guest changed
 * them, at the next KVM_RUN through kvm_run's sync_regs (no ioctl); with debug, resets the
 * debug registers (one ioctl). */
hl_status hl_vm_regs_sync(hl_vm *vm, const hl_cpu_state *cpu, bool debug, char *err);
/* Only the general registers (the benchmark's floor). */
void hl_vm_gprs_sync(hl_vm *vm, const hl_cpu_state *cpu);
/* ORs the pages of memslot `slot` KVM reports dirty into bitmap (npages bits), leaving KVM's
 * answer in scratch (same size). With manual protection (vm->manual_dirty) the pages stay
 * dirty and writable until hl_vm_dirty_clear; without it KVM re-protects them at once. */
hl_status hl_vm_dirty_log(hl_vm *vm, uint32_t slot, uint64_t *bitmap, uint64_t *scratch, uint64_t npages, char *err);
/* Write-protects the pages set in bitmap again, so their next write is logged (a no-op
 * without manual protection). Changes bitmap. */
hl_status hl_vm_dirty_clear(hl_vm *vm, uint32_t slot, uint64_t *bitmap, uint64_t npages, char *err);
/* Deletes memslot `slot` and adds it again: KVM drops every mapping and cached translation
 * derived from it (shadow page tables included), and every page starts write-protected. */
hl_status hl_vm_slot_reset(hl_vm *vm, uint32_t slot, char *err);
/* Completes the I/O or MMIO instruction the last exit left pending (KVM_RUN with
 * immediate_exit: no guest instruction runs). A no-op when none is pending. */
hl_status hl_vm_complete(hl_vm *vm, char *err);
/* Refuses (locked) or allows the guest's writes to the kvm_pvm virtual-IF MSR. Allowed only
 * until the guest has registered it after a (re)start at its entry or hl_resume. */
hl_status hl_vm_lock_vif(hl_vm *vm, bool locked, char *err);
/* The guest-physical page the guest registered as its virtual-IF page (kvm_pvm; one ioctl). */
hl_status hl_vm_vif_gpa(hl_vm *vm, uint64_t *gpa, char *err);
/* Sets (or clears) kvm_run->immediate_exit: KVM_RUN returns EINTR at once while it is set. */
void hl_vm_kick(hl_vm *vm, bool on);
void hl_vm_destroy(hl_vm *vm); /* NULL is fine */
/* Guest instructions KVM has emulated on this vCPU so far (its insn_emulation statistic;
 * a read of the statistics file, no vCPU ioctl), or -1 if unknown. */
int64_t hl_vm_emulations(hl_vm *vm);

/* ---- the vCPU state's layout (vm_kvm_x86_64.c), for modules that may not see KVM's ---- */
struct hl_fault;
/* The registers a core file shows, in Linux's own layouts. */
typedef struct hl_core_regs {
    struct user_regs_struct regs;
    struct user_fpregs_struct fpregs;
    uint64_t cr0, cr2, cr3, cr4, efer;
} hl_core_regs;
/* (cpu)'s registers, or those of the guest's exception report (reported) where non-NULL. */
void hl_cpu_core_regs(const hl_cpu_state *cpu, const struct hl_fault *reported, hl_core_regs *out);
/* Whether (cpu) is in 64-bit mode with paging on (CR0.PE, CR0.PG, EFER.LMA). */
bool hl_cpu_long_mode(const hl_cpu_state *cpu);

#endif

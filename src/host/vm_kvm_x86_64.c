/* vm_kvm_x86_64.c - the KVM backend's x86-64 part: CPUID, the MSR filter, registers and
 * their first-boot values, the run loop's exit decoding, and the vCPU state's layout for
 * core dumps and snapshot files. */
#include <cpuid.h>
#include <x86intrin.h>
#include <errno.h>
#include <fcntl.h>
#include <asm/prctl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "error.h"
#include "vm_kvm.h"
#include "x86_64.h"

_Static_assert(sizeof(((hl_cpu_state *)0)->regs) == sizeof(struct kvm_regs), "kvm_regs size");
_Static_assert(sizeof(((hl_cpu_state *)0)->sregs) == sizeof(struct kvm_sregs), "kvm_sregs size");
_Static_assert(sizeof(((hl_cpu_state *)0)->fpu) == sizeof(struct kvm_fpu), "kvm_fpu size");
_Static_assert(sizeof(struct user_fpregs_struct) == 512, "fxsave area");

/* KVM_GET_SUPPORTED_CPUID costs ~0.4 ms here and its answer never changes: ask once per
 * process. (Immutable after the first call; pthread_once makes it safe across threads.) */
enum { CPUID_MAX = 256 };
static union {
    struct kvm_cpuid2 h; /* followed by its CPUID_MAX entries */
    uint8_t bytes[sizeof(struct kvm_cpuid2) + CPUID_MAX * sizeof(struct kvm_cpuid_entry2)];
} supported_cpuid;
static int supported_cpuid_errno;
static pthread_once_t cpuid_once = PTHREAD_ONCE_INIT;

/* What the guest sees: the host's features minus what tells it about the hypervisor or the
 * host and that a guest has no use for (CPUID is emulated by KVM from this table, also on
 * kvm_pvm): the hypervisor-present bit and KVM's 0x40000000 leaves, VMX and SVM, and the
 * processor brand string. Intel SDM Vol. 2A, CPUID. */
static void filter_cpuid(struct kvm_cpuid2 *cp)
{
    static const char brand[48] = "hyperlight virtual CPU";
    uint32_t out = 0;
    for (uint32_t i = 0; i < cp->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cp->entries[i];
        if (e->function >= 0x40000000 && e->function <= 0x400000ff) continue; /* hypervisor leaves */
        /* hypervisor, VMX; XSAVE, OSXSAVE and AVX: without XSAVE the guest cannot set
         * CR4.OSXSAVE, so XCR0 (which a restore does not reload) stays the host's default */
        if (e->function == 1)
            e->ecx &= ~(X86_CPUID1_ECX_HYPERVISOR | X86_CPUID1_ECX_VMX | X86_CPUID1_ECX_XSAVE |
                        X86_CPUID1_ECX_OSXSAVE | X86_CPUID1_ECX_AVX);
        /* PKU and OSPKE: likewise for PKRU (CR4.PKE needs PKU) */
        if (e->function == 7 && e->index == 0) e->ecx &= ~(X86_CPUID7_ECX_PKU | X86_CPUID7_ECX_OSPKE);
        if (e->function == 0x80000001) e->ecx &= ~X86_CPUID80000001_ECX_SVM;
        if (e->function >= 0x80000002 && e->function <= 0x80000004) {
            const uint32_t *w = (const uint32_t *)brand + (e->function - 0x80000002) * 4;
            e->eax = w[0], e->ebx = w[1], e->ecx = w[2], e->edx = w[3];
        }
        cp->entries[out++] = *e;
    }
    cp->nent = out;
}

static void query_cpuid(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    supported_cpuid.h.nent = CPUID_MAX;
    if (kvm < 0 || ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &supported_cpuid) < 0)
        supported_cpuid_errno = errno ? errno : EIO;
    else filter_cpuid(&supported_cpuid.h);
    if (kvm >= 0) close(kvm);
}

/* The guest sees the host's supported CPUID; KVM needs it set for EFER.NXE to be accepted. */
static hl_status set_cpuid(hl_vm *vm, char *err)
{
    pthread_once(&cpuid_once, query_cpuid);
    if (supported_cpuid_errno)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_GET_SUPPORTED_CPUID: %s", strerror(supported_cpuid_errno));
    if (ioctl(vm->vcpufd, KVM_SET_CPUID2, &supported_cpuid) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_SET_CPUID2: %s", strerror(errno));
    return HL_OK;
}

/* PKRU (SDM Vol. 3A §4.6.2): kvm_pvm runs the guest under the host's CR4, so on a host with
 * CR4.PKE the guest's wrpkru (not privileged, nothing traps it) sets PKRU whatever CPUID says.
 * KVM keeps that value in the vCPU across KVM_SET_REGS/SREGS/FPU, so a restore would hand it to
 * the next user (measured on kvm_pvm -v1045: a value denying key 0 fails every later call).
 * There, every restore reloads it with KVM_SET_XSAVE (~3 µs): PKRU 0, a new vCPU's value, and
 * x87/SSE at their defaults. Hardware KVM refuses CR4.PKE (PKU hidden): wrpkru is #UD there. */
static union {
    struct kvm_xsave x; /* the non-compacted XSAVE layout (KVM API: KVM_GET_XSAVE) */
    uint8_t b[sizeof(struct kvm_xsave)];
} pkru_reset;
static bool pkru_reset_needed;
static pthread_once_t pkru_once = PTHREAD_ONCE_INIT;

static void make_pkru_reset(void)
{
    unsigned a, b, c, d, off;
    uint16_t fcw = X86_FCW_INIT;
    uint32_t mxcsr = X86_MXCSR_INIT;
    uint64_t bv = 1u << 0 | 1u << 1 | 1u << 9; /* x87, SSE, PKRU: the rest in its initial state */
    if (__get_cpuid_max(0, NULL) < 0xd) return;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(c & X86_CPUID7_ECX_OSPKE)) return; /* the host runs with CR4.PKE */
    __cpuid_count(0xd, 9, a, b, c, d);       /* PKRU state: size, offset (SDM Vol. 1 §13.2) */
    off = b;
    if (a < 4 || off < 576 || off + 4 > sizeof pkru_reset) return;
    memcpy(pkru_reset.b + 0, &fcw, sizeof fcw);
    memcpy(pkru_reset.b + 24, &mxcsr, sizeof mxcsr);
    memcpy(pkru_reset.b + 512, &bv, sizeof bv); /* XSAVE header: XSTATE_BV; PKRU stays 0 */
    pkru_reset_needed = true;
}

static hl_status reload_pkru(hl_vm *vm, char *err)
{
    if (!vm->pvm) return HL_OK;
    pthread_once(&pkru_once, make_pkru_reset);
    if (pkru_reset_needed && ioctl(vm->vcpufd, KVM_SET_XSAVE, &pkru_reset.x) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_SET_XSAVE (resetting PKRU): %s", strerror(errno));
    return HL_OK;
}

static hl_status set_cpu_state(hl_vm *vm, const hl_vm_setup *s, char *err)
{
    struct kvm_sregs sr;
    struct kvm_regs r;
    struct kvm_fpu fpu;
    if (ioctl(vm->vcpufd, KVM_GET_SREGS, &sr) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_GET_SREGS: %s", strerror(errno));
    sr.cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_AM | X86_CR0_PG;
    sr.cr3 = s->cr3;
    sr.cr4 = X86_CR4_PAE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
    sr.efer = X86_EFER_SCE | X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE;
    struct kvm_segment cs = {
        .base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 11, .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1
    };
    struct kvm_segment ds = {
        .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 3, .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1
    };
    sr.cs = cs;
    sr.ds = sr.es = sr.fs = sr.gs = sr.ss = ds;
    if (ioctl(vm->vcpufd, KVM_SET_SREGS, &sr) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_SET_SREGS: %s", strerror(errno));
    memset(&fpu, 0, sizeof fpu);
    fpu.fcw = X86_FCW_INIT;
    fpu.mxcsr = X86_MXCSR_INIT; /* all SSE exceptions masked */
    if (ioctl(vm->vcpufd, KVM_SET_FPU, &fpu) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_SET_FPU: %s", strerror(errno));
    memset(&r, 0, sizeof r);
    r.rip = s->rip;
    r.rsp = s->rsp;
    r.rdi = s->rdi;
    r.rflags = X86_RFLAGS_FIXED;
    if (ioctl(vm->vcpufd, KVM_SET_REGS, &r) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_SET_REGS: %s", strerror(errno));
    return HL_OK;
}

/* The guest's MSR accesses (KVM API: KVM_X86_SET_MSR_FILTER; a filter never applies to the
 * host's own accesses). KVM keeps every MSR a guest writes in the vCPU, where a restore of
 * memory and registers does not reach it: a value written by one user of a sandbox would
 * reach the next (the TSC offset, HWCR, POWER_CTL, VM_HSAVE_PA and others were found to stick
 * on kvm_amd and kvm_pvm). So writes are denied by default and allowed only for what a
 * restore puts back (FS_BASE and GS_BASE, through the segment registers), and for kvm_pvm's
 * virtual-IF MSR until the guest has registered its page (after which it could only move the
 * page onto guest data). Reads are allowed in the architectural and AMD ranges, except those
 * that tell about the hypervisor or that only a system-call setup needs, and of the
 * virtual-IF MSR; everything else, KVM's other paravirtual MSRs included, is denied. A denied access is a #GP in the guest, which
 * ends its call cleanly. */
enum { MSR_LOW_N = 0x3000, MSR_HIGH_N = 0x2000, MSR_AMD_N = 0x2000 };
static uint8_t msr_low_read[MSR_LOW_N / 8];   /* 0x0 .. 0x2fff */
static uint8_t msr_high_read[MSR_HIGH_N / 8]; /* 0xc0000000 .. 0xc0001fff */
static uint8_t msr_amd_read[MSR_AMD_N / 8];   /* 0xc0010000 .. 0xc0011fff */
static uint8_t msr_allow[1] = { 0xff };       /* one-byte bitmaps: the first MSRs allowed */
static pthread_once_t msr_once = PTHREAD_ONCE_INIT;

static void deny_bits(uint8_t *bm, uint32_t first, uint32_t n)
{
    for (uint32_t i = first; i < first + n; i++) bm[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

static void make_msr_bitmaps(void)
{
    memset(msr_low_read, 0xff, sizeof msr_low_read);
    memset(msr_high_read, 0xff, sizeof msr_high_read);
    memset(msr_amd_read, 0xff, sizeof msr_amd_read);
    deny_bits(msr_low_read, 0x11, 2);   /* KVM wall clock, system time (old numbers) */
    deny_bits(msr_low_read, 0x174, 3);  /* SYSENTER_CS/ESP/EIP */
    deny_bits(msr_high_read, 0x81, 4);  /* STAR, LSTAR, CSTAR, SFMASK */
    deny_bits(msr_high_read, 0x102, 2); /* KERNEL_GS_BASE, TSC_AUX */
}

static hl_status set_msr_filter(hl_vm *vm, bool allow_vif, char *err)
{
    const uint32_t R = KVM_MSR_FILTER_READ, W = KVM_MSR_FILTER_WRITE;
    struct kvm_msr_filter f = { .flags = KVM_MSR_FILTER_DEFAULT_DENY };
    int n = 0;
    pthread_once(&msr_once, make_msr_bitmaps);
    f.ranges[n++] = (struct kvm_msr_filter_range){ .flags = R, .nmsrs = MSR_LOW_N, .base = 0, .bitmap = msr_low_read };
    f.ranges[n++] =
        (struct kvm_msr_filter_range){ .flags = R, .nmsrs = MSR_HIGH_N, .base = 0xc0000000, .bitmap = msr_high_read };
    f.ranges[n++] =
        (struct kvm_msr_filter_range){ .flags = R, .nmsrs = MSR_AMD_N, .base = 0xc0010000, .bitmap = msr_amd_read };
    f.ranges[n++] = (struct kvm_msr_filter_range){ .flags = W,
                                                   .nmsrs = 2,
                                                   .base = 0xc0000100, /* FS/GS_BASE */
                                                   .bitmap = msr_allow };
    /* the virtual-IF MSR reads back where the page is; writes only until it is registered */
    f.ranges[n++] = (struct kvm_msr_filter_range){
        .flags = allow_vif ? R | W : R, .nmsrs = 1, .base = HL_MSR_PVM_VIF, .bitmap = msr_allow
    };
    if (ioctl(vm->vmfd, KVM_X86_SET_MSR_FILTER, &f) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_X86_SET_MSR_FILTER: %s", strerror(errno));
    vm->vif_locked = !allow_vif;
    return HL_OK;
}

hl_status hl_kvm_arch_vm(hl_vm *vm, char *err) { return set_msr_filter(vm, true, err); }

/* The guest's TSC frequency and its offset from the host's (hl_vm_tsc). KVM gives the
 * frequency (KVM API: KVM_GET_TSC_KHZ). On kvm_pvm the guest's rdtsc runs natively in ring 3
 * and reads the host's TSC itself (measured: tests/integration/test_clock.c checks that a
 * guest's rdtsc lies between two of the host's). On hardware KVM the guest's TSC is the
 * host's plus the offset KVM chose at vCPU creation, which a restore never changes (the
 * guest cannot write the TSC MSR: set_msr_filter); the guest's IA32_TSC (MSR 0x10, SDM
 * Vol. 3B §18.17) read between two host rdtsc's gives it, to within half the narrowest of
 * three windows (a few microseconds). Without a frequency tsc_hz stays 0 and guests get no
 * clock. Assumes no TSC scaling (the guest's ticks are the host's). */
static void measure_tsc(hl_vm *vm)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m;
    uint64_t best = UINT64_MAX;
    int khz = ioctl(vm->vcpufd, KVM_GET_TSC_KHZ, 0);
    vm->tsc_hz = khz > 0 ? (uint64_t)khz * 1000 : 0;
    vm->tsc_offset = 0;
    if (vm->pvm) return;
    for (int i = 0; i < 3; i++) {
        uint64_t before, after;
        memset(&m, 0, sizeof m);
        m.h.nmsrs = 1;
        m.e.index = 0x10; /* IA32_TIME_STAMP_COUNTER */
        before = __rdtsc();
        if (ioctl(vm->vcpufd, KVM_GET_MSRS, &m) != 1) {
            vm->tsc_hz = 0;
            return;
        }
        after = __rdtsc();
        if (after - before < best) {
            best = after - before;
            vm->tsc_offset = (int64_t)(m.e.data - (before + (after - before) / 2));
        }
    }
}

void hl_vm_tsc(const hl_vm *vm, uint64_t *hz, int64_t *offset)
{
    *hz = vm->tsc_hz;
    *offset = vm->tsc_offset;
}

hl_status hl_kvm_arch_vcpu(hl_vm *vm, const hl_vm_setup *s, char *err)
{
    hl_status st;
    measure_tsc(vm);
    if ((st = set_cpuid(vm, err)) != HL_OK ||
        (st = s->cpu ? hl_vm_cpu_set(vm, s->cpu, false, err) : set_cpu_state(vm, s, err)) != HL_OK)
        return st;
    /* KVM copies the segment and control registers to kvm_run at every exit, so a restore can
     * tell whether the guest changed them without an ioctl. */
    vm->run->kvm_valid_regs = KVM_SYNC_X86_SREGS;
    return HL_OK;
}

hl_status hl_vm_lock_vif(hl_vm *vm, bool locked, char *err)
{
    return vm->vif_locked == locked ? HL_OK : set_msr_filter(vm, !locked, err);
}

hl_status hl_vm_vif_gpa(hl_vm *vm, uint64_t *gpa, char *err)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m;
    memset(&m, 0, sizeof m);
    m.h.nmsrs = 1;
    m.e.index = HL_MSR_PVM_VIF;
    if (ioctl(vm->vcpufd, KVM_GET_MSRS, &m) != 1)
        return hl_errf(err, HL_ERR_HYPERVISOR, "reading the virtual-IF MSR: %s", strerror(errno));
    *gpa = m.e.data & ~0xfffull; /* the low bits are kvm_pvm's flags */
    return HL_OK;
}

/* kvm_pvm runs the guest on the host thread's own data segment registers: a selector the
 * guest loads into ds, es, fs or gs is still there when KVM_RUN returns, in the host thread
 * and in the next guest it runs. Put the host's back (keeping the fs/gs bases: loading a
 * selector can change them). Reading four selectors costs a few cycles; the repair runs
 * only when the guest changed one. */
struct selectors {
    uint16_t ds, es, fs, gs;
};

static inline void selectors_read(struct selectors *s)
{
    __asm__ volatile("mov %%ds, %0\n\tmov %%es, %1\n\tmov %%fs, %2\n\tmov %%gs, %3"
                     : "=r"(s->ds), "=r"(s->es), "=r"(s->fs), "=r"(s->gs));
}

static void selectors_put_back(const struct selectors *host, const struct selectors *now)
{
    unsigned long fsbase = 0, gsbase = 0;
    bool fsgsbase = getauxval(AT_HWCAP2) & 2; /* HWCAP2_FSGSBASE: rd/wrfsbase usable here */
    if (fsgsbase) __asm__ volatile("rdfsbase %0\n\trdgsbase %1" : "=r"(fsbase), "=r"(gsbase));
    else syscall(SYS_arch_prctl, ARCH_GET_FS, &fsbase), syscall(SYS_arch_prctl, ARCH_GET_GS, &gsbase);
    if (now->ds != host->ds) __asm__ volatile("mov %0, %%ds" : : "r"(host->ds));
    if (now->es != host->es) __asm__ volatile("mov %0, %%es" : : "r"(host->es));
    if (now->fs != host->fs) __asm__ volatile("mov %0, %%fs" : : "r"(host->fs));
    if (now->gs != host->gs) __asm__ volatile("mov %0, %%gs" : : "r"(host->gs));
    if (fsgsbase) __asm__ volatile("wrfsbase %0\n\twrgsbase %1" : : "r"(fsbase), "r"(gsbase));
    else syscall(SYS_arch_prctl, ARCH_SET_FS, fsbase), syscall(SYS_arch_prctl, ARCH_SET_GS, gsbase);
}

/* One KVM_RUN, with the host's data segment registers put back after it. */
int hl_kvm_run_once(hl_vm *vm)
{
    struct selectors host, now;
    selectors_read(&host);
    int rc = ioctl(vm->vcpufd, KVM_RUN, 0), saved_errno;
    selectors_read(&now);
    if (__builtin_expect(memcmp(&now, &host, sizeof now) != 0, 0)) {
        saved_errno = errno;
        selectors_put_back(&host, &now);
        errno = saved_errno;
    }
    return rc;
}

hl_status hl_vm_run(hl_vm *vm, hl_exit *ex, char *err)
{
    struct kvm_run *run = vm->run;
    memset(ex, 0, sizeof *ex);
    for (;;) {
        int rc = hl_kvm_run_once(vm);
        if (rc == 0) break;
        if (errno == EINTR) {
            vm->pending = false; /* KVM completes it before it checks for signals */
            ex->kind = HL_EXIT_INTR;
            return HL_OK;
        }
        if (errno != EAGAIN) return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_RUN: %s", strerror(errno));
    }
    ex->reason = run->exit_reason;
    vm->pending = false;
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        /* Hardware KVM completes every port access at the next KVM_RUN (rip still points at
         * the instruction); kvm_pvm emulates an OUT whole before it exits (rip is past it)
         * but an IN still waits for the data. */
        vm->pending = !(run->io.direction == KVM_EXIT_IO_OUT && vm->pvm);
        ex->port = run->io.port;
        /* Our guests only ever use `outl %eax, %dx`. A byte or word OUT is how a string
         * instruction (outsb/outsw) shows up here, one element per exit. */
        if (run->io.direction == KVM_EXIT_IO_OUT && run->io.count == 1 && run->io.size == 4) {
            uint32_t v = 0;
            memcpy(&v, (uint8_t *)run + run->io.data_offset, run->io.size);
            ex->kind = HL_EXIT_OUT;
            ex->value = v;
        } else {
            ex->kind = HL_EXIT_IN; /* IN, or a string instruction: both refused */
            ex->is_write = run->io.direction == KVM_EXIT_IO_OUT;
        }
        break;
    case KVM_EXIT_MMIO:
        vm->pending = true;
        ex->kind = HL_EXIT_MMIO;
        ex->addr = run->mmio.phys_addr;
        ex->is_write = run->mmio.is_write;
        break;
    case KVM_EXIT_SHUTDOWN: ex->kind = HL_EXIT_SHUTDOWN; break;
    case KVM_EXIT_HLT: ex->kind = HL_EXIT_HLT; break;
    case KVM_EXIT_INTR: ex->kind = HL_EXIT_INTR; break;
    case KVM_EXIT_INTERNAL_ERROR:
        ex->kind = run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? HL_EXIT_EMULATION : HL_EXIT_OTHER;
        break;
    default: ex->kind = HL_EXIT_OTHER; break;
    }
    return HL_OK;
}

hl_status hl_vm_state_get(hl_vm *vm, hl_vm_state *st)
{
    struct kvm_regs r;
    struct kvm_sregs sr;
    struct kvm_vcpu_events ev;
    memset(st, 0, sizeof *st);
    st->exception = -1;
    if (ioctl(vm->vcpufd, KVM_GET_REGS, &r) < 0 || ioctl(vm->vcpufd, KVM_GET_SREGS, &sr) < 0) return HL_ERR_HYPERVISOR;
    /* After a triple fault, KVM's exception slot still holds the vector (and error code) of
     * the exception whose delivery failed, though no longer marked injected or pending. */
    if (ioctl(vm->vcpufd, KVM_GET_VCPU_EVENTS, &ev) == 0) {
        st->exception = ev.exception.nr;
        st->error_code = ev.exception.has_error_code ? ev.exception.error_code : 0;
    }
    st->rip = r.rip;
    st->rsp = r.rsp;
    st->rflags = r.rflags;
    st->rax = r.rax;
    st->cr2 = sr.cr2;
    st->cr0 = sr.cr0;
    st->cr3 = sr.cr3;
    st->cr4 = sr.cr4;
    st->efer = sr.efer;
    return HL_OK;
}

void hl_vm_state_synced(const hl_vm *vm, hl_vm_state *st)
{
    const struct kvm_sregs *sr = &vm->run->s.regs.sregs;
    memset(st, 0, sizeof *st);
    st->exception = -1;
    st->cr0 = sr->cr0;
    st->cr2 = sr->cr2;
    st->cr3 = sr->cr3;
    st->cr4 = sr->cr4;
    st->efer = sr->efer;
}

hl_status hl_vm_cpu_get(hl_vm *vm, hl_cpu_state *cpu, char *err)
{
    if (ioctl(vm->vcpufd, KVM_GET_REGS, cpu->regs) < 0 || ioctl(vm->vcpufd, KVM_GET_SREGS, cpu->sregs) < 0 ||
        ioctl(vm->vcpufd, KVM_GET_FPU, cpu->fpu) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "reading vCPU state: %s", strerror(errno));
    return HL_OK;
}

void hl_vm_cpu_reset_fpu(hl_cpu_state *cpu)
{
    struct kvm_fpu fpu;
    _Static_assert(sizeof fpu == sizeof cpu->fpu, "hl_cpu_state.fpu holds a struct kvm_fpu");
    memset(&fpu, 0, sizeof fpu);
    fpu.fcw = X86_FCW_INIT;
    fpu.mxcsr = X86_MXCSR_INIT;
    memcpy(cpu->fpu, &fpu, sizeof fpu);
}

/* The debug registers at their reset values: a guest may set DR0-3/DR7 and read them back. */
static const struct kvm_debugregs debugregs_reset = { .dr6 = X86_DR6_INIT, .dr7 = X86_DR7_INIT };

hl_status hl_vm_cpu_set(hl_vm *vm, const hl_cpu_state *cpu, bool events, char *err)
{
    struct kvm_vcpu_events ev;
    hl_status st;
    /* state loaded over a pending instruction would be changed by its completion */
    if ((st = hl_vm_complete(vm, err)) != HL_OK) return st;
    vm->run->kvm_dirty_regs = 0;
    /* PKRU: a Ready vCPU resumes in the guest's wait_for_call, which resets PKRU before any
     * memory access (src/guest/runtime.c); after a failed call it may resume through
     * hl_resume, whose first pushes a hostile PKRU would fault, so the host resets it. */
    if (events && (st = reload_pkru(vm, err)) != HL_OK) return st; /* before KVM_SET_FPU: it sets x87/SSE too */
    /* An exception KVM was injecting when the call ended (a double fault it raised itself
     * under shadow paging, a page fault cut short by a time limit) survives KVM_SET_REGS and
     * would be delivered to the next user: clear the exception, interrupt and NMI state,
     * and the interrupt shadow. */
    memset(&ev, 0, sizeof ev);
    ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
    if (events && ioctl(vm->vcpufd, KVM_SET_VCPU_EVENTS, &ev) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_SET_VCPU_EVENTS: %s", strerror(errno));
    if (ioctl(vm->vcpufd, KVM_SET_SREGS, cpu->sregs) < 0 || ioctl(vm->vcpufd, KVM_SET_REGS, cpu->regs) < 0 ||
        ioctl(vm->vcpufd, KVM_SET_FPU, cpu->fpu) < 0 || ioctl(vm->vcpufd, KVM_SET_DEBUGREGS, &debugregs_reset) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "loading vCPU state: %s", strerror(errno));
    return HL_OK;
}

static bool segment_differs(const struct kvm_segment *a, const struct kvm_segment *b)
{
    return a->base != b->base || a->limit != b->limit || a->selector != b->selector || a->type != b->type ||
           a->present != b->present || a->dpl != b->dpl || a->db != b->db || a->s != b->s || a->l != b->l ||
           a->g != b->g || a->avl != b->avl || a->unusable != b->unusable;
}

/* Whether the guest changed what KVM_SET_SREGS would set back (KVM copies the segment and
 * control registers to kvm_run at every exit: kvm_valid_regs has KVM_SYNC_X86_SREGS). */
static bool sregs_differ(const struct kvm_sregs *now, const struct kvm_sregs *want)
{
    const struct kvm_segment *a[] = { &now->cs, &now->ds, &now->es, &now->fs, &now->gs, &now->ss, &now->tr, &now->ldt };
    const struct kvm_segment *b[] = { &want->cs, &want->ds, &want->es, &want->fs,
                                      &want->gs, &want->ss, &want->tr, &want->ldt };
    for (int i = 0; i < 8; i++)
        if (segment_differs(a[i], b[i])) return true;
    return now->gdt.base != want->gdt.base || now->gdt.limit != want->gdt.limit || now->idt.base != want->idt.base ||
           now->idt.limit != want->idt.limit || now->cr0 != want->cr0 || now->cr2 != want->cr2 ||
           now->cr3 != want->cr3 || now->cr4 != want->cr4 || now->cr8 != want->cr8 || now->efer != want->efer;
}

void hl_vm_gprs_sync(hl_vm *vm, const hl_cpu_state *cpu)
{
    memcpy(&vm->run->s.regs.regs, cpu->regs, sizeof cpu->regs);
    vm->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
}

hl_status hl_vm_regs_sync(hl_vm *vm, const hl_cpu_state *cpu, bool debug, char *err)
{
    hl_status st;
    if ((st = hl_vm_complete(vm, err)) != HL_OK) return st;
    hl_vm_gprs_sync(vm, cpu);
    if (sregs_differ(&vm->run->s.regs.sregs, (const struct kvm_sregs *)cpu->sregs)) {
        memcpy(&vm->run->s.regs.sregs, cpu->sregs, sizeof cpu->sregs);
        vm->run->kvm_dirty_regs |= KVM_SYNC_X86_SREGS;
    }
    /* Debug registers: no copy of them reaches kvm_run, so one ioctl puts them back to
     * their reset values (a guest may set DR0-3/DR7, and read them back after a restore),
     * unless the caller knows the guest did not touch them. */
    if (!debug) return HL_OK;
    if (ioctl(vm->vcpufd, KVM_SET_DEBUGREGS, &debugregs_reset) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_SET_DEBUGREGS: %s", strerror(errno));
    /* PKRU: the guest resets it itself where it waits for the next call, the point every
     * Ready restore resumes at (src/guest/runtime.c wait_for_call), at the cost of one
     * unprivileged instruction instead of a KVM_SET_XSAVE here. */
    return HL_OK;
}


int hl_vm_confine_ioctls(const hl_vm *vm, hl_vm_ioctl *out, int max)
{
    /* the run path's vCPU requests (a run, and reading a faulted guest's registers), and
     * one VM request: locking the virtual-IF MSR after a vCPU's first exit */
    static const unsigned long vcpu[] = { KVM_RUN,     KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_VCPU_EVENTS,
                                          KVM_GET_FPU, KVM_GET_MSRS };
    int n = 0;
    for (size_t i = 0; i < sizeof vcpu / sizeof vcpu[0] && n < max; i++)
        out[n++] = (hl_vm_ioctl){ vm->vcpufd, vcpu[i] };
    if (n < max) out[n++] = (hl_vm_ioctl){ vm->vmfd, KVM_X86_SET_MSR_FILTER };
    return n;
}

/* ---- the vCPU state's layout, for other modules ---- */
void hl_cpu_core_regs(const hl_cpu_state *cpu, const struct hl_fault *f, hl_core_regs *out)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    struct kvm_fpu k;
    struct user_regs_struct *u = &out->regs;
    struct user_fpregs_struct *fp = &out->fpregs;
    memcpy(&r, cpu->regs, sizeof r);
    memcpy(&s, cpu->sregs, sizeof s);
    memcpy(&k, cpu->fpu, sizeof k);
    if (f) { /* the guest's own report: the vCPU is in its handler */
        r = (struct kvm_regs){ .rax = f->gpr[0],
                               .rcx = f->gpr[1],
                               .rdx = f->gpr[2],
                               .rbx = f->gpr[3],
                               .rsp = f->rsp,
                               .rbp = f->gpr[5],
                               .rsi = f->gpr[6],
                               .rdi = f->gpr[7],
                               .r8 = f->gpr[8],
                               .r9 = f->gpr[9],
                               .r10 = f->gpr[10],
                               .r11 = f->gpr[11],
                               .r12 = f->gpr[12],
                               .r13 = f->gpr[13],
                               .r14 = f->gpr[14],
                               .r15 = f->gpr[15],
                               .rip = f->rip,
                               .rflags = f->rflags };
        s.cr2 = f->cr2;
    }
    memset(out, 0, sizeof *out);
    u->r15 = r.r15, u->r14 = r.r14, u->r13 = r.r13, u->r12 = r.r12;
    u->rbp = r.rbp, u->rbx = r.rbx, u->r11 = r.r11, u->r10 = r.r10;
    u->r9 = r.r9, u->r8 = r.r8, u->rax = r.rax, u->rcx = r.rcx;
    u->rdx = r.rdx, u->rsi = r.rsi, u->rdi = r.rdi;
    u->orig_rax = ~0ull; /* not in a system call */
    u->rip = r.rip;
    u->eflags = r.rflags;
    u->rsp = r.rsp;
    u->cs = s.cs.selector, u->ss = s.ss.selector, u->ds = s.ds.selector;
    u->es = s.es.selector, u->fs = s.fs.selector, u->gs = s.gs.selector;
    u->fs_base = s.fs.base;
    u->gs_base = s.gs.base;
    /* kvm_fpu is the fxsave image field by field (x87 registers 16 bytes apart, abridged tag) */
    fp->cwd = k.fcw;
    fp->swd = k.fsw;
    fp->ftw = k.ftwx;
    fp->fop = k.last_opcode;
    fp->rip = k.last_ip;
    fp->rdp = k.last_dp;
    fp->mxcsr = k.mxcsr;
    fp->mxcr_mask = 0xffff;
    memcpy(fp->st_space, k.fpr, sizeof fp->st_space);
    memcpy(fp->xmm_space, k.xmm, sizeof fp->xmm_space);
    out->cr0 = s.cr0, out->cr2 = s.cr2, out->cr3 = s.cr3, out->cr4 = s.cr4, out->efer = s.efer;
}

bool hl_cpu_long_mode(const hl_cpu_state *cpu)
{
    struct kvm_sregs s;
    memcpy(&s, cpu->sregs, sizeof s);
    return (s.cr0 & (X86_CR0_PE | X86_CR0_PG)) == (X86_CR0_PE | X86_CR0_PG) && (s.efer & X86_EFER_LMA);
}

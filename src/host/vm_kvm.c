/* vm_kvm.c - the KVM backend: VM, memslots, vCPU setup, run loop. The only file with ioctls.
 *
 * Cost model (PLATFORM.md): on kvm_pvm every vCPU ioctl costs ~5 µs and every exit ~26 µs,
 * so the call path issues exactly one KVM_RUN per exit and no register ioctls; registers
 * are read (KVM_GET_REGS/SREGS) only to describe a failure. */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <asm/prctl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* Intel SDM Vol. 3A §2.5 (control registers) and §2.2.1 (EFER). */
#define CR0_PE (1u << 0)
#define CR0_MP (1u << 1)
#define CR0_ET (1u << 4)
#define CR0_NE (1u << 5)
#define CR0_WP (1u << 16)
#define CR0_AM (1u << 18)
#define CR0_PG (1u << 31)
#define CR4_PAE (1u << 5)
#define CR4_OSFXSR (1u << 9)
#define CR4_OSXMMEXCPT (1u << 10)
#define EFER_SCE (1u << 0)
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)
#define EFER_NXE (1u << 11)

_Static_assert(sizeof(((hl_cpu_state *)0)->regs) == sizeof(struct kvm_regs), "kvm_regs size");
_Static_assert(sizeof(((hl_cpu_state *)0)->sregs) == sizeof(struct kvm_sregs), "kvm_sregs size");
_Static_assert(sizeof(((hl_cpu_state *)0)->fpu) == sizeof(struct kvm_fpu), "kvm_fpu size");

bool hl_kvm_is_pvm(void) { return access("/sys/module/kvm_pvm", F_OK) == 0; }

static hl_status set_slot(hl_vm *vm, uint32_t slot, uint64_t gpa, void *host, uint64_t size,
                          uint32_t flags, char *err)
{
    struct kvm_userspace_memory_region r = { .slot = slot, .flags = flags, .guest_phys_addr = gpa,
                                             .memory_size = size,
                                             .userspace_addr = (uint64_t)(uintptr_t)host };
    if (ioctl(vm->vmfd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_SET_USER_MEMORY_REGION (slot %u, %llu bytes): %s",
                       slot, (unsigned long long)size, strerror(errno));
    vm->slots[slot] = (struct hl_vm_slot){ .gpa = gpa, .size = size, .host = host, .flags = flags };
    return HL_OK;
}

hl_status hl_vm_slot_reset(hl_vm *vm, uint32_t slot, char *err)
{
    struct hl_vm_slot s = vm->slots[slot];
    hl_status st;
    /* A memory size of 0 deletes the slot (KVM API, KVM_SET_USER_MEMORY_REGION). */
    if ((st = set_slot(vm, slot, s.gpa, s.host, 0, s.flags, err)) != HL_OK) return st;
    return set_slot(vm, slot, s.gpa, s.host, s.size, s.flags, err);
}

/* ---- capabilities ----
 * Everything the library relies on, probed once per process with KVM_CHECK_EXTENSION (KVM
 * API, section 4.4) so that a KVM without one fails at creation naming it, not later with
 * an obscure ioctl error. */
static const struct kvm_cap {
    int cap;
    const char *name, *use;
    bool optional; /* the library has a fallback */
} kvm_caps[] = {
    { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest memory from the host process", false },
    { KVM_CAP_READONLY_MEM, "KVM_CAP_READONLY_MEM", "read-only memory for the guest's code and data", false },
    { KVM_CAP_SYNC_REGS, "KVM_CAP_SYNC_REGS", "registers in kvm_run instead of ioctls", false },
    { KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "interrupting a running guest", false },
    { KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "the guest's CPUID table", false },
    { KVM_CAP_X86_MSR_FILTER, "KVM_CAP_X86_MSR_FILTER", "refusing the guest MSRs that survive a restore", false },
    { KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS", "resetting debug registers at restore", false },
    { KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS", "naming a guest fault on kvm_pvm", false },
    { KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2",
      "keeping pages every call writes writable across restores", true },
    { KVM_CAP_BINARY_STATS_FD, "KVM_CAP_BINARY_STATS_FD",
      "skipping restore work when the guest ran nothing privileged (kvm_pvm)", true },
};
static pthread_once_t caps_once = PTHREAD_ONCE_INIT;
static char caps_error[256]; /* empty: every required capability is there */
static bool caps_manual_dirty;

bool hl_kvm_caps_check(int (*check)(void *ctx, int cap), void *ctx, bool *manual_dirty, char *err, size_t len)
{
    err[0] = 0;
    *manual_dirty = false;
    for (size_t i = 0; i < sizeof kvm_caps / sizeof kvm_caps[0]; i++) {
        int have = check(ctx, kvm_caps[i].cap);
        /* sync regs: the answer is the set of register groups; we need general + segment */
        if (kvm_caps[i].cap == KVM_CAP_SYNC_REGS)
            have = have > 0 && (have & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) ==
                                   (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
        if (kvm_caps[i].cap == KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)
            *manual_dirty = have > 0 && (have & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
        if (have <= 0 && !kvm_caps[i].optional && !err[0])
            snprintf(err, len, "this KVM lacks %s (needed for %s)", kvm_caps[i].name, kvm_caps[i].use);
    }
    return !err[0];
}

static int check_extension(void *ctx, int cap) { return ioctl(*(int *)ctx, KVM_CHECK_EXTENSION, cap); }

static void probe_caps(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        snprintf(caps_error, sizeof caps_error, "cannot open /dev/kvm: %s", strerror(errno));
        return;
    }
    if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
        snprintf(caps_error, sizeof caps_error, "KVM API version is not %d", KVM_API_VERSION);
    else
        hl_kvm_caps_check(check_extension, &kvm, &caps_manual_dirty, caps_error, sizeof caps_error);
    close(kvm);
}

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
        if (e->function == 1) e->ecx &= ~((1u << 31) | (1u << 5) | (1u << 26) | (1u << 27) | (1u << 28));
        /* PKU and OSPKE: likewise for PKRU (CR4.PKE needs PKU) */
        if (e->function == 7 && e->index == 0) e->ecx &= ~((1u << 3) | (1u << 4));
        if (e->function == 0x80000001) e->ecx &= ~(1u << 2);                    /* SVM */
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
    if (kvm < 0 || ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &supported_cpuid) < 0) supported_cpuid_errno = errno ? errno : EIO;
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
    uint16_t fcw = 0x37f;                 /* SDM Vol. 1 §8.1.5 */
    uint32_t mxcsr = 0x1f80;              /* SDM Vol. 1 §10.2.3 */
    uint64_t bv = 1u << 0 | 1u << 1 | 1u << 9; /* x87, SSE, PKRU: the rest in its initial state */
    if (__get_cpuid_max(0, NULL) < 0xd) return;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(c & (1u << 4))) return;         /* OSPKE: the host runs with CR4.PKE */
    __cpuid_count(0xd, 9, a, b, c, d);    /* PKRU state: size, offset (SDM Vol. 1 §13.2) */
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
    sr.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
    sr.cr3 = s->cr3;
    sr.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    sr.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    struct kvm_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 11,
                              .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1 };
    struct kvm_segment ds = { .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 3,
                              .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1 };
    sr.cs = cs;
    sr.ds = sr.es = sr.fs = sr.gs = sr.ss = ds;
    if (ioctl(vm->vcpufd, KVM_SET_SREGS, &sr) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_SET_SREGS: %s", strerror(errno));
    memset(&fpu, 0, sizeof fpu);
    fpu.fcw = 0x37f;     /* x87 default control word (SDM Vol. 1 §8.1.5) */
    fpu.mxcsr = 0x1f80;  /* all SSE exceptions masked (SDM Vol. 1 §10.2.3) */
    if (ioctl(vm->vcpufd, KVM_SET_FPU, &fpu) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_SET_FPU: %s", strerror(errno));
    memset(&r, 0, sizeof r);
    r.rip = s->rip;
    r.rsp = s->rsp;
    r.rdi = s->rdi;
    r.rflags = 0x2; /* bit 1 is reserved and always set */
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
    for (uint32_t i = first; i < first + n; i++) bm[i / 8] &= (uint8_t)~(1u << (i % 8));
}

static void make_msr_bitmaps(void)
{
    memset(msr_low_read, 0xff, sizeof msr_low_read);
    memset(msr_high_read, 0xff, sizeof msr_high_read);
    memset(msr_amd_read, 0xff, sizeof msr_amd_read);
    deny_bits(msr_low_read, 0x11, 2);                   /* KVM wall clock, system time (old numbers) */
    deny_bits(msr_low_read, 0x174, 3);                  /* SYSENTER_CS/ESP/EIP */
    deny_bits(msr_high_read, 0x81, 4);                  /* STAR, LSTAR, CSTAR, SFMASK */
    deny_bits(msr_high_read, 0x102, 2);                 /* KERNEL_GS_BASE, TSC_AUX */
}

static hl_status set_msr_filter(hl_vm *vm, bool allow_vif, char *err)
{
    const uint32_t R = KVM_MSR_FILTER_READ, W = KVM_MSR_FILTER_WRITE;
    struct kvm_msr_filter f = { .flags = KVM_MSR_FILTER_DEFAULT_DENY };
    int n = 0;
    pthread_once(&msr_once, make_msr_bitmaps);
    f.ranges[n++] = (struct kvm_msr_filter_range){ .flags = R, .nmsrs = MSR_LOW_N, .base = 0, .bitmap = msr_low_read };
    f.ranges[n++] = (struct kvm_msr_filter_range){ .flags = R, .nmsrs = MSR_HIGH_N, .base = 0xc0000000,
                                                   .bitmap = msr_high_read };
    f.ranges[n++] = (struct kvm_msr_filter_range){ .flags = R, .nmsrs = MSR_AMD_N, .base = 0xc0010000,
                                                   .bitmap = msr_amd_read };
    f.ranges[n++] = (struct kvm_msr_filter_range){ .flags = W, .nmsrs = 2, .base = 0xc0000100, /* FS/GS_BASE */
                                                   .bitmap = msr_allow };
    /* the virtual-IF MSR reads back where the page is; writes only until it is registered */
    f.ranges[n++] = (struct kvm_msr_filter_range){ .flags = allow_vif ? R | W : R, .nmsrs = 1,
                                                   .base = HL_MSR_PVM_VIF, .bitmap = msr_allow };
    if (ioctl(vm->vmfd, KVM_X86_SET_MSR_FILTER, &f) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_X86_SET_MSR_FILTER: %s", strerror(errno));
    vm->vif_locked = !allow_vif;
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

/* Finds the vCPU statistic `name` in KVM's binary statistics (KVM API, KVM_GET_STATS_FD):
 * the file offset of its value, or -1. */
static off_t stat_offset(int fd, const char *name)
{
    struct kvm_stats_header h;
    size_t dsz;
    uint8_t *descs;
    off_t at = -1;
    if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || h.num_desc > 4096 || h.name_size > 4096) return -1;
    dsz = sizeof(struct kvm_stats_desc) + h.name_size;
    if (!(descs = malloc(dsz * h.num_desc))) return -1;
    if (pread(fd, descs, dsz * h.num_desc, h.desc_offset) == (ssize_t)(dsz * h.num_desc))
        for (uint32_t i = 0; i < h.num_desc && at < 0; i++) {
            const struct kvm_stats_desc *d = (const struct kvm_stats_desc *)(descs + i * dsz);
            if (strncmp(d->name, name, h.name_size) == 0 && d->size == 1)
                at = (off_t)h.data_offset + (off_t)d->offset;
        }
    free(descs);
    return at;
}

hl_status hl_vm_create(hl_vm *vm, const hl_vm_setup *s, char *err)
{
    hl_status st;
    int kvm, mmap_size;
    memset(vm, 0, sizeof *vm);
    vm->vmfd = vm->vcpufd = vm->statsfd = -1;
    vm->pvm = hl_kvm_is_pvm();
    pthread_once(&caps_once, probe_caps);
    if (caps_error[0]) return hl_errf(err, HL_ERR_HYPERVISOR, "%s", caps_error);
    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) return hl_errf(err, HL_ERR_HYPERVISOR, "cannot open /dev/kvm: %s", strerror(errno));
    vm->vmfd = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm->vmfd < 0) {
        st = hl_errf(err, HL_ERR_HYPERVISOR, "KVM_CREATE_VM: %s", strerror(errno));
        goto fail;
    }
    if ((st = set_msr_filter(vm, true, err)) != HL_OK) goto fail;
    /* Manual dirty-log protection: KVM_GET_DIRTY_LOG then leaves pages writable until we
     * clear them, so pages a guest writes on every call need not fault on every call. */
    if (caps_manual_dirty) {
        struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
                                      .args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } };
        vm->manual_dirty = ioctl(vm->vmfd, KVM_ENABLE_CAP, &cap) == 0;
    }
    if ((st = set_slot(vm, HL_SLOT_RO, s->ro_gpa, s->ro, s->ro_size, KVM_MEM_READONLY, err)) ||
        (st = set_slot(vm, HL_SLOT_PT, HL_PT_GPA, s->pt, s->pt_size, KVM_MEM_LOG_DIRTY_PAGES, err)) ||
        (st = set_slot(vm, HL_SLOT_RW, s->rw_gpa, s->rw, s->rw_size, KVM_MEM_LOG_DIRTY_PAGES, err)))
        goto fail;
    for (int i = 0; i < s->nfiles; i++)
        if ((st = set_slot(vm, HL_SLOT_FILE0 + (uint32_t)i, s->file_gpa[i], s->file_host[i], s->file_len[i],
                           KVM_MEM_READONLY, err)))
            goto fail;
    vm->vcpufd = ioctl(vm->vmfd, KVM_CREATE_VCPU, 0);
    if (vm->vcpufd < 0) {
        st = hl_errf(err, HL_ERR_HYPERVISOR, "KVM_CREATE_VCPU: %s", strerror(errno));
        goto fail;
    }
    mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size < (int)sizeof(struct kvm_run)) {
        st = hl_errf(err, HL_ERR_HYPERVISOR, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
        goto fail;
    }
    vm->run_size = (size_t)mmap_size;
    vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpufd, 0);
    if (vm->run == MAP_FAILED) {
        vm->run = NULL;
        st = hl_errf(err, HL_ERR_HYPERVISOR, "mmap of kvm_run: %s", strerror(errno));
        goto fail;
    }
    if ((st = set_cpuid(vm, err)) ||
        (st = s->cpu ? hl_vm_cpu_set(vm, s->cpu, false, err) : set_cpu_state(vm, s, err)))
        goto fail;
    /* KVM copies the segment and control registers to kvm_run at every exit, so a restore can
     * tell whether the guest changed them without an ioctl. */
    vm->run->kvm_valid_regs = KVM_SYNC_X86_SREGS;
    vm->statsfd = ioctl(vm->vcpufd, KVM_GET_STATS_FD, 0);
    vm->emul_at = vm->statsfd >= 0 ? stat_offset(vm->statsfd, "insn_emulation") : -1;
    close(kvm);
    return HL_OK;
fail:
    close(kvm);
    hl_vm_destroy(vm);
    return st;
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
static int kvm_run_once(hl_vm *vm)
{
    struct selectors host, now;
    selectors_read(&host);
    int rc = ioctl(vm->vcpufd, KVM_RUN, 0), saved_errno = errno;
    selectors_read(&now);
    if (memcmp(&now, &host, sizeof now) != 0) selectors_put_back(&host, &now);
    errno = saved_errno;
    return rc;
}

hl_status hl_vm_run(hl_vm *vm, hl_exit *ex, char *err)
{
    struct kvm_run *run = vm->run;
    memset(ex, 0, sizeof *ex);
    for (;;) {
        int rc = kvm_run_once(vm);
        if (rc == 0) break;
        if (errno == EINTR) {
            vm->pending = false; /* KVM completes it before it checks for signals */
            ex->kind = HL_EXIT_INTR;
            return HL_OK;
        }
        if (errno != EAGAIN)
            return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_RUN: %s", strerror(errno));
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
    if (ioctl(vm->vcpufd, KVM_GET_REGS, &r) < 0 || ioctl(vm->vcpufd, KVM_GET_SREGS, &sr) < 0)
        return HL_ERR_HYPERVISOR;
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

hl_status hl_vm_cpu_set(hl_vm *vm, const hl_cpu_state *cpu, bool events, char *err)
{
    struct kvm_debugregs dbg;
    struct kvm_vcpu_events ev;
    hl_status st;
    /* state loaded over a pending instruction would be changed by its completion */
    if ((st = hl_vm_complete(vm, err)) != HL_OK) return st;
    memset(&dbg, 0, sizeof dbg);
    dbg.dr6 = 0xffff0ff0; /* architectural reset values (SDM Vol. 3B §18.2) */
    dbg.dr7 = 0x400;
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
        ioctl(vm->vcpufd, KVM_SET_FPU, cpu->fpu) < 0 || ioctl(vm->vcpufd, KVM_SET_DEBUGREGS, &dbg) < 0)
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
    const struct kvm_segment *b[] = { &want->cs, &want->ds, &want->es, &want->fs, &want->gs, &want->ss, &want->tr, &want->ldt };
    for (int i = 0; i < 8; i++)
        if (segment_differs(a[i], b[i])) return true;
    return now->gdt.base != want->gdt.base || now->gdt.limit != want->gdt.limit || now->idt.base != want->idt.base ||
           now->idt.limit != want->idt.limit || now->cr0 != want->cr0 || now->cr2 != want->cr2 || now->cr3 != want->cr3 ||
           now->cr4 != want->cr4 || now->cr8 != want->cr8 || now->efer != want->efer;
}

void hl_vm_gprs_sync(hl_vm *vm, const hl_cpu_state *cpu)
{
    memcpy(&vm->run->s.regs.regs, cpu->regs, sizeof cpu->regs);
    vm->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
}

hl_status hl_vm_regs_sync(hl_vm *vm, const hl_cpu_state *cpu, bool debug, char *err)
{
    struct kvm_debugregs dbg;
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
    memset(&dbg, 0, sizeof dbg);
    dbg.dr6 = 0xffff0ff0;
    dbg.dr7 = 0x400;
    if (ioctl(vm->vcpufd, KVM_SET_DEBUGREGS, &dbg) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_SET_DEBUGREGS: %s", strerror(errno));
    /* PKRU: the guest resets it itself where it waits for the next call, the point every
     * Ready restore resumes at (src/guest/runtime.c wait_for_call), at the cost of one
     * unprivileged instruction instead of a KVM_SET_XSAVE here. */
    return HL_OK;
}

hl_status hl_vm_dirty_log(hl_vm *vm, uint32_t slot, uint64_t *bitmap, uint64_t *scratch, uint64_t npages,
                          char *err)
{
    struct kvm_dirty_log dl = { .slot = slot, .dirty_bitmap = scratch };
    uint64_t words = (npages + 63) / 64;
    if (ioctl(vm->vmfd, KVM_GET_DIRTY_LOG, &dl) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_GET_DIRTY_LOG (slot %u): %s", slot, strerror(errno));
    for (uint64_t i = 0; i < words; i++) bitmap[i] |= scratch[i];
    return HL_OK;
}

hl_status hl_vm_dirty_clear(hl_vm *vm, uint32_t slot, uint64_t *bitmap, uint64_t npages, char *err)
{
    struct kvm_clear_dirty_log cl = { .slot = slot, .first_page = 0, .num_pages = (uint32_t)npages,
                                      .dirty_bitmap = bitmap };
    uint64_t any = 0;
    if (!vm->manual_dirty) return HL_OK; /* KVM_GET_DIRTY_LOG re-protected everything already */
    for (uint64_t i = 0; i < (npages + 63) / 64; i++) any |= bitmap[i];
    if (!any) return HL_OK; /* nothing to re-protect: spare the ioctl */
    if (ioctl(vm->vmfd, KVM_CLEAR_DIRTY_LOG, &cl) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_CLEAR_DIRTY_LOG (slot %u): %s", slot, strerror(errno));
    return HL_OK;
}

hl_status hl_vm_complete(hl_vm *vm, char *err)
{
    /* KVM finishes the pending instruction before it looks at immediate_exit, then returns
     * EINTR without entering the guest (KVM API, "immediate_exit"). Completing an MMIO
     * access can need a further exchange (an access split in fragments): then KVM_RUN
     * returns with another MMIO exit, which is completed the same way. The caller runs no
     * guest call, so no interrupt can be meant for this KVM_RUN, and the kick is ours. */
    for (int i = 0; vm->pending; i++) {
        int rc;
        if (i == 8) return hl_errf(err, HL_ERR_HYPERVISOR, "completing the guest's pending I/O: no end");
        hl_vm_kick(vm, true);
        rc = kvm_run_once(vm);
        hl_vm_kick(vm, false);
        if (rc < 0 && errno == EINTR) {
            vm->pending = false;
        } else if (rc < 0) {
            return hl_errf(err, HL_ERR_HYPERVISOR, "completing the guest's pending I/O (KVM_RUN): %s", strerror(errno));
        } else if (vm->run->exit_reason != KVM_EXIT_MMIO) {
            return hl_errf(err, HL_ERR_HYPERVISOR, "completing the guest's pending I/O: unexpected exit %u",
                           vm->run->exit_reason);
        }
    }
    return HL_OK;
}

void hl_vm_kick(hl_vm *vm, bool on)
{
    if (vm->run) __atomic_store_n(&vm->run->immediate_exit, on ? 1 : 0, __ATOMIC_SEQ_CST);
}

int64_t hl_vm_emulations(hl_vm *vm)
{
    uint64_t v;
    if (vm->statsfd < 0 || vm->emul_at < 0 || pread(vm->statsfd, &v, 8, vm->emul_at) != 8) return -1;
    return (int64_t)v;
}

void hl_vm_destroy(hl_vm *vm)
{
    if (vm->statsfd >= 0) close(vm->statsfd);
    vm->statsfd = -1;
    if (vm->run) munmap(vm->run, vm->run_size);
    if (vm->vcpufd >= 0) close(vm->vcpufd);
    if (vm->vmfd >= 0) close(vm->vmfd);
    vm->run = NULL;
    vm->vcpufd = vm->vmfd = -1;
}

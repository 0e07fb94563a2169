/* vm_kvm.c - the KVM backend, its architecture-independent part: capabilities, the VM and
 * its memslots, the dirty log, completing pending I/O, kicks and statistics. With
 * vm_kvm_x86_64.c, the only code that includes <linux/kvm.h> or issues ioctls.
 *
 * Cost model (docs/platforms.md): on kvm_pvm every vCPU ioctl costs ~5 µs and every exit
 * ~26 µs, so the call path issues exactly one KVM_RUN per exit and no register ioctls;
 * registers are read (KVM_GET_REGS/SREGS) only to describe a failure. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "io.h"
#include "vm_kvm.h"

static pthread_once_t pvm_once = PTHREAD_ONCE_INIT;
static bool is_pvm;
static void probe_pvm(void) { is_pvm = access("/sys/module/kvm_pvm", F_OK) == 0; }

bool hl_kvm_is_pvm(void)
{
    pthread_once(&pvm_once, probe_pvm);
    return is_pvm;
}

static hl_status set_slot(hl_vm *vm, uint32_t slot, uint64_t gpa, void *host, uint64_t size, uint32_t flags, char *err)
{
    struct kvm_userspace_memory_region r = { .slot = slot,
                                             .flags = flags,
                                             .guest_phys_addr = gpa,
                                             .memory_size = size,
                                             .userspace_addr = (uint64_t)(uintptr_t)host };
    if (ioctl(vm->vmfd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return hl_errf(err, HL_ERR_HYPERVISOR, "KVM_SET_USER_MEMORY_REGION (slot %u, %llu bytes): %s", slot,
                       (unsigned long long)size, strerror(errno));
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
            have = have > 0 &&
                   (have & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) == (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
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
    else hl_kvm_caps_check(check_extension, &kvm, &caps_manual_dirty, caps_error, sizeof caps_error);
    close(kvm);
}

/* Finds the vCPU statistic `name` in KVM's binary statistics (KVM API, KVM_GET_STATS_FD):
 * the file offset of its value, or -1. */
static off_t stat_offset(int fd, const char *name)
{
    struct kvm_stats_header h;
    size_t dsz;
    uint8_t *descs;
    off_t at = -1;
    if (hl_pread_full(fd, &h, sizeof h, 0) < 0 || h.num_desc > 4096 || h.name_size > 4096) return -1;
    dsz = sizeof(struct kvm_stats_desc) + h.name_size;
    if (!(descs = malloc(dsz * h.num_desc))) return -1;
    if (hl_pread_full(fd, descs, dsz * h.num_desc, h.desc_offset) == 0)
        for (uint32_t i = 0; i < h.num_desc && at < 0; i++) {
            const struct kvm_stats_desc *d = (const struct kvm_stats_desc *)(descs + i * dsz);
            if (strncmp(d->name, name, h.name_size) == 0 && d->size == 1) at = (off_t)h.data_offset + (off_t)d->offset;
        }
    free(descs);
    return at;
}

hl_status hl_vm_create(hl_vm **out, const hl_vm_setup *s, char *err)
{
    hl_status st;
    int kvm, mmap_size;
    hl_vm *vm = calloc(1, sizeof *vm);
    *out = NULL;
    if (!vm) return hl_errf(err, HL_ERR_NO_MEMORY, "out of memory");
    vm->vmfd = vm->vcpufd = vm->statsfd = -1;
    vm->pvm = hl_kvm_is_pvm();
    pthread_once(&caps_once, probe_caps);
    if (caps_error[0]) {
        free(vm);
        return hl_errf(err, HL_ERR_HYPERVISOR, "%s", caps_error);
    }
    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        free(vm);
        return hl_errf(err, HL_ERR_HYPERVISOR, "cannot open /dev/kvm: %s", strerror(errno));
    }
    vm->vmfd = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm->vmfd < 0) {
        st = hl_errf(err, HL_ERR_HYPERVISOR, "KVM_CREATE_VM: %s", strerror(errno));
        goto fail;
    }
    if ((st = hl_kvm_arch_vm(vm, err)) != HL_OK) goto fail;
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
    if ((st = hl_kvm_arch_vcpu(vm, s, err)) != HL_OK) goto fail;
    vm->statsfd = ioctl(vm->vcpufd, KVM_GET_STATS_FD, 0);
    vm->emul_at = vm->statsfd >= 0 ? stat_offset(vm->statsfd, "insn_emulation") : -1;
    close(kvm);
    *out = vm;
    return HL_OK;
fail:
    close(kvm);
    hl_vm_destroy(vm);
    return st;
}

hl_status hl_vm_dirty_log(hl_vm *vm, uint32_t slot, uint64_t *bitmap, uint64_t *scratch, uint64_t npages, char *err)
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
    struct kvm_clear_dirty_log cl = {
        .slot = slot, .first_page = 0, .num_pages = (uint32_t)npages, .dirty_bitmap = bitmap
    };
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
        rc = hl_kvm_run_once(vm);
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
    if (vm->statsfd < 0 || vm->emul_at < 0 || hl_pread_full(vm->statsfd, &v, 8, vm->emul_at) < 0) return -1;
    return (int64_t)v;
}

void hl_vm_destroy(hl_vm *vm)
{
    if (!vm) return;
    if (vm->statsfd >= 0) close(vm->statsfd);
    if (vm->run) munmap(vm->run, vm->run_size);
    if (vm->vcpufd >= 0) close(vm->vcpufd);
    if (vm->vmfd >= 0) close(vm->vmfd);
    free(vm);
}

bool hl_vm_is_pvm(const hl_vm *vm) { return vm->pvm; }
bool hl_vm_vif_locked(const hl_vm *vm) { return vm->vif_locked; }
bool hl_vm_manual_dirty(const hl_vm *vm) { return vm->manual_dirty; }

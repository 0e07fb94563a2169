/* perf.c - tracepoint counters through perf_event_open: kvm exits, emulated instructions, guest
 * page mappings, and this thread's ioctls (all, KVM_RUN, vCPU register ioctls) and syscalls. */
#define _GNU_SOURCE
#include <linux/kvm.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "perf.h"

static const char *const ctr_event[NCTR] = {
    "kvm/kvm_exit",
    "kvm/kvm_userspace_exit",
    "kvm/kvm_pio",
    "kvm/kvm_emulate_insn",
    "kvm/kvm_page_fault",
    "kvmmmu/kvm_mmu_spte_requested",
    "syscalls/sys_enter_ioctl",
    "syscalls/sys_enter_ioctl",
    "syscalls/sys_enter_ioctl",
    "raw_syscalls/sys_enter",
};
const char *const ctr_name[NCTR] = {
    "kvm:kvm_exit",         "kvm:kvm_userspace_exit",
    "kvm:kvm_pio",          "kvm:kvm_emulate_insn",
    "kvm:kvm_page_fault",   "kvmmmu:kvm_mmu_spte_requested",
    "ioctl syscalls",       "KVM_RUN ioctls",
    "vCPU register ioctls", "syscalls",
};
/* The vCPU state ioctls a call path must not use (each costs ~5 us on kvm_pvm). */
static const unsigned long reg_ioctls[] = {
    KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS,       KVM_SET_SREGS,       KVM_GET_FPU,   KVM_SET_FPU,
    KVM_GET_MSRS, KVM_SET_MSRS, KVM_GET_DEBUGREGS,   KVM_SET_DEBUGREGS,   KVM_GET_XSAVE, KVM_SET_XSAVE,
    KVM_GET_XCRS, KVM_SET_XCRS, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS,
};

/* Tracepoint filter of counter i ("" for none). */
static void ctr_filter(int i, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    if (i == C_RUN) snprintf(buf, len, "cmd == 0x%lx", (unsigned long)KVM_RUN);
    if (i != C_REGIO) return;
    for (size_t k = 0; k < sizeof reg_ioctls / sizeof reg_ioctls[0] && n < len; k++)
        n += (size_t)snprintf(buf + n, len - n, "%scmd == 0x%lx", k ? " || " : "", reg_ioctls[k]);
}

/* tid: the thread to count (0: this one) */
static int tp_open(const char *event, const char *filter, int group, pid_t tid)
{
    int fd;
    char path[256];
    unsigned long long id;
    struct perf_event_attr a;
    FILE *f;
    snprintf(path, sizeof path, "/sys/kernel/tracing/events/%s/id", event);
    if (!(f = fopen(path, "r"))) {
        snprintf(path, sizeof path, "/sys/kernel/debug/tracing/events/%s/id", event);
        if (!(f = fopen(path, "r"))) return -1;
    }
    if (fscanf(f, "%llu", &id) != 1) id = ~0ull;
    fclose(f);
    if (id == ~0ull) return -1;
    memset(&a, 0, sizeof a);
    a.type = PERF_TYPE_TRACEPOINT;
    a.size = sizeof a;
    a.config = id;
    a.read_format = PERF_FORMAT_GROUP;
    a.disabled = group < 0; /* the leader starts disabled; members follow it */
    fd = (int)syscall(SYS_perf_event_open, &a, tid, -1, group, PERF_FLAG_FD_CLOEXEC);
    if (fd >= 0 && filter[0] && ioctl(fd, PERF_EVENT_IOC_SET_FILTER, filter) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void ctr_open(counters *c, pid_t tid)
{
    int leader = -1;
    memset(c, 0, sizeof *c);
    for (int i = 0; i < NCTR; i++) {
        char filter[1024];
        ctr_filter(i, filter, sizeof filter);
        c->fd[i] = tp_open(ctr_event[i], filter, leader, tid);
        c->slot[i] = -1;
        if (c->fd[i] < 0) continue;
        if (leader < 0) leader = c->fd[i];
        c->slot[i] = c->nopen++;
    }
    c->ok = leader >= 0;
    if (c->ok) ioctl(leader, PERF_EVENT_IOC_ENABLE, PERF_IOC_FLAG_GROUP);
}

void ctr_close(counters *c)
{
    for (int i = NCTR - 1; i >= 0; i--)
        if (c->fd[i] >= 0) close(c->fd[i]);
}

void ctr_read(const counters *c, uint64_t out[NCTR])
{
    uint64_t buf[1 + NCTR];
    memset(out, 0, NCTR * sizeof *out);
    if (!c->ok) return;
    for (int i = 0; i < NCTR; i++)
        if (c->slot[i] >= 0) {
            if (read(c->fd[i], buf, sizeof buf) < 0) return;
            break; /* the first open fd is the leader */
        }
    for (int i = 0; i < NCTR; i++)
        if (c->slot[i] >= 0) out[i] = buf[1 + c->slot[i]];
}

void ctr_read_both(const counters *c, const counters *cw, uint64_t out[NCTR], bool after)
{
    uint64_t w[NCTR];
    if (!after) ctr_read(cw, w);
    ctr_read(c, out);
    if (after) ctr_read(cw, w);
    for (int i = 0; i < NCTR; i++) out[i] += w[i];
}

counts ctr_per_op(const counters *c, const uint64_t a[NCTR], const uint64_t b[NCTR], uint64_t ops)
{
    counts r;
    for (int i = 0; i < NCTR; i++) r.c[i] = c->ok && c->slot[i] >= 0 ? (double)(b[i] - a[i]) / (double)ops : -1;
    /* The second counter read (a syscall) counted itself. */
    if (r.c[C_SYSCALL] >= 1.0 / (double)ops) r.c[C_SYSCALL] -= 1.0 / (double)ops;
    return r;
}

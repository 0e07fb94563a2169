/* hyperlight-bench - measures the cost of calls into hyperlight-c sandboxes against the floor
 * the hypervisor allows, prints a table and writes it as JSON under bench/results/.
 *
 * Rows (docs/benchmarks.md):
 *   floor        one bare VM exit round trip (KVM_RUN -> guest `out` -> back) of a minimal VM
 *                the benchmark builds itself through the library's internals, in the same CPU
 *                mode as a sandbox (native supervisor mode on kvm_pvm)
 *   empty call   hl_call(Empty) -> i32
 *   echo         hl_call(Echo, "hello") -> string
 *   host call    one guest -> host -> guest round trip (host function Nop() -> i32), timed
 *                between consecutive calls of Nop inside HostRoundTrip(n)
 *   call+restore hl_call(Empty) then hl_restore to a snapshot taken after creation (extra row)
 *   compute      the loop of compute.h in the guest (Compute) and natively on the host
 *   create       hl_sandbox_new_from_file + hl_sandbox_free, and (extra row)
 *                hl_sandbox_new_from_snapshot + hl_sandbox_free
 * All rows are measured in interleaved rounds so the noise of the shared cores hits each of
 * them alike. Afterwards, one counting pass reads the kvm tracepoints (kvm_exit,
 * kvm_userspace_exit, kvm_emulate_insn, ...) and the ioctl syscalls of this thread per call.
 *
 * usage: hyperlight-bench [--guest PATH] [--out DIR] [--rounds N] [--no-json] */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/kvm.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "compute.h"
#include "hyperlight.h"
#include "internal.h"

/* ---- parameters ---- */
#define DEFAULT_ROUNDS 30
#define BATCH 500             /* floor exits / empty calls / echo calls per round */
#define HOSTCALLS 100         /* Nop calls per HostRoundTrip call */
#define HOSTCALL_BATCH 2      /* HostRoundTrip calls per round */
#define COMPUTE_N 10000000u   /* iterations of bench_compute */
#define CREATE_BATCH 2        /* sandbox creations per round */
#define COUNT_OPS 2000        /* calls in the counting pass */

/* ---- targets (the issue's) ---- */
#define TARGET_EMPTY_VS_FLOOR 1.3
#define TARGET_COMPUTE_SPEED 0.9

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hyperlight-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- samples ---- */
typedef struct samples {
    uint64_t *v;
    size_t n, cap;
} samples;

static void add_sample(samples *s, uint64_t x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        if (!(s->v = realloc(s->v, s->cap * sizeof *s->v))) die("out of memory");
    }
    s->v[s->n++] = x;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    uint64_t median, p99, min, max;
    double mean;
} stats;

/* Nearest-rank percentiles. */
static stats compute_stats(samples *s)
{
    stats st = { 0 };
    double sum = 0;
    if (!s->n) return st;
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    st.median = s->v[(s->n - 1) / 2];
    size_t r99 = (size_t)((s->n * 99 + 99) / 100); /* ceil(0.99 n) */
    st.p99 = s->v[(r99 ? r99 : 1) - 1];
    st.min = s->v[0];
    st.max = s->v[s->n - 1];
    for (size_t i = 0; i < s->n; i++) sum += (double)s->v[i];
    st.mean = sum / (double)s->n;
    return st;
}

/* ---- tracepoint counters of this thread (perf_event_open; needs root or paranoid <= 1) ---- */
enum { C_EXIT, C_UEXIT, C_PIO, C_EMUL, C_PF, C_SPTE, C_IOCTL, C_RUN, C_REGIO, C_SYSCALL, NCTR };
static const char *const ctr_event[NCTR] = {
    "kvm/kvm_exit",       "kvm/kvm_userspace_exit",   "kvm/kvm_pio",
    "kvm/kvm_emulate_insn", "kvm/kvm_page_fault",     "kvmmmu/kvm_mmu_spte_requested",
    "syscalls/sys_enter_ioctl",
    "syscalls/sys_enter_ioctl", "syscalls/sys_enter_ioctl", "raw_syscalls/sys_enter",
};
static const char *const ctr_name[NCTR] = {
    "kvm:kvm_exit",       "kvm:kvm_userspace_exit", "kvm:kvm_pio",
    "kvm:kvm_emulate_insn", "kvm:kvm_page_fault",   "kvmmmu:kvm_mmu_spte_requested",
    "ioctl syscalls",
    "KVM_RUN ioctls",     "vCPU register ioctls",   "syscalls",
};
/* The vCPU state ioctls a call path must not use (each costs ~5 us on kvm_pvm). */
static const unsigned long reg_ioctls[] = {
    KVM_GET_REGS,  KVM_SET_REGS,  KVM_GET_SREGS,     KVM_SET_SREGS,     KVM_GET_FPU,         KVM_SET_FPU,
    KVM_GET_MSRS,  KVM_SET_MSRS,  KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, KVM_GET_XSAVE,       KVM_SET_XSAVE,
    KVM_GET_XCRS,  KVM_SET_XCRS,  KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS,
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

typedef struct counters {
    int fd[NCTR];
    int slot[NCTR]; /* position in the group read, -1 if the event could not be opened */
    int nopen;
    bool ok;
} counters;

typedef struct counts {
    double c[NCTR]; /* per operation; negative: not available */
} counts;

static int tp_open(const char *event, const char *filter, int group)
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
    fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, group, PERF_FLAG_FD_CLOEXEC);
    if (fd >= 0 && filter[0] && ioctl(fd, PERF_EVENT_IOC_SET_FILTER, filter) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void ctr_open(counters *c)
{
    int leader = -1;
    memset(c, 0, sizeof *c);
    for (int i = 0; i < NCTR; i++) {
        char filter[1024];
        ctr_filter(i, filter, sizeof filter);
        c->fd[i] = tp_open(ctr_event[i], filter, leader);
        c->slot[i] = -1;
        if (c->fd[i] < 0) continue;
        if (leader < 0) leader = c->fd[i];
        c->slot[i] = c->nopen++;
    }
    c->ok = leader >= 0;
    if (c->ok) ioctl(leader, PERF_EVENT_IOC_ENABLE, PERF_IOC_FLAG_GROUP);
}

static void ctr_close(counters *c)
{
    for (int i = NCTR - 1; i >= 0; i--)
        if (c->fd[i] >= 0) close(c->fd[i]);
}

/* Raw totals, one group read (one syscall). */
static void ctr_read(const counters *c, uint64_t out[NCTR])
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

static counts ctr_per_op(const counters *c, const uint64_t a[NCTR], const uint64_t b[NCTR], uint64_t ops)
{
    counts r;
    for (int i = 0; i < NCTR; i++)
        r.c[i] = c->ok && c->slot[i] >= 0 ? (double)(b[i] - a[i]) / (double)ops : -1;
    /* The second counter read (a syscall) counted itself. */
    if (r.c[C_SYSCALL] >= 1.0 / (double)ops) r.c[C_SYSCALL] -= 1.0 / (double)ops;
    return r;
}

/* ---- the floor: a minimal VM in the same CPU mode, exiting with `out` in a loop ---- */
typedef struct floor_vm {
    hl_vm vm;
    uint8_t *mem;
    size_t len;
    char err[HL_ERR_LEN];
} floor_vm;

#define FLOOR_PORT 0x10

static void floor_create(floor_vm *f)
{
    const hl_gpa code = HL_IMAGE_BASE, data = HL_IMAGE_BASE + HL_PAGE; /* data: VIF page */
    const bool pvm = hl_kvm_is_pvm();
    hl_layout lo;
    hl_vm_setup s;
    size_t loop_off;
    uint8_t *p;

    memset(f, 0, sizeof *f);
    memset(&lo, 0, sizeof lo);
    lo.regions[lo.nregions++] = (hl_region){ .kind = HL_RGN_CODE, .gpa = code, .size = HL_PAGE,
                                             .perm = HL_PERM_R | HL_PERM_X };
    lo.regions[lo.nregions++] = (hl_region){ .kind = HL_RGN_DATA, .gpa = data, .size = HL_PAGE,
                                             .perm = HL_PERM_R | HL_PERM_W };
    lo.ro_end = data;
    lo.total = data + HL_PAGE;
    lo.entry = code;
    f->len = lo.total;
    f->mem = mmap(NULL, f->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (f->mem == MAP_FAILED) die("floor VM: mmap: %s", strerror(errno));
    if (hl_pt_build(&lo, f->mem, f->len, f->err) != HL_OK) die("floor VM: %s", f->err);
    /* Same entry protocol as src/guest/entry.S: register the VIF page first (kvm_pvm), then
     *     loop: out %eax, $FLOOR_PORT; jmp loop */
    p = f->mem + code;
    *p++ = 0xb9; /* mov $HL_MSR_PVM_VIF, %ecx */
    memcpy(p, &(uint32_t){ HL_MSR_PVM_VIF }, 4), p += 4;
    *p++ = 0xb8; /* mov $(data | 1), %eax */
    memcpy(p, &(uint32_t){ (uint32_t)(data | 1) }, 4), p += 4;
    *p++ = 0x31, *p++ = 0xd2; /* xor %edx, %edx */
    *p++ = 0x0f, *p++ = 0x30; /* wrmsr */
    loop_off = (size_t)(p - (f->mem + code));
    *p++ = 0xe7, *p++ = FLOOR_PORT; /* out %eax, $FLOOR_PORT */
    *p++ = 0xeb, *p++ = 0xfc;       /* jmp -4 (to the out) */
    s = (hl_vm_setup){ .slot0 = f->mem, .slot0_size = lo.ro_end, .slot1 = f->mem + lo.ro_end,
                       .slot1_size = lo.total - lo.ro_end, .cr3 = HL_PT_GPA,
                       .rip = pvm ? code : code + loop_off, .rsp = lo.total, .rdi = 0 };
    if (hl_vm_create(&f->vm, &s, f->err) != HL_OK) die("floor VM: %s", f->err);
}

static inline void floor_exit(floor_vm *f)
{
    hl_exit ex;
    if (hl_vm_run(&f->vm, &ex, f->err) != HL_OK) die("floor VM: %s", f->err);
    if (ex.kind != HL_EXIT_OUT || ex.port != FLOOR_PORT)
        die("floor VM: unexpected exit (kind %d, KVM reason %u, port 0x%x)", ex.kind, ex.reason, ex.port);
}

static void floor_destroy(floor_vm *f)
{
    hl_vm_destroy(&f->vm);
    munmap(f->mem, f->len);
}

/* ---- the host function Nop: timestamps each call so one round trip is one sample ---- */
static struct {
    uint64_t t[HOSTCALLS + 1];
    int n;
    bool on;
} nop_log;

static int host_nop(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    if (nop_log.on && nop_log.n < (int)(sizeof nop_log.t / sizeof nop_log.t[0])) nop_log.t[nop_log.n++] = now_ns();
    *ret = hl_i32(1);
    return 0;
}

/* ---- the rows ---- */
enum {
    R_FLOOR, R_EMPTY, R_ECHO, R_HOSTCALL, R_CALL_RESTORE, /* per call: ratio to the floor */
    R_GUEST_COMPUTE, R_NATIVE_COMPUTE, R_CREATE, R_SNAP_CREATE, NROWS
};

typedef struct row {
    const char *name;  /* JSON name */
    const char *label; /* table label */
    samples s;
    stats st;
    double ratio;       /* to the floor (or guest/native for compute); 0: none */
    const char *ratio_of;
    double exits_per_op; /* hl_sandbox_exit_count; negative: not applicable */
    counts ctr;
    bool have_ctr;
} row;

static row rows[NROWS] = {
    [R_FLOOR] = { .name = "floor_exit_round_trip", .label = "floor: bare VM exit round trip" },
    [R_EMPTY] = { .name = "empty_call", .label = "empty call: Empty() -> i32" },
    [R_ECHO] = { .name = "echo_hello", .label = "Echo(\"hello\") -> string" },
    [R_HOSTCALL] = { .name = "host_call_round_trip", .label = "host call round trip (Nop)" },
    [R_GUEST_COMPUTE] = { .name = "guest_compute", .label = "compute loop, guest" },
    [R_NATIVE_COMPUTE] = { .name = "native_compute", .label = "compute loop, native" },
    [R_CALL_RESTORE] = { .name = "empty_call_restore", .label = "empty call + hl_restore" },
    [R_CREATE] = { .name = "sandbox_create_free", .label = "sandbox create + free" },
    [R_SNAP_CREATE] = { .name = "sandbox_from_snapshot_free", .label = "sandbox from snapshot + free" },
};

typedef struct bench {
    const char *guest;
    hl_config *cfg;
    hl_sandbox *sb;
    floor_vm fl;
    uint64_t *tab;           /* native compute table */
    uint64_t compute_check;  /* checksum both sides must return */
    samples hostcall_total;  /* HostRoundTrip(HOSTCALLS) call times, for the amortised figure */
    samples free_only;       /* the hl_sandbox_free part of the create row */
    hl_sandbox *sbr;         /* sandbox restored to snap after each call */
    hl_snapshot *snap;       /* sbr's state right after creation */
    samples restore_only;    /* the hl_restore part of the call + restore row */
} bench;

static void call_or_die(bench *b, const char *name, hl_type rt, const hl_value *args, int nargs, hl_value *ret)
{
    hl_status st = hl_call(b->sb, name, rt, args, nargs, ret);
    if (st != HL_OK) die("%s: %s: %s", name, hl_status_name(st), hl_last_error(b->sb));
}

static void op_empty(bench *b)
{
    hl_value ret;
    call_or_die(b, "Empty", HL_I32, NULL, 0, &ret);
}

static void op_echo(bench *b)
{
    static const hl_value arg = { .type = HL_STRING, .v.buf = { "hello", 5 } };
    hl_value ret;
    call_or_die(b, "Echo", HL_STRING, &arg, 1, &ret);
    if (ret.v.buf.len != 5 || memcmp(ret.v.buf.ptr, "hello", 5) != 0) die("Echo returned a wrong string");
}

static void op_hostcalls(bench *b, uint32_t n)
{
    hl_value arg = hl_u32(n), ret;
    call_or_die(b, "HostRoundTrip", HL_U32, &arg, 1, &ret);
    if (ret.v.u32 != n) die("HostRoundTrip(%u) returned %u", n, ret.v.u32);
}

static uint64_t op_guest_compute(bench *b)
{
    hl_value arg = hl_u32(COMPUTE_N), ret;
    call_or_die(b, "Compute", HL_U64, &arg, 1, &ret);
    return ret.v.u64;
}

static uint64_t op_native_compute(bench *b) { return bench_compute(b->tab, COMPUTE_N); }

/* An empty call on sbr, then hl_restore of sbr to snap; *t_restore gets the restore's time. */
static void op_call_restore(bench *b, uint64_t *t_restore)
{
    hl_value ret;
    hl_status st = hl_call(b->sbr, "Empty", HL_I32, NULL, 0, &ret);
    uint64_t t0;
    if (st != HL_OK) die("Empty (restored sandbox): %s: %s", hl_status_name(st), hl_last_error(b->sbr));
    t0 = now_ns();
    if ((st = hl_restore(b->sbr, b->snap)) != HL_OK)
        die("hl_restore: %s: %s", hl_status_name(st), hl_last_error(b->sbr));
    *t_restore = now_ns() - t0;
}

static void op_snap_create(bench *b)
{
    hl_sandbox *sb = NULL;
    if (hl_sandbox_new_from_snapshot(&sb, b->snap, b->cfg) != HL_OK)
        die("cannot create a sandbox from a snapshot: %s", hl_last_error(NULL));
    hl_sandbox_free(sb);
}

/* Creates and frees a sandbox; *t_free gets the time hl_sandbox_free took. */
static void op_create(bench *b, uint64_t *t_free)
{
    hl_sandbox *sb = NULL;
    uint64_t t0;
    if (hl_sandbox_new_from_file(&sb, b->guest, b->cfg) != HL_OK)
        die("cannot create a sandbox from %s: %s", b->guest, hl_last_error(NULL));
    t0 = now_ns();
    hl_sandbox_free(sb);
    *t_free = now_ns() - t0;
}

/* One batch of row r: adds its samples. */
static void run_batch(bench *b, int r)
{
    uint64_t t0, t1;
    switch (r) {
    case R_FLOOR:
        for (int i = 0; i < BATCH; i++) {
            t0 = now_ns();
            floor_exit(&b->fl);
            add_sample(&rows[r].s, now_ns() - t0);
        }
        break;
    case R_EMPTY:
        for (int i = 0; i < BATCH; i++) {
            t0 = now_ns();
            op_empty(b);
            add_sample(&rows[r].s, now_ns() - t0);
        }
        break;
    case R_ECHO:
        for (int i = 0; i < BATCH; i++) {
            t0 = now_ns();
            op_echo(b);
            add_sample(&rows[r].s, now_ns() - t0);
        }
        break;
    case R_HOSTCALL:
        for (int i = 0; i < HOSTCALL_BATCH; i++) {
            nop_log.n = 0;
            nop_log.on = true;
            t0 = now_ns();
            op_hostcalls(b, HOSTCALLS);
            t1 = now_ns();
            nop_log.on = false;
            add_sample(&b->hostcall_total, t1 - t0);
            /* Between two consecutive Nop calls: return to the guest, the guest's loop
             * iteration, its next exit, the host's dispatch = one round trip. */
            for (int k = 1; k < nop_log.n; k++) add_sample(&rows[r].s, nop_log.t[k] - nop_log.t[k - 1]);
        }
        break;
    case R_CALL_RESTORE:
        for (int i = 0; i < BATCH; i++) {
            uint64_t tr;
            t0 = now_ns();
            op_call_restore(b, &tr);
            add_sample(&rows[r].s, now_ns() - t0);
            add_sample(&b->restore_only, tr);
        }
        break;
    case R_SNAP_CREATE:
        for (int i = 0; i < CREATE_BATCH; i++) {
            t0 = now_ns();
            op_snap_create(b);
            add_sample(&rows[r].s, now_ns() - t0);
        }
        break;
    case R_GUEST_COMPUTE:
        t0 = now_ns();
        if (op_guest_compute(b) != b->compute_check) die("guest Compute returned a wrong checksum");
        add_sample(&rows[r].s, now_ns() - t0);
        break;
    case R_NATIVE_COMPUTE:
        t0 = now_ns();
        if (op_native_compute(b) != b->compute_check) die("native compute returned a wrong checksum");
        add_sample(&rows[r].s, now_ns() - t0);
        break;
    case R_CREATE:
        for (int i = 0; i < CREATE_BATCH; i++) {
            uint64_t tf;
            t0 = now_ns();
            op_create(b, &tf);
            add_sample(&rows[r].s, now_ns() - t0);
            add_sample(&b->free_only, tf);
        }
        break;
    }
}

/* ---- the counting pass: tracepoints and library exits per operation ---- */
static void count_row(bench *b, counters *c, int r)
{
    uint64_t a[NCTR], z[NCTR], e0, ops;
    e0 = hl_sandbox_exit_count(b->sb);
    rows[r].exits_per_op = -1;
    switch (r) {
    case R_FLOOR:
        ops = COUNT_OPS;
        ctr_read(c, a);
        for (uint64_t i = 0; i < ops; i++) floor_exit(&b->fl);
        ctr_read(c, z);
        rows[r].exits_per_op = 1; /* by construction: one KVM_RUN, one OUT */
        break;
    case R_EMPTY:
        ops = COUNT_OPS;
        ctr_read(c, a);
        for (uint64_t i = 0; i < ops; i++) op_empty(b);
        ctr_read(c, z);
        break;
    case R_ECHO:
        ops = COUNT_OPS;
        ctr_read(c, a);
        for (uint64_t i = 0; i < ops; i++) op_echo(b);
        ctr_read(c, z);
        break;
    case R_HOSTCALL: {
        /* HostRoundTrip(COUNT_OPS) minus HostRoundTrip(0): what COUNT_OPS host calls add. */
        uint64_t a0[NCTR], z0[NCTR], e1, e2;
        ops = COUNT_OPS;
        ctr_read(c, a0);
        op_hostcalls(b, 0);
        ctr_read(c, z0);
        e1 = hl_sandbox_exit_count(b->sb);
        ctr_read(c, a);
        op_hostcalls(b, COUNT_OPS);
        ctr_read(c, z);
        e2 = hl_sandbox_exit_count(b->sb);
        for (int i = 0; i < NCTR; i++) a[i] += z0[i] - a0[i];
        a[C_SYSCALL]--; /* both deltas counted one counter read: they cancelled already */
        rows[r].exits_per_op = (double)((e2 - e1) - (e1 - e0)) / (double)ops;
        rows[r].ctr = ctr_per_op(c, a, z, ops);
        rows[r].have_ctr = c->ok;
        return;
    }
    case R_GUEST_COMPUTE:
        ops = 3;
        ctr_read(c, a);
        for (uint64_t i = 0; i < ops; i++) op_guest_compute(b);
        ctr_read(c, z);
        break;
    case R_NATIVE_COMPUTE:
        ops = 3;
        ctr_read(c, a);
        for (uint64_t i = 0; i < ops; i++) op_native_compute(b);
        ctr_read(c, z);
        break;
    case R_CALL_RESTORE: {
        uint64_t tr, r0 = hl_sandbox_exit_count(b->sbr);
        ops = COUNT_OPS;
        ctr_read(c, a);
        for (uint64_t i = 0; i < ops; i++) op_call_restore(b, &tr);
        ctr_read(c, z);
        rows[r].exits_per_op = (double)(hl_sandbox_exit_count(b->sbr) - r0) / (double)ops;
        rows[r].ctr = ctr_per_op(c, a, z, ops);
        rows[r].have_ctr = c->ok;
        return;
    }
    case R_SNAP_CREATE:
        ops = 5;
        ctr_read(c, a);
        for (uint64_t i = 0; i < ops; i++) op_snap_create(b);
        ctr_read(c, z);
        break;
    case R_CREATE: { /* also checks that the register-ioctl counter counts: creation uses them */
        uint64_t tf;
        ops = 5;
        ctr_read(c, a);
        for (uint64_t i = 0; i < ops; i++) op_create(b, &tf);
        ctr_read(c, z);
        break;
    }
    default:
        return;
    }
    if (r != R_FLOOR && r != R_NATIVE_COMPUTE && r != R_CREATE && r != R_SNAP_CREATE)
        rows[r].exits_per_op = (double)(hl_sandbox_exit_count(b->sb) - e0) / (double)ops;
    if (r == R_NATIVE_COMPUTE) rows[r].exits_per_op = 0;
    rows[r].ctr = ctr_per_op(c, a, z, ops);
    rows[r].have_ctr = c->ok;
}

/* ---- machine description ---- */
static void machine_desc(char *buf, size_t len)
{
    char model[256] = "unknown CPU", line[512];
    struct utsname u;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *p = strchr(line, ':');
                if (p) {
                    p += 1 + (p[1] == ' ');
                    p[strcspn(p, "\n")] = 0;
                    snprintf(model, sizeof model, "%s", p);
                }
                break;
            }
        fclose(f);
    }
    if (uname(&u) != 0) memset(&u, 0, sizeof u);
    snprintf(buf, len, "%s, %ld CPUs, Linux %s (%s)", model, sysconf(_SC_NPROCESSORS_ONLN), u.release,
             u.nodename);
}

/* `git describe` of the working directory's repository, if there is one: the library's
 * version being measured ("-dirty": with uncommitted changes). */
static void source_desc(char *buf, size_t len)
{
    FILE *p = popen("git describe --always --dirty 2>/dev/null", "r");
    snprintf(buf, len, "unknown");
    if (!p) return;
    if (fgets(buf, (int)len, p)) buf[strcspn(buf, "\n")] = 0;
    else snprintf(buf, len, "unknown");
    pclose(p);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double x)
{
    if (x < 0) fputs("null", f);
    else fprintf(f, "%.4g", x);
}

typedef struct target {
    const char *name, *desc;
    double value, limit;
    bool at_most; /* value must be <= limit (else >=) */
    bool known, pass;
} target;

static void write_json(const char *path, const char *when, const char *machine, const char *source, bool pvm,
                       const target *t, int nt, double amortised, uint64_t free_med, const stats *restore,
                       const bench *b)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "hyperlight-bench: cannot write %s: %s\n", path, strerror(errno));
        return;
    }
    fprintf(f, "{\n  \"date\": ");
    json_str(f, when);
    fprintf(f, ",\n  \"machine\": ");
    json_str(f, machine);
    fprintf(f, ",\n  \"kvm\": \"%s\",\n  \"source\": ", pvm ? "kvm_pvm" : "kvm");
    json_str(f, source);
    fprintf(f, ",\n  \"guest\": ");
    json_str(f, b->guest);
    fprintf(f, ",\n  \"compute_iterations\": %u,\n  \"host_calls_per_call\": %d,\n  \"rows\": [\n",
            COMPUTE_N, HOSTCALLS);
    for (int r = 0; r < NROWS; r++) {
        const row *w = &rows[r];
        fprintf(f, "    {\"name\": \"%s\", \"iterations\": %zu, \"median_ns\": %" PRIu64 ", \"p99_ns\": %" PRIu64
                   ", \"min_ns\": %" PRIu64 ", \"mean_ns\": %.0f",
                w->name, w->s.n, w->st.median, w->st.p99, w->st.min, w->st.mean);
        if (w->ratio > 0) {
            fprintf(f, ", \"ratio\": %.3f, \"ratio_of\": ", w->ratio);
            json_str(f, w->ratio_of);
        }
        if (r == R_HOSTCALL) fprintf(f, ", \"amortised_ns\": %.0f", amortised);
        if (r == R_CREATE) fprintf(f, ", \"free_median_ns\": %" PRIu64, free_med);
        if (r == R_CALL_RESTORE) fprintf(f, ", \"restore_median_ns\": %" PRIu64 ", \"restore_p99_ns\": %" PRIu64,
                                         restore->median, restore->p99);
        if (r == R_GUEST_COMPUTE && rows[R_GUEST_COMPUTE].st.median)
            fprintf(f, ", \"speed_vs_native\": %.3f",
                    (double)rows[R_NATIVE_COMPUTE].st.median / (double)rows[R_GUEST_COMPUTE].st.median);
        if (w->exits_per_op >= 0) fprintf(f, ", \"exits_per_call\": %.3f", w->exits_per_op);
        if (w->have_ctr) {
            fprintf(f, ", \"per_call\": {");
            for (int i = 0; i < NCTR; i++) {
                fprintf(f, "%s\"%s\": ", i ? ", " : "", ctr_name[i]);
                json_num(f, w->ctr.c[i]);
            }
            fputc('}', f);
        }
        fprintf(f, "}%s\n", r + 1 < NROWS ? "," : "");
    }
    fprintf(f, "  ],\n  \"targets\": {\n");
    for (int i = 0; i < nt; i++) {
        fprintf(f, "    \"%s\": {\"description\": ", t[i].name);
        json_str(f, t[i].desc);
        fprintf(f, ", \"value\": ");
        if (t[i].known) fprintf(f, "%.3f", t[i].value);
        else fputs("null", f);
        fprintf(f, ", \"limit\": %.3f, \"pass\": %s}%s\n", t[i].limit,
                !t[i].known ? "null" : t[i].pass ? "true" : "false", i + 1 < nt ? "," : "");
    }
    fprintf(f, "  }\n}\n");
    if (fclose(f) != 0) fprintf(stderr, "hyperlight-bench: writing %s failed: %s\n", path, strerror(errno));
}

/* Directory next to the executable: <exe dir>/<rel>, if it exists. */
static bool exe_relative(char *out, size_t len, const char *rel)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    struct stat st;
    if (n <= 0) return false;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return false;
    *slash = 0;
    if ((size_t)snprintf(out, len, "%s/%s", exe, rel) >= len) return false;
    return stat(out, &st) == 0;
}

static void fmt_ns(char *buf, size_t len, double ns)
{
    if (ns >= 1e7) snprintf(buf, len, "%.2f ms", ns / 1e6);
    else if (ns >= 1e4) snprintf(buf, len, "%.1f us", ns / 1e3);
    else snprintf(buf, len, "%.0f ns", ns);
}

static void fmt_ctr(char *buf, size_t len, const row *w, int i)
{
    if (!w->have_ctr || w->ctr.c[i] < 0) snprintf(buf, len, "-");
    else snprintf(buf, len, "%.2f", w->ctr.c[i]);
}

int main(int argc, char **argv)
{
    static char guest_buf[PATH_MAX], out_buf[PATH_MAX];
    const char *out_dir = NULL;
    int rounds = DEFAULT_ROUNDS;
    bool json = true;
    bench b;
    hl_type none[1] = { HL_VOID };
    hl_value ret;
    uint64_t t_start = now_ns();

    memset(&b, 0, sizeof b);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--guest") == 0 && i + 1 < argc) b.guest = argv[++i];
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) out_dir = argv[++i];
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-json") == 0) json = false;
        else {
            fprintf(stderr, "usage: %s [--guest PATH] [--out DIR] [--rounds N] [--no-json]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1) die("--rounds must be at least 1");
    if (!b.guest) {
        /* build/bin/hyperlight-bench -> build/tests/guests/bench_guest.elf */
        b.guest = exe_relative(guest_buf, sizeof guest_buf, "../tests/guests/bench_guest.elf")
                      ? guest_buf
                      : "build/tests/guests/bench_guest.elf";
    }
    if (!out_dir) {
        struct stat st;
        if (stat("bench", &st) == 0 && S_ISDIR(st.st_mode)) out_dir = "bench/results";
        else if (exe_relative(out_buf, sizeof out_buf, "../../bench")) {
            strncat(out_buf, "/results", sizeof out_buf - strlen(out_buf) - 1);
            out_dir = out_buf;
        } else out_dir = "bench/results";
    }

    /* ---- setup ---- */
    const bool pvm = hl_kvm_is_pvm();
    if (!(b.cfg = hl_config_new())) die("out of memory");
    if (hl_config_register_host_fn(b.cfg, "Nop", HL_I32, none, 0, host_nop, NULL) != HL_OK)
        die("registering Nop: %s", hl_config_error(b.cfg));
    if (hl_sandbox_new_from_file(&b.sb, b.guest, b.cfg) != HL_OK)
        die("cannot create a sandbox from %s: %s", b.guest, hl_last_error(NULL));
    if (hl_sandbox_new_from_file(&b.sbr, b.guest, b.cfg) != HL_OK)
        die("cannot create a sandbox from %s: %s", b.guest, hl_last_error(NULL));
    if (hl_snapshot_take(b.sbr, &b.snap) != HL_OK) die("hl_snapshot_take: %s", hl_last_error(b.sbr));
    floor_create(&b.fl);
    if (!(b.tab = malloc(BENCH_TABLE_WORDS * sizeof *b.tab))) die("out of memory");
    b.compute_check = bench_compute(b.tab, COMPUTE_N);

    /* ---- warm-up: first exits (the VIF wrmsr), page faults in guest and host memory ---- */
    for (int i = 0; i < 200; i++) floor_exit(&b.fl);
    for (int i = 0; i < 200; i++) op_empty(&b), op_echo(&b);
    op_hostcalls(&b, 200);
    for (int i = 0; i < 2; i++) {
        if (op_guest_compute(&b) != b.compute_check) die("guest Compute returned a wrong checksum");
        op_native_compute(&b);
        uint64_t tf;
        op_create(&b, &tf);
        op_snap_create(&b);
    }
    for (int i = 0; i < 200; i++) {
        uint64_t tr;
        op_call_restore(&b, &tr);
    }
    call_or_die(&b, "Empty", HL_I32, NULL, 0, &ret);

    /* ---- timed rounds: every row each round, starting with a different one ---- */
    for (int k = 0; k < rounds; k++)
        for (int j = 0; j < NROWS; j++) run_batch(&b, (k + j) % NROWS);

    /* ---- counting pass ---- */
    counters c;
    ctr_open(&c);
    for (int r = 0; r < NROWS; r++) count_row(&b, &c, r);
    ctr_close(&c);

    /* ---- statistics ---- */
    for (int r = 0; r < NROWS; r++) rows[r].st = compute_stats(&rows[r].s);
    stats hct = compute_stats(&b.hostcall_total);
    stats fst = compute_stats(&b.free_only);
    stats rst = compute_stats(&b.restore_only);
    const double floor_med = (double)rows[R_FLOOR].st.median;
    for (int r = R_FLOOR; r <= R_CALL_RESTORE; r++) {
        rows[r].ratio = (double)rows[r].st.median / floor_med;
        rows[r].ratio_of = "median / floor median";
    }
    rows[R_GUEST_COMPUTE].ratio = (double)rows[R_GUEST_COMPUTE].st.median / (double)rows[R_NATIVE_COMPUTE].st.median;
    rows[R_GUEST_COMPUTE].ratio_of = "guest median / native median";
    rows[R_NATIVE_COMPUTE].ratio = 1;
    rows[R_NATIVE_COMPUTE].ratio_of = "guest median / native median";
    /* (HostRoundTrip(n) - empty call) / n */
    const double amortised = ((double)hct.median - (double)rows[R_EMPTY].st.median) / HOSTCALLS;

    /* ---- targets ---- */
    const row *e = &rows[R_EMPTY];
    double regio = -1;
    for (int r = R_EMPTY; r <= R_HOSTCALL; r++)
        if (rows[r].have_ctr && rows[r].ctr.c[C_REGIO] >= 0 && rows[r].ctr.c[C_REGIO] > regio)
            regio = rows[r].ctr.c[C_REGIO];
    const double speed = (double)rows[R_NATIVE_COMPUTE].st.median / (double)rows[R_GUEST_COMPUTE].st.median;
    target t[] = {
        { "empty_call_vs_floor", "empty call median <= 1.3 x floor median", rows[R_EMPTY].ratio,
          TARGET_EMPTY_VS_FLOOR, true, true, false },
        { "guest_compute_speed", "guest compute speed (native time / guest time) >= 0.9", speed,
          TARGET_COMPUTE_SPEED, false, true, false },
        { "exits_per_empty_call", "one VM exit per call (kvm:kvm_userspace_exit per empty call)",
          e->have_ctr && e->ctr.c[C_UEXIT] >= 0 ? e->ctr.c[C_UEXIT] : e->exits_per_op, 1.0, true, true,
          false },
        { "register_ioctls_per_call",
          "no vCPU register ioctl on the call path (KVM_GET/SET_REGS, SREGS, FPU, MSRS, ... per call "
          "or host call: the most of the empty call, Echo and host call rows)",
          regio, 0.0, true, regio >= 0, false },
    };
    const int nt = (int)(sizeof t / sizeof t[0]);
    /* Exits and ioctls are whole numbers per call: allow a rounding margin only. */
    for (int i = 0; i < nt; i++)
        if (t[i].known)
            t[i].pass = t[i].at_most ? t[i].value <= t[i].limit + (i >= 2 ? 0.005 : 0) : t[i].value >= t[i].limit;

    /* ---- print ---- */
    char machine[512], when[64], fname[96], source[128];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    strftime(fname, sizeof fname, "%Y%m%dT%H%M%SZ.json", &tm);
    machine_desc(machine, sizeof machine);
    source_desc(source, sizeof source);
    printf("hyperlight-bench  %s (source %s)\nmachine: %s\nhypervisor: %s (%s)\nguest: %s\n", when, source, machine,
           pvm ? "kvm_pvm" : "kvm", pvm ? "guest in native supervisor mode" : "hardware KVM", b.guest);
    printf("rounds: %d, interleaved; compute loop: %u iterations; host calls per HostRoundTrip: %d\n\n", rounds,
           COMPUTE_N, HOSTCALLS);
    printf("%-32s %7s %10s %10s %7s | %5s %5s %5s %5s %5s %5s %5s %5s\n", "", "", "", "", "", "exits", "kvm", "kvm",
           "kvm", "", "", "reg", "");
    printf("%-32s %7s %10s %10s %7s | %5s %5s %5s %5s %5s %5s %5s %5s\n", "row", "iters", "median", "p99", "ratio",
           "(lib)", "uexit", "emul", "spte", "ioctl", "RUN", "ioctl", "sysc");
    for (int r = 0; r < NROWS; r++) {
        const row *w = &rows[r];
        char med[32], p99[32], ratio[32], ex[16], cc[7][16];
        static const int col[7] = { C_UEXIT, C_EMUL, C_SPTE, C_IOCTL, C_RUN, C_REGIO, C_SYSCALL };
        fmt_ns(med, sizeof med, (double)w->st.median);
        fmt_ns(p99, sizeof p99, (double)w->st.p99);
        if (w->ratio > 0) snprintf(ratio, sizeof ratio, "%.2fx", w->ratio);
        else snprintf(ratio, sizeof ratio, "-");
        if (w->exits_per_op >= 0) snprintf(ex, sizeof ex, "%.2f", w->exits_per_op);
        else snprintf(ex, sizeof ex, "-");
        for (int i = 0; i < 7; i++) fmt_ctr(cc[i], sizeof cc[i], w, col[i]);
        printf("%-32s %7zu %10s %10s %7s | %5s %5s %5s %5s %5s %5s %5s %5s\n", w->label, w->s.n, med, p99, ratio, ex,
               cc[0], cc[1], cc[2], cc[3], cc[4], cc[5], cc[6]);
    }
    printf("\nratio: median / floor median (compute: guest / native). Counts per call (host call: per host call),\n"
           "from a separate counting pass: exits (lib) = hl_sandbox_exit_count; kvm_*: kvm tracepoints\n"
           "(emul 1.00 = only the exiting OUT is emulated: the guest runs natively; spte = kvm_mmu_spte_requested:\n"
           "guest page mappings KVM installed, i.e. guest page faults); ioctl, RUN (KVM_RUN),\n"
           "reg ioctl (vCPU register ioctls) and sysc (all syscalls): this thread's. kvm:kvm_exit per empty call: ");
    if (rows[R_EMPTY].have_ctr && rows[R_EMPTY].ctr.c[C_EXIT] >= 0)
        printf("%.2f%s\n", rows[R_EMPTY].ctr.c[C_EXIT],
               pvm && rows[R_EMPTY].ctr.c[C_EXIT] == 0 ? " (kvm_pvm does not fire this tracepoint)" : "");
    else printf("-\n");
    {
        char a[32], m[32];
        fmt_ns(a, sizeof a, amortised);
        fmt_ns(m, sizeof m, (double)hct.median);
        printf("host call, amortised: (HostRoundTrip(%d) %s - empty call) / %d = %s per host call\n", HOSTCALLS, m,
               HOSTCALLS, a);
    }
    printf("guest compute speed: native / guest = %.3f\n", speed);
    {
        char fm[32];
        fmt_ns(fm, sizeof fm, (double)fst.median);
        printf("sandbox create + free: hl_sandbox_free alone %s (median)\n", fm);
        fmt_ns(fm, sizeof fm, (double)rst.median);
        printf("empty call + hl_restore: hl_restore alone %s (median)\n", fm);
    }
    if (!c.ok) printf("note: tracepoint counters unavailable (perf_event_open needs root or perf_event_paranoid <= 1)\n");
    printf("\ntargets:\n");
    for (int i = 0; i < nt; i++) {
        if (t[i].known)
            printf("  %-4s %-26s %.3f %s %.3f  (%s)\n", t[i].pass ? "PASS" : "FAIL", t[i].name, t[i].value,
                   t[i].at_most ? "<=" : ">=", t[i].limit, t[i].desc);
        else printf("  %-4s %-26s (%s: not measurable here)\n", "?", t[i].name, t[i].desc);
    }

    /* ---- JSON ---- */
    if (json) {
        char path[PATH_MAX + 128];
        if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
            fprintf(stderr, "hyperlight-bench: cannot create %s: %s\n", out_dir, strerror(errno));
        snprintf(path, sizeof path, "%s/%s", out_dir, fname);
        write_json(path, when, machine, source, pvm, t, nt, amortised, fst.median, &rst, &b);
        printf("\nwrote %s", path);
        snprintf(path, sizeof path, "%s/latest.json", out_dir);
        write_json(path, when, machine, source, pvm, t, nt, amortised, fst.median, &rst, &b);
        printf(" and %s\n", path);
    }
    printf("total time: %.1f s\n", (double)(now_ns() - t_start) / 1e9);

    floor_destroy(&b.fl);
    hl_sandbox_free(b.sb);
    hl_sandbox_free(b.sbr);
    hl_snapshot_free(b.snap);
    hl_config_free(b.cfg);
    free(b.tab);
    for (int r = 0; r < NROWS; r++) free(rows[r].s.v);
    free(b.hostcall_total.v);
    free(b.free_only.v);
    free(b.restore_only.v);
    return 0;
}

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
 * Snapshots (each against a floor measured here, on minimal VMs of the same shape):
 *   Dirty(n) + hl_restore for n = 0, 1, 16, 256 pages, against exit + KVM_GET_DIRTY_LOG +
 *                copy of the pages (pages left writable, and re-protected each time)
 *   hl_snapshot_take after Dirty(16)
 *   new sandbox from a snapshot + first call: unpooled (floor: a fresh KVM VM, creation to
 *                first exit), pooled (floor: exit + dirty log), and a pooled one no caller used
 *                before (made and warmed by the pool's filler)
 *   hl_snapshot_load + new sandbox + first call
 *   fork+exec, posix_spawn and bwrap of a static binary, for comparison
 *   interrupt latency: hl_sandbox_interrupt to hl_call returning, guest spinning or in a host
 *                function
 *   resident memory per extra idle sandbox
 * Seccomp confinement (hl_config_set_confinement): the empty call and the host call round trip
 * on a confined sandbox of the same guest (its calls run on a worker thread under a seccomp
 * allowlist), each against the unconfined row measured in the same rounds
 * All rows are measured in interleaved rounds so the noise of the shared cores hits each of
 * them alike. Afterwards, one counting pass reads the kvm tracepoints (kvm_exit,
 * kvm_userspace_exit, kvm_emulate_insn, ...) and the ioctl syscalls of this thread per call.
 *
 * usage: hyperlight-bench [--guest PATH] [--out DIR] [--rounds N] [--no-json] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/kvm.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
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
/* (the per-round and counting-pass sample counts of the snapshot rows are in rows[]) */
#define NDIRTY 4
static const uint32_t dirty_n[NDIRTY] = { 0, 1, 16, BENCH_DIRTY_MAX_PAGES };
#define POOL_SIZE 2           /* sandboxes each pool keeps ready */
#define MEM_SANDBOXES 50      /* extra idle sandboxes for the memory figure */
#define INTR_TIMEOUT_MS 5000  /* guard: an interrupt that does not land fails the run */
#define SPIN_DELAY_NS 300000u /* from Spin() saying it starts to the interrupt */
#define SLOW_DELAY_NS 50000u  /* from Slow() starting to the interrupt */

/* ---- targets (the issues') ---- */
#define TARGET_EMPTY_VS_FLOOR 1.3
#define TARGET_COMPUTE_SPEED 0.9
#define TARGET_RESTORE_VS_FLOOR 1.3      /* call + restore / its floor */
#define TARGET_POOLED_NEW_CALL_US 50.0   /* pooled new sandbox + first call */
#define TARGET_UNPOOLED_VS_FRESH_VM 1.2  /* unpooled new sandbox + first call / fresh VM */
#define TARGET_RSS_PER_SANDBOX_KIB 128.0 /* per extra idle sandbox */

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

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
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

/* The counters of thread tid (0: the calling thread; else another thread of this process,
 * such as a confined sandbox's worker). */
static void ctr_open(counters *c, pid_t tid)
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

/* A timed part of one sample, and (in the counting pass) the counter deltas over it, summed
 * over the samples of a row: preparation and clean-up around it are neither timed nor
 * counted. */
typedef struct span {
    counters *c;         /* NULL: timing only */
    bool keep;           /* timed rounds: keep the sub-samples (parts of a sample) */
    uint64_t t0;
    uint64_t a[NCTR];
    uint64_t acc[NCTR];
    uint64_t exits;      /* hl_sandbox_exit_count deltas in the timed parts */
    bool has_exits;
} span;

static inline void span_begin(span *s)
{
    if (s->c && s->c->ok) ctr_read(s->c, s->a);
    s->t0 = now_ns();
}

/* Returns the time since span_begin. */
static inline uint64_t span_end(span *s)
{
    uint64_t t = now_ns() - s->t0;
    if (s->c && s->c->ok) {
        uint64_t z[NCTR];
        ctr_read(s->c, z);
        for (int i = 0; i < NCTR; i++) s->acc[i] += z[i] - s->a[i];
        if (s->acc[C_SYSCALL]) s->acc[C_SYSCALL]--; /* the second read counted itself */
    }
    return t;
}

/* ---- the floors: minimal VMs in the same CPU mode, exiting with `out` in a loop ---- */
typedef struct floor_vm {
    hl_vm vm;
    uint8_t *mem;
    size_t len;
    hl_vm_setup setup; /* what hl_vm_create gets (the fresh-VM floor creates VMs from it) */
    char err[HL_ERR_LEN];
} floor_vm;

#define FLOOR_PORT 0x10
#define FLOOR_CODE HL_IMAGE_BASE
#define FLOOR_DATA (HL_IMAGE_BASE + HL_PAGE) /* slot 1: the VIF page, then the arena */
#define FLOOR_ARENA (FLOOR_DATA + HL_PAGE)

/* Builds the memory of a floor VM (page tables, code) and its hl_vm_setup; no VM yet.
 * slot1_size: the writable slot, HL_PAGE for the bare floor (just the virtual-IF page), or a
 * sandbox's slot-1 size for the dirty floors, whose guest writes one byte in each of n pages
 * of the arena (the BENCH_DIRTY_MAX_PAGES pages after the VIF page) before each `out`. */
static void floor_prepare(floor_vm *f, bool arena, uint32_t n, uint64_t slot1_size)
{
    const hl_gpa code = FLOOR_CODE, data = FLOOR_DATA;
    const bool pvm = hl_kvm_is_pvm();
    hl_layout lo;
    size_t loop_off;
    uint8_t *p;

    memset(f, 0, sizeof *f);
    memset(&lo, 0, sizeof lo);
    lo.regions[lo.nregions++] = (hl_region){ .kind = HL_RGN_CODE, .gpa = code, .size = HL_PAGE,
                                             .perm = HL_PERM_R | HL_PERM_X };
    lo.regions[lo.nregions++] = (hl_region){ .kind = HL_RGN_DATA, .gpa = data, .size = slot1_size,
                                             .perm = HL_PERM_R | HL_PERM_W };
    lo.ro_end = data;
    lo.total = data + slot1_size;
    lo.entry = code;
    f->len = lo.total;
    f->mem = mmap(NULL, f->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (f->mem == MAP_FAILED) die("floor VM: mmap: %s", strerror(errno));
    if (hl_pt_build(&lo, f->mem, f->len, f->err) != HL_OK) die("floor VM: %s", f->err);
    /* Same entry protocol as src/guest/entry.S: register the VIF page first (kvm_pvm), then
     * the loop. Bare floor:
     *     loop: out %eax, $FLOOR_PORT; jmp loop
     * Dirty floor (n pages):
     *     loop: mov $n, %ecx; mov $FLOOR_ARENA, %edi; test %ecx, %ecx; jz done
     *     wr:   movb %cl, (%rdi); add $4096, %rdi; dec %ecx; jnz wr
     *     done: out %eax, $FLOOR_PORT; jmp loop */
    p = f->mem + code;
    *p++ = 0xb9; /* mov $HL_MSR_PVM_VIF, %ecx */
    memcpy(p, &(uint32_t){ HL_MSR_PVM_VIF }, 4), p += 4;
    *p++ = 0xb8; /* mov $(data | 1), %eax */
    memcpy(p, &(uint32_t){ (uint32_t)(data | 1) }, 4), p += 4;
    *p++ = 0x31, *p++ = 0xd2; /* xor %edx, %edx */
    *p++ = 0x0f, *p++ = 0x30; /* wrmsr */
    loop_off = (size_t)(p - (f->mem + code));
    if (arena) {
        *p++ = 0xb9; /* mov $n, %ecx */
        memcpy(p, &n, 4), p += 4;
        *p++ = 0xbf; /* mov $FLOOR_ARENA, %edi */
        memcpy(p, &(uint32_t){ (uint32_t)FLOOR_ARENA }, 4), p += 4;
        *p++ = 0x85, *p++ = 0xc9;                                     /* test %ecx, %ecx */
        *p++ = 0x74, *p++ = 13;                                       /* jz done (+13) */
        *p++ = 0x88, *p++ = 0x0f;                                     /* wr: movb %cl, (%rdi) */
        *p++ = 0x48, *p++ = 0x81, *p++ = 0xc7;                        /* add $4096, %rdi */
        memcpy(p, &(uint32_t){ 4096 }, 4), p += 4;
        *p++ = 0xff, *p++ = 0xc9;                                     /* dec %ecx */
        *p++ = 0x75, *p++ = (uint8_t)-13;                             /* jnz wr */
    }
    *p++ = 0xe7, *p++ = FLOOR_PORT; /* done: out %eax, $FLOOR_PORT */
    *p++ = 0xeb;                    /* jmp loop */
    *p = (uint8_t)(int8_t)((ptrdiff_t)loop_off - (ptrdiff_t)(p + 1 - (f->mem + code)));
    f->setup = (hl_vm_setup){ .ro = f->mem + HL_PEB_GPA, .ro_gpa = HL_PEB_GPA, .ro_size = lo.ro_end - HL_PEB_GPA,
                              .pt = f->mem + HL_PT_GPA, .pt_size = lo.pt_end - HL_PT_GPA,
                              .rw = f->mem + lo.ro_end, .rw_gpa = lo.ro_end, .rw_size = lo.total - lo.ro_end,
                              .cr3 = HL_PT_GPA, .rip = pvm ? code : code + loop_off, .rsp = lo.total, .rdi = 0 };
}

static void floor_create(floor_vm *f)
{
    floor_prepare(f, false, 0, HL_PAGE);
    if (hl_vm_create(&f->vm, &f->setup, f->err) != HL_OK) die("floor VM: %s", f->err);
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

/* The fresh-VM floor: KVM_CREATE_VM ... first exit, as hl_vm_create + one hl_vm_run of the
 * bare floor's memory (prepared once; the VM is destroyed outside the timed part). */
static void floor_fresh_vm(floor_vm *f, span *sp, uint64_t *t, samples *run_part)
{
    hl_vm vm;
    hl_exit ex;
    uint64_t t1;
    span_begin(sp);
    if (hl_vm_create(&vm, &f->setup, f->err) != HL_OK) die("fresh floor VM: %s", f->err);
    t1 = now_ns();
    if (hl_vm_run(&vm, &ex, f->err) != HL_OK) die("fresh floor VM: %s", f->err);
    *t = span_end(sp);
    if (sp->keep) add_sample(run_part, sp->t0 + *t - t1);
    if (ex.kind != HL_EXIT_OUT || ex.port != FLOOR_PORT)
        die("fresh floor VM: unexpected exit (kind %d, KVM reason %u, port 0x%x)", ex.kind, ex.reason, ex.port);
    hl_vm_destroy(&vm);
}

/* A dirty floor: the least a call + restore of a guest that writes n pages can cost with this
 * design. One run = registers reloaded through kvm_run's sync_regs (as hl_restore does), one
 * KVM_RUN in which the guest writes its n pages natively and exits, KVM_GET_DIRTY_LOG of a
 * slot as large as a sandbox's slot 1, and memcpy of every page the log reports from a
 * pristine copy. With reprotect, KVM_CLEAR_DIRTY_LOG then write-protects those pages again,
 * so the next run's writes fault; without, they stay writable (KVM's manual dirty-log
 * protection keeps reporting them), as the library does for pages every call writes. */
typedef struct dfloor {
    floor_vm f;
    uint32_t n;
    uint64_t npages1, words;
    uint8_t *pristine;           /* slot 1 before the guest ran: what a restore copies back */
    uint64_t *bm, *scratch, *clear;
    hl_cpu_state cpu;            /* registers at the loop's exit, reloaded before each run */
    uint64_t copied;             /* pages copied by the last run */
} dfloor;

static void dfloor_run(dfloor *d, bool reprotect)
{
    hl_exit ex;
    uint8_t *slot1 = d->f.mem + FLOOR_DATA;
    hl_vm_gprs_sync(&d->f.vm, &d->cpu);
    if (hl_vm_run(&d->f.vm, &ex, d->f.err) != HL_OK) die("dirty floor VM: %s", d->f.err);
    if (ex.kind != HL_EXIT_OUT || ex.port != FLOOR_PORT)
        die("dirty floor VM: unexpected exit (kind %d, KVM reason %u, port 0x%x)", ex.kind, ex.reason, ex.port);
    memset(d->bm, 0, d->words * 8);
    if (hl_vm_dirty_log(&d->f.vm, HL_SLOT_RW, d->bm, d->scratch, d->npages1, d->f.err) != HL_OK)
        die("dirty floor VM: %s", d->f.err);
    d->copied = 0;
    for (uint64_t p = 0; p < d->npages1;) {
        uint64_t w = d->bm[p / 64] >> (p % 64), q;
        if (!w) {
            p = (p / 64 + 1) * 64;
            continue;
        }
        p += (uint64_t)__builtin_ctzll(w);
        if (p >= d->npages1) break;
        for (q = p + 1; q < d->npages1 && (d->bm[q / 64] >> (q % 64) & 1); q++)
            ;
        memcpy(slot1 + p * HL_PAGE, d->pristine + p * HL_PAGE, (q - p) * HL_PAGE);
        d->copied += q - p;
        p = q;
    }
    if (reprotect) {
        memcpy(d->clear, d->scratch, d->words * 8);
        if (hl_vm_dirty_clear(&d->f.vm, HL_SLOT_RW, d->clear, d->npages1, d->f.err) != HL_OK)
            die("dirty floor VM: %s", d->f.err);
    }
}

/* pristine: slot1_size bytes of zeros (as the guest's slot 1 starts), shared by the floors. */
static void dfloor_create(dfloor *d, uint32_t n, uint64_t slot1_size, uint8_t *pristine)
{
    if (slot1_size < (1 + BENCH_DIRTY_MAX_PAGES) * HL_PAGE) die("dirty floor VM: slot 1 too small");
    memset(d, 0, sizeof *d);
    floor_prepare(&d->f, true, n, slot1_size);
    d->n = n;
    d->npages1 = slot1_size / HL_PAGE;
    d->words = (d->npages1 + 63) / 64;
    d->pristine = pristine;
    if (!(d->bm = calloc(d->words, 8)) || !(d->scratch = calloc(d->words, 8)) || !(d->clear = calloc(d->words, 8)))
        die("out of memory");
    if (hl_vm_create(&d->f.vm, &d->f.setup, d->f.err) != HL_OK) die("dirty floor VM: %s", d->f.err);
    floor_exit(&d->f); /* VIF registration, then the loop's first pass */
    if (hl_vm_cpu_get(&d->f.vm, &d->cpu, d->f.err) != HL_OK) die("dirty floor VM: %s", d->f.err);
    dfloor_run(d, true);
}

static void dfloor_destroy(dfloor *d)
{
    free(d->bm), free(d->scratch), free(d->clear);
    floor_destroy(&d->f);
}

/* ---- the host functions: Nop timestamps each call so one round trip is one sample;
 * Spinning and Slow serve the interrupt-latency rows ---- */
static struct {
    uint64_t t[HOSTCALLS + 1];
    int n;
    bool on;
    bool want_tid; /* record the thread Nop runs on (once, at setup: a confined sandbox's worker) */
    pid_t tid;
} nop_log;

static int host_nop(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    if (nop_log.on && nop_log.n < (int)(sizeof nop_log.t / sizeof nop_log.t[0])) nop_log.t[nop_log.n++] = now_ns();
    if (nop_log.want_tid) nop_log.tid = (pid_t)syscall(SYS_gettid); /* gettid: on the confined allowlist */
    *ret = hl_i32(1);
    return 0;
}

static int spinning_flag, slow_flag; /* set by Spinning and Slow when the guest reaches them */

/* Spin() calls it once before it starts spinning: tells the interrupting thread to get ready. */
static int host_spinning(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    __atomic_store_n(&spinning_flag, 1, __ATOMIC_RELEASE);
    *ret = hl_i32(0);
    return 0;
}

/* A host function that works until its call is interrupted, polling hl_host_call_cancelled. */
static int host_slow(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    uint64_t deadline = now_ns() + (uint64_t)INTR_TIMEOUT_MS * 1000000u;
    __atomic_store_n(&slow_flag, 1, __ATOMIC_RELEASE);
    while (!hl_host_call_cancelled(call))
        if (now_ns() > deadline) return hl_host_call_error(call, 1, "Slow: never interrupted");
    *ret = hl_i32(0);
    return 0;
}

/* ---- the rows ---- */
enum {
    R_FLOOR, R_EMPTY, R_ECHO, R_HOSTCALL, R_CALL_RESTORE, /* per call: ratio to the floor */
    R_GUEST_COMPUTE, R_NATIVE_COMPUTE, R_CREATE, R_SNAP_CREATE,
    /* snapshots (each of the next three: one row per dirty_n[i]) */
    R_DFLOOR_W,                        /* floor: exit + dirty log + copy, pages left writable */
    R_DFLOOR_P = R_DFLOOR_W + NDIRTY,  /* the same, pages re-protected after each restore */
    R_DIRTY = R_DFLOOR_P + NDIRTY,     /* hl_call(Dirty n) + hl_restore */
    R_SNAP_TAKE = R_DIRTY + NDIRTY,    /* hl_snapshot_take after Dirty(16) */
    R_FLOOR_VM,                        /* floor: fresh KVM VM, creation to first exit */
    R_NEW_CALL,                        /* hl_sandbox_new_from_snapshot + first call */
    R_POOL_CALL,                       /* hl_pool_get + first call */
    R_POOL_PUT,                        /* hl_pool_put (the scrub) */
    R_POOL_NOBG,                       /* the same as R_POOL_CALL, pool without a filler thread */
    R_POOL_FRESH,                      /* hl_pool_get of a sandbox no caller used + first call */
    R_LOAD_CALL,                       /* hl_snapshot_load + new from snapshot + first call */
    R_FORK_EXEC, R_SPAWN, R_BWRAP,     /* processes, for comparison */
    R_INTR_SPIN, R_INTR_HOSTFN,        /* interrupt latency */
    R_EMPTY_CONF,                      /* empty call on a confined sandbox (seccomp, worker thread) */
    R_HOSTCALL_CONF,                   /* host call round trip on the confined sandbox */
    NROWS
};

typedef struct row {
    const char *name;  /* JSON name */
    const char *label; /* table label */
    const char *tag;   /* short name, shown next to ratios taken to this row */
    samples s;
    stats st;
    double ratio;       /* to the floor (or guest/native for compute); 0: none */
    const char *ratio_of;
    int floor;          /* new rows: the row the ratio is taken to (-1: none) */
    int batch;          /* new rows: samples per round */
    int count_ops;      /* new rows: samples in the counting pass */
    const char *err;    /* not measured, and why */
    double exits_per_op; /* hl_sandbox_exit_count; negative: not applicable */
    counts ctr;
    bool have_ctr;
} row;

static row rows[NROWS] = {
    [R_FLOOR] = { .name = "floor_exit_round_trip", .label = "floor: bare VM exit round trip", .tag = "exit" },
    [R_EMPTY] = { .name = "empty_call", .label = "empty call: Empty() -> i32", .tag = "empty" },
    [R_ECHO] = { .name = "echo_hello", .label = "Echo(\"hello\") -> string" },
    [R_HOSTCALL] = { .name = "host_call_round_trip", .label = "host call round trip (Nop)", .tag = "hcall" },
    [R_GUEST_COMPUTE] = { .name = "guest_compute", .label = "compute loop, guest" },
    [R_NATIVE_COMPUTE] = { .name = "native_compute", .label = "compute loop, native" },
    [R_CALL_RESTORE] = { .name = "empty_call_restore", .label = "empty call + hl_restore" },
    [R_CREATE] = { .name = "sandbox_create_free", .label = "sandbox create + free" },
    [R_SNAP_CREATE] = { .name = "sandbox_from_snapshot_free", .label = "sandbox from snapshot + free" },
    [R_SNAP_TAKE] = { .name = "snapshot_take_16", .label = "hl_snapshot_take after Dirty(16)", .floor = -1,
                      .batch = 20, .count_ops = 20 },
    [R_FLOOR_VM] = { .name = "floor_fresh_vm_first_exit", .label = "floor: fresh VM, create -> 1st exit",
                     .tag = "vm", .floor = -1, .batch = 4, .count_ops = 5 },
    [R_NEW_CALL] = { .name = "new_from_snapshot_first_call", .label = "new from snapshot + 1st call",
                     .tag = "new", .floor = R_FLOOR_VM, .batch = 4, .count_ops = 5 },
    [R_POOL_CALL] = { .name = "pool_get_first_call", .label = "pool: hl_pool_get + 1st call",
                      .floor = R_DFLOOR_W + 0, .batch = 100, .count_ops = 100 },
    [R_POOL_PUT] = { .name = "pool_put_scrub", .label = "pool: hl_pool_put (scrub)", .floor = -1,
                     .batch = 0 /* samples come from R_POOL_CALL */, .count_ops = 100 },
    [R_POOL_NOBG] = { .name = "pool_no_filler_get_first_call", .label = "  same, pool without filler thread",
                      .floor = R_DFLOOR_W + 0, .batch = 100, .count_ops = 100 },
    [R_POOL_FRESH] = { .name = "pool_get_unused_first_call", .label = "pool: get unused (warmed) + 1st call",
                       .floor = R_DFLOOR_W + 0, .batch = 3, .count_ops = 3 },
    [R_LOAD_CALL] = { .name = "snapshot_load_new_first_call", .label = "load file + new + 1st call",
                      .floor = R_FLOOR_VM, .batch = 4, .count_ops = 5 },
    [R_FORK_EXEC] = { .name = "fork_exec_static", .label = "fork+exec static binary, wait",
                      .floor = R_NEW_CALL, .batch = 10, .count_ops = 5 },
    [R_SPAWN] = { .name = "posix_spawn_static", .label = "posix_spawn static binary, wait",
                  .floor = R_NEW_CALL, .batch = 10, .count_ops = 5 },
    [R_BWRAP] = { .name = "bwrap_static", .label = "bwrap --unshare-all static binary", .floor = R_NEW_CALL,
                  .batch = 2, .count_ops = 2 },
    [R_INTR_SPIN] = { .name = "interrupt_spinning_guest", .label = "interrupt -> return, guest spinning",
                      .floor = R_FLOOR, .batch = 10, .count_ops = 10 },
    [R_INTR_HOSTFN] = { .name = "interrupt_in_host_function", .label = "interrupt -> return, in host fn",
                        .floor = R_FLOOR, .batch = 10, .count_ops = 10 },
    /* batches as the unconfined rows (run_batch, count_row): samples per round and in the
     * counting pass are BATCH / COUNT_OPS and HOSTCALL_BATCH x (HOSTCALLS - 1) / COUNT_OPS */
    [R_EMPTY_CONF] = { .name = "empty_call_confined", .label = "empty call, confined sandbox",
                       .floor = R_EMPTY },
    [R_HOSTCALL_CONF] = { .name = "host_call_round_trip_confined", .label = "host call round trip, confined",
                          .floor = R_HOSTCALL },
};

/* Names and labels of the rows per dirty page count. */
static void rows_init(void)
{
    static char buf[3 * NDIRTY][3][64];
    for (int i = 0; i < NDIRTY; i++) {
        const unsigned n = dirty_n[i];
        row *w = &rows[R_DFLOOR_W + i], *p = &rows[R_DFLOOR_P + i], *d = &rows[R_DIRTY + i];
        snprintf(buf[i][0], 64, "floor_dirty_%u_writable", n);
        snprintf(buf[i][1], 64, "floor: exit+dirty log+copy %u pg", n);
        snprintf(buf[i][2], 64, "dlog%u", n);
        *w = (row){ .name = buf[i][0], .label = buf[i][1], .tag = buf[i][2], .floor = R_FLOOR,
                    .batch = n >= 256 ? 100 : 200, .count_ops = 100 };
        snprintf(buf[NDIRTY + i][0], 64, "floor_dirty_%u_reprotected", n);
        snprintf(buf[NDIRTY + i][1], 64, "  same, re-protected each time");
        snprintf(buf[NDIRTY + i][2], 64, "dlog%up", n);
        *p = (row){ .name = buf[NDIRTY + i][0], .label = buf[NDIRTY + i][1], .tag = buf[NDIRTY + i][2],
                    .floor = R_DFLOOR_W + i, .batch = n >= 256 ? 10 : n >= 16 ? 50 : 100,
                    .count_ops = n >= 256 ? 10 : 50 };
        snprintf(buf[2 * NDIRTY + i][0], 64, "dirty_%u_call_restore", n);
        snprintf(buf[2 * NDIRTY + i][1], 64, "Dirty(%u) + hl_restore", n);
        *d = (row){ .name = buf[2 * NDIRTY + i][0], .label = buf[2 * NDIRTY + i][1], .floor = R_DFLOOR_W + i,
                    .batch = n >= 256 ? 100 : 200, .count_ops = 100 };
    }
}

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
    /* snapshot rows */
    dfloor df[NDIRTY];       /* dirty floors (pages left writable), one VM per page count */
    dfloor dfp[NDIRTY];      /* dirty floors (pages re-protected), one VM per page count */
    uint8_t *pristine;       /* zeros, what the dirty floors copy back */
    uint64_t slot1_size;
    hl_sandbox *sbd[NDIRTY]; /* Dirty(n) + restore, one sandbox per page count ... */
    hl_snapshot *snapd[NDIRTY]; /* ... restored to its snapshot taken right after creation */
    samples dirty_restore[NDIRTY]; /* the hl_restore part */
    hl_sandbox *sbt;         /* snapshot take: restored to snapt, then Dirty(16), then taken */
    hl_snapshot *snapt;
    floor_vm fresh;          /* memory of the fresh-VM floor */
    samples fresh_first_run; /* the first KVM_RUN part of the fresh-VM floor */
    samples new_first_call;  /* the hl_call part of new from snapshot + first call */
    hl_pool *pool;           /* get + call + put */
    /* its get + call samples, by where the sandbox came from: returned by the benchmark's
     * hl_pool_put, made (and warmed) by the filler, or created in hl_pool_get (never ran) */
    samples pool_warm, pool_filler, pool_cold;
    samples pool_filler_get; /* the hl_pool_get part of the pool_filler samples */
    struct { hl_sandbox *sb; uint64_t exits; } pool_put_log[16]; /* the last puts to pool */
    unsigned pool_puts;
    hl_pool *pool_fresh;     /* get + call, never put back: every get is one the filler made and warmed */
    hl_pool *pool_nobg;      /* get + call + put, without a filler thread */
    samples load_only;       /* the hl_snapshot_load part of the load row */
    hl_sandbox *sbi;         /* interrupted calls */
    hl_config *cfgc;         /* cfg + hl_config_set_confinement(cfgc, true) */
    hl_sandbox *sbc;         /* confined sandbox of the same guest: its calls run on its worker */
    samples hostcall_total_conf; /* HostRoundTrip(HOSTCALLS) call times on sbc */
    pid_t worker_tid;        /* sbc's worker thread (0: unknown), for its counters */
    char tmpdir[64];         /* static binary and snapshot file */
    char static_bin[PATH_MAX], bwrap[PATH_MAX], snapfile[PATH_MAX];
    const char *static_how;  /* how the static binary was made */
} bench;

/* A sandbox made from a configuration with hl_config_set_confinement(cfg, true): its calls
 * run on its worker thread (src/host/internal.h). */
static bool sb_confined(const hl_sandbox *sb) { return sb->confine != NULL; }

/* sb: b->sb, or b->sbc (the confined sandbox) */
static void call_or_die(hl_sandbox *sb, const char *name, hl_type rt, const hl_value *args, int nargs, hl_value *ret)
{
    hl_status st = hl_call(sb, name, rt, args, nargs, ret);
    if (st != HL_OK)
        die("%s%s: %s: %s", name, sb_confined(sb) ? " (confined sandbox)" : "", hl_status_name(st),
            hl_last_error(sb));
}

static void op_empty(hl_sandbox *sb)
{
    hl_value ret;
    call_or_die(sb, "Empty", HL_I32, NULL, 0, &ret);
}

static void op_echo(bench *b)
{
    static const hl_value arg = { .type = HL_STRING, .v.buf = { "hello", 5 } };
    hl_value ret;
    call_or_die(b->sb, "Echo", HL_STRING, &arg, 1, &ret);
    if (ret.v.buf.len != 5 || memcmp(ret.v.buf.ptr, "hello", 5) != 0) die("Echo returned a wrong string");
}

static void op_hostcalls(hl_sandbox *sb, uint32_t n)
{
    hl_value arg = hl_u32(n), ret;
    call_or_die(sb, "HostRoundTrip", HL_U32, &arg, 1, &ret);
    if (ret.v.u32 != n) die("HostRoundTrip(%u) returned %u", n, ret.v.u32);
}

static uint64_t op_guest_compute(bench *b)
{
    hl_value arg = hl_u32(COMPUTE_N), ret;
    call_or_die(b->sb, "Compute", HL_U64, &arg, 1, &ret);
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

/* ---- the snapshot rows: one sample each (preparation and clean-up untimed) ---- */
static void call_on(hl_sandbox *sb, const char *name, const hl_value *args, int nargs, hl_value *ret)
{
    hl_status st = hl_call(sb, name, HL_I32, args, nargs, ret);
    if (st != HL_OK) die("%s: %s: %s", name, hl_status_name(st), hl_last_error(sb));
}

static void restore_or_die(hl_sandbox *sb, hl_snapshot *snap)
{
    hl_status st = hl_restore(sb, snap);
    if (st != HL_OK) die("hl_restore: %s: %s", hl_status_name(st), hl_last_error(sb));
}

/* Waits (untimed) until the background filler has made the pool full again, so that no VM
 * creation runs on the other core during a timed part. */
static void pool_wait_full(hl_pool *p)
{
    uint64_t deadline = now_ns() + 10000000000ull;
    while (hl_pool_ready(p) < POOL_SIZE) {
        if (now_ns() > deadline) die("the pool's filler did not refill the pool within 10 s");
        sleep_ns(50000);
    }
}

/* After a batch of a pool row: a get that leaves the pool at half its size or less wakes the
 * filler, which then creates and warms a sandbox (and frees it if a put filled the pool
 * meanwhile) on the other core. Let that end before the next row runs. */
static void pool_settle(bench *b, int r)
{
    if (r == R_POOL_CALL || r == R_POOL_PUT) sleep_ns(5000000);
    if (r == R_POOL_FRESH) pool_wait_full(b->pool_fresh), sleep_ns(1000000);
}

static uint64_t sample_dirty(bench *b, int i, span *sp)
{
    hl_sandbox *sb = b->sbd[i];
    hl_value arg = hl_u32(dirty_n[i]), ret;
    uint64_t e0 = hl_sandbox_exit_count(sb), t, t1;
    hl_status st, st2;
    span_begin(sp);
    st = hl_call(sb, "Dirty", HL_I32, &arg, 1, &ret);
    t1 = now_ns();
    st2 = hl_restore(sb, b->snapd[i]);
    t = span_end(sp);
    if (st != HL_OK) die("Dirty(%u): %s: %s", dirty_n[i], hl_status_name(st), hl_last_error(sb));
    if (st2 != HL_OK) die("hl_restore: %s: %s", hl_status_name(st2), hl_last_error(sb));
    if (ret.v.i32 != (int32_t)dirty_n[i]) die("Dirty(%u) returned %d", dirty_n[i], ret.v.i32);
    if (sp->keep) add_sample(&b->dirty_restore[i], sp->t0 + t - t1);
    sp->exits += hl_sandbox_exit_count(sb) - e0;
    sp->has_exits = true;
    return t;
}

static uint64_t sample_take(bench *b, span *sp)
{
    hl_value arg = hl_u32(16), ret;
    hl_snapshot *s = NULL;
    hl_status st;
    uint64_t t;
    restore_or_die(b->sbt, b->snapt);
    call_on(b->sbt, "Dirty", &arg, 1, &ret);
    span_begin(sp);
    st = hl_snapshot_take(b->sbt, &s);
    t = span_end(sp);
    if (st != HL_OK) die("hl_snapshot_take: %s: %s", hl_status_name(st), hl_last_error(b->sbt));
    hl_snapshot_free(s);
    return t;
}

static uint64_t sample_new_call(bench *b, span *sp)
{
    hl_sandbox *sb = NULL;
    hl_value ret;
    hl_status st, st2 = HL_OK;
    uint64_t t, t1;
    span_begin(sp);
    st = hl_sandbox_new_from_snapshot(&sb, b->snap, b->cfg);
    t1 = now_ns();
    if (st == HL_OK) st2 = hl_call(sb, "Empty", HL_I32, NULL, 0, &ret);
    t = span_end(sp);
    if (st != HL_OK) die("hl_sandbox_new_from_snapshot: %s: %s", hl_status_name(st), hl_last_error(NULL));
    if (st2 != HL_OK) die("Empty (new sandbox): %s: %s", hl_status_name(st2), hl_last_error(sb));
    if (sp->keep) add_sample(&b->new_first_call, sp->t0 + t - t1);
    sp->exits += hl_sandbox_exit_count(sb);
    sp->has_exits = true;
    hl_sandbox_free(sb);
    return t;
}

/* Where a sandbox hl_pool_get returned from b->pool came from (e0: its exit count then): one
 * the benchmark put back (same pointer, same exit count as at that put), one created in
 * hl_pool_get because the pool was empty (it never ran: 0 exits), or one the filler made
 * (and warmed with hl.warm calls, so it has exits but never served a call of ours). */
static samples *pool_origin(bench *b, hl_sandbox *sb, uint64_t e0)
{
    unsigned n = b->pool_puts < 16 ? b->pool_puts : 16;
    for (unsigned i = 0; i < n; i++) {
        unsigned k = (b->pool_puts - 1 - i) % 16;
        if (b->pool_put_log[k].sb == sb) return b->pool_put_log[k].exits == e0 ? &b->pool_warm : &b->pool_filler;
    }
    return e0 ? &b->pool_filler : &b->pool_cold;
}

/* put_only: time hl_pool_put alone (the counting pass of the scrub row); otherwise time
 * get + first call, and keep the put's time as a sample of the scrub row. */
static uint64_t sample_pool(bench *b, hl_pool *pool, span *sp, bool put_only)
{
    hl_sandbox *sb = NULL;
    hl_value ret;
    hl_status st, st2 = HL_OK;
    uint64_t t = 0, e0 = 0, t1, tg = 0;
    if (!put_only) span_begin(sp);
    st = hl_pool_get(pool, &sb);
    if (!put_only) tg = now_ns();
    if (st == HL_OK) e0 = hl_sandbox_exit_count(sb), st2 = hl_call(sb, "Empty", HL_I32, NULL, 0, &ret);
    if (!put_only) t = span_end(sp);
    if (st != HL_OK) die("hl_pool_get: %s: %s", hl_status_name(st), hl_last_error(NULL));
    if (st2 != HL_OK) die("Empty (pooled sandbox): %s: %s", hl_status_name(st2), hl_last_error(sb));
    if (!put_only) {
        sp->exits += hl_sandbox_exit_count(sb) - e0;
        sp->has_exits = true;
        if (sp->keep && pool == b->pool) {
            samples *o = pool_origin(b, sb, e0);
            add_sample(o, t);
            if (o == &b->pool_filler) add_sample(&b->pool_filler_get, tg - sp->t0);
        }
    }
    if (pool == b->pool) { /* hl_pool_put may free sb (pool full): its address may come back */
        b->pool_put_log[b->pool_puts % 16].sb = sb;
        b->pool_put_log[b->pool_puts % 16].exits = hl_sandbox_exit_count(sb);
        b->pool_puts++;
    }
    if (put_only) span_begin(sp);
    t1 = now_ns();
    st = hl_pool_put(pool, sb);
    if (put_only) t = span_end(sp);
    else if (sp->keep && pool == b->pool) add_sample(&rows[R_POOL_PUT].s, now_ns() - t1);
    if (st != HL_OK) die("hl_pool_put: %s", hl_status_name(st));
    return t;
}

static uint64_t sample_pool_fresh(bench *b, span *sp)
{
    hl_sandbox *sb = NULL;
    hl_value ret;
    hl_status st, st2 = HL_OK;
    uint64_t t, e0 = 0;
    pool_wait_full(b->pool_fresh);
    span_begin(sp);
    st = hl_pool_get(b->pool_fresh, &sb);
    if (st == HL_OK) e0 = hl_sandbox_exit_count(sb), st2 = hl_call(sb, "Empty", HL_I32, NULL, 0, &ret);
    t = span_end(sp);
    if (st != HL_OK) die("hl_pool_get: %s: %s", hl_status_name(st), hl_last_error(NULL));
    if (st2 != HL_OK) die("Empty (pooled sandbox): %s: %s", hl_status_name(st2), hl_last_error(sb));
    sp->exits += hl_sandbox_exit_count(sb) - e0;
    sp->has_exits = true;
    hl_sandbox_free(sb); /* never back into the pool: its next get is one the filler made (and warmed) */
    return t;
}

static uint64_t sample_load(bench *b, span *sp)
{
    hl_snapshot *s = NULL;
    hl_sandbox *sb = NULL;
    hl_value ret;
    hl_status st, st2 = HL_ERR_STATE, st3 = HL_ERR_STATE;
    uint64_t t, t1;
    span_begin(sp);
    st = hl_snapshot_load(&s, b->snapfile);
    t1 = now_ns();
    if (st == HL_OK) st2 = hl_sandbox_new_from_snapshot(&sb, s, b->cfg);
    if (st2 == HL_OK) st3 = hl_call(sb, "Empty", HL_I32, NULL, 0, &ret);
    t = span_end(sp);
    if (st != HL_OK) die("hl_snapshot_load: %s: %s", hl_status_name(st), hl_last_error(NULL));
    if (st2 != HL_OK) die("hl_sandbox_new_from_snapshot (loaded): %s: %s", hl_status_name(st2), hl_last_error(NULL));
    if (st3 != HL_OK) die("Empty (loaded snapshot): %s: %s", hl_status_name(st3), hl_last_error(sb));
    if (sp->keep) add_sample(&b->load_only, t1 - sp->t0);
    sp->exits += hl_sandbox_exit_count(sb);
    sp->has_exits = true;
    hl_sandbox_free(sb);
    hl_snapshot_free(s);
    return t;
}

/* ---- processes, for comparison ---- */
extern char **environ;

static int wait_child(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die("waitpid: %s", strerror(errno));
    return status;
}

static void check_status(const char *what, int status)
{
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("%s: the child %s %d", what, WIFEXITED(status) ? "exited with" : "died of signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static uint64_t sample_process(bench *b, int r, span *sp)
{
    char *const argv_true[] = { b->static_bin, NULL };
    char *const argv_bwrap[] = { b->bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-all", b->static_bin,
                                 NULL };
    pid_t pid;
    int e, status;
    uint64_t t;
    span_begin(sp);
    if (r == R_FORK_EXEC) {
        pid = fork();
        if (pid < 0) die("fork: %s", strerror(errno));
        if (pid == 0) {
            execve(b->static_bin, argv_true, environ);
            _exit(127);
        }
    } else if ((e = posix_spawn(&pid, r == R_BWRAP ? b->bwrap : b->static_bin, NULL, NULL,
                                r == R_BWRAP ? argv_bwrap : argv_true, environ)) != 0) {
        die("posix_spawn %s: %s", r == R_BWRAP ? b->bwrap : b->static_bin, strerror(e));
    }
    status = wait_child(pid);
    t = span_end(sp);
    check_status(rows[r].label, status);
    return t;
}

/* The process rows run in a helper process forked at startup, before any VM exists: forking
 * the benchmark itself would write-protect every guest page of every sandbox for copy-on-
 * write (KVM then re-faults them all: the rows after it would pay), and would time the
 * copying of the benchmark's page tables rather than the start of a process. The helper is
 * a small single-threaded process; it times each sample itself and sends the time back. */
typedef struct spawner {
    pid_t pid;
    int req, resp; /* requests to the helper (row numbers), times from it */
} spawner;

static spawner helper = { -1, -1, -1 };

static bool io_full(int fd, void *buf, size_t len, bool wr)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t k = wr ? write(fd, p, len) : read(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k, len -= (size_t)k;
    }
    return true;
}

static void spawner_start(bench *b)
{
    int q[2], r[2];
    if (pipe2(q, O_CLOEXEC) < 0 || pipe2(r, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
    fflush(NULL);
    helper.pid = fork();
    if (helper.pid < 0) die("fork: %s", strerror(errno));
    if (helper.pid == 0) {
        int rr;
        close(q[1]), close(r[0]);
        while (io_full(q[0], &rr, sizeof rr, false)) {
            span sp = { 0 };
            uint64_t t = sample_process(b, rr, &sp);
            if (!io_full(r[1], &t, sizeof t, true)) break;
        }
        _exit(0);
    }
    close(q[0]), close(r[1]);
    helper.req = q[1];
    helper.resp = r[0];
}

static uint64_t spawner_sample(int r)
{
    uint64_t t;
    if (!io_full(helper.req, &r, sizeof r, true) || !io_full(helper.resp, &t, sizeof t, false))
        die("the process helper died (see its message above)");
    return t;
}

static void spawner_stop(void)
{
    if (helper.pid <= 0) return;
    close(helper.req), close(helper.resp);
    wait_child(helper.pid);
    helper.pid = -1;
}

/* Runs bwrap once with its output captured: NULL if it works, else why not. */
static char *bwrap_check(bench *b)
{
    char *const argv[] = { b->bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-all", b->static_bin, NULL };
    char out[1024], *msg;
    posix_spawn_file_actions_t fa;
    int p[2], e, status;
    size_t n = 0;
    ssize_t k;
    pid_t pid;
    if (pipe2(p, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    e = posix_spawn(&pid, b->bwrap, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (e != 0) {
        close(p[0]);
        if (asprintf(&msg, "error: cannot run %s: %s", b->bwrap, strerror(e)) < 0) die("out of memory");
        return msg;
    }
    while (n < sizeof out - 1 && (k = read(p[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)k;
    out[n] = 0;
    close(p[0]);
    status = wait_child(pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return NULL;
    out[strcspn(out, "\n")] = 0;
    if (asprintf(&msg, "error: bwrap %s %d: %s", WIFEXITED(status) ? "exited with" : "died of signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), out) < 0)
        die("out of memory");
    return msg;
}

/* Finds prog in $PATH; false if absent. */
static bool find_in_path(const char *prog, char *out, size_t len)
{
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t l = strcspn(path, ":");
        if (l && (size_t)snprintf(out, len, "%.*s/%s", (int)l, path, prog) < len && access(out, X_OK) == 0)
            return true;
        path += l + (path[l] == ':');
    }
    return false;
}

/* Builds the static binary the process rows start: a C program returning 0 at once, linked
 * with `gcc -static -O2` into the benchmark's temporary directory. NULL, or why it failed. */
static char *build_static_binary(bench *b)
{
    char src[PATH_MAX], cmd[4 * PATH_MAX], log[PATH_MAX], line[256] = "", *msg;
    FILE *f;
    int rc;
    snprintf(src, sizeof src, "%s/true.c", b->tmpdir);
    snprintf(b->static_bin, sizeof b->static_bin, "%s/true", b->tmpdir);
    snprintf(log, sizeof log, "%s/gcc.log", b->tmpdir);
    if (!(f = fopen(src, "w"))) die("cannot write %s: %s", src, strerror(errno));
    fputs("int main(void) { return 0; }\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "gcc -static -O2 -o '%s' '%s' >'%s' 2>&1", b->static_bin, src, log);
    rc = system(cmd);
    b->static_how = "gcc -static -O2 of `int main(void) { return 0; }` (glibc, static)";
    if (rc == 0 && access(b->static_bin, X_OK) == 0) return NULL;
    if ((f = fopen(log, "r"))) {
        if (!fgets(line, sizeof line, f)) line[0] = 0;
        fclose(f);
    }
    line[strcspn(line, "\n")] = 0;
    if (asprintf(&msg, "error: no static binary (gcc -static failed: %s)", line[0] ? line : "no output") < 0)
        die("out of memory");
    return msg;
}

/* ---- interrupt latency: another thread interrupts a call; time from hl_sandbox_interrupt
 * to hl_call returning ---- */
typedef struct intr_arg {
    hl_sandbox *sb;
    int *flag;          /* set by the host function the guest reaches first */
    uint64_t delay_ns;  /* then wait this long, so the guest (or host function) is well in */
    uint64_t t0;        /* when hl_sandbox_interrupt was called; 0 if it never was */
} intr_arg;

static void *interrupter(void *p)
{
    intr_arg *a = p;
    uint64_t deadline = now_ns() + (uint64_t)INTR_TIMEOUT_MS * 1000000u;
    while (!__atomic_load_n(a->flag, __ATOMIC_ACQUIRE)) {
        if (now_ns() > deadline) return NULL;
        sleep_ns(10000);
    }
    sleep_ns(a->delay_ns);
    a->t0 = now_ns();
    hl_sandbox_interrupt(a->sb);
    return NULL;
}

/* spin: Spin() (a guest spinning without exits); else CallSlow() (inside host function Slow). */
static uint64_t sample_interrupt(bench *b, bool spin, span *sp)
{
    intr_arg a = { b->sbi, spin ? &spinning_flag : &slow_flag, spin ? SPIN_DELAY_NS : SLOW_DELAY_NS, 0 };
    hl_value ret;
    hl_status st;
    pthread_t th;
    uint64_t t1, e0 = hl_sandbox_exit_count(b->sbi);
    int e;
    __atomic_store_n(a.flag, 0, __ATOMIC_RELEASE);
    if ((e = pthread_create(&th, NULL, interrupter, &a)) != 0) die("pthread_create: %s", strerror(e));
    span_begin(sp); /* the counters cover the whole call: the interrupt comes from another thread */
    st = hl_call(b->sbi, spin ? "Spin" : "CallSlow", HL_I32, NULL, 0, &ret);
    t1 = now_ns();
    span_end(sp);
    pthread_join(th, NULL);
    if (st != HL_ERR_CANCELLED || !a.t0 || !strstr(hl_last_error(b->sbi), "interrupted"))
        die("%s: expected an interrupted call, got %s: %s", spin ? "Spin" : "CallSlow", hl_status_name(st),
            hl_last_error(b->sbi));
    sp->exits += hl_sandbox_exit_count(b->sbi) - e0;
    sp->has_exits = true;
    restore_or_die(b->sbi, b->snap);
    return t1 - a.t0;
}

/* One sample of a row of the snapshot issue (rows R_DFLOOR_W and after). */
static uint64_t sample_row(bench *b, int r, span *sp)
{
    uint64_t t;
    if (r >= R_DFLOOR_W && r < R_DFLOOR_P) {
        span_begin(sp);
        dfloor_run(&b->df[r - R_DFLOOR_W], false);
        return span_end(sp);
    }
    if (r >= R_DFLOOR_P && r < R_DIRTY) {
        span_begin(sp);
        dfloor_run(&b->dfp[r - R_DFLOOR_P], true);
        return span_end(sp);
    }
    if (r >= R_DIRTY && r < R_DIRTY + NDIRTY) return sample_dirty(b, r - R_DIRTY, sp);
    switch (r) {
    case R_SNAP_TAKE: return sample_take(b, sp);
    case R_FLOOR_VM: floor_fresh_vm(&b->fresh, sp, &t, &b->fresh_first_run); return t;
    case R_NEW_CALL: return sample_new_call(b, sp);
    case R_POOL_CALL: return sample_pool(b, b->pool, sp, false);
    case R_POOL_PUT: return sample_pool(b, b->pool, sp, true);
    case R_POOL_NOBG: return sample_pool(b, b->pool_nobg, sp, false);
    case R_POOL_FRESH: return sample_pool_fresh(b, sp);
    case R_LOAD_CALL: return sample_load(b, sp);
    case R_FORK_EXEC:
    case R_SPAWN:
    case R_BWRAP: return spawner_sample(r); /* timed in the helper process */
    case R_INTR_SPIN: return sample_interrupt(b, true, sp);
    case R_INTR_HOSTFN: return sample_interrupt(b, false, sp);
    }
    die("no sample function for row %d", r);
}

/* ---- resident memory per extra idle sandbox ---- */
enum { M_RSS_ANON, M_RSS_FILE, M_RSS_SHMEM, M_VM_RSS, M_PSS, M_PSS_ANON, M_PSS_FILE, M_PSS_SHMEM, M_SLAB,
       M_SUNRECLAIM, M_PAGETABLES, M_SECPAGETABLES, M_KSTACK, NMEM };
static const struct {
    const char *file, *key, *json;
} mem_src[NMEM] = {
    { "/proc/self/status", "RssAnon:", "rss_anon_kib" },
    { "/proc/self/status", "RssFile:", "rss_file_kib" },
    { "/proc/self/status", "RssShmem:", "rss_shmem_kib" },
    { "/proc/self/status", "VmRSS:", "vm_rss_kib" },
    { "/proc/self/smaps_rollup", "Pss:", "pss_kib" },
    { "/proc/self/smaps_rollup", "Pss_Anon:", "pss_anon_kib" },
    { "/proc/self/smaps_rollup", "Pss_File:", "pss_file_kib" },
    { "/proc/self/smaps_rollup", "Pss_Shmem:", "pss_shmem_kib" },
    { "/proc/meminfo", "Slab:", "kernel_slab_kib" },
    { "/proc/meminfo", "SUnreclaim:", "kernel_slab_unreclaimable_kib" },
    { "/proc/meminfo", "PageTables:", "kernel_page_tables_kib" },
    { "/proc/meminfo", "SecPageTables:", "kernel_secondary_page_tables_kib" },
    { "/proc/meminfo", "KernelStack:", "kernel_stack_kib" },
};

/* kB values of mem_src; -1 where absent. */
static void mem_read(double v[NMEM])
{
    char line[256];
    for (int i = 0; i < NMEM; i++) v[i] = -1;
    for (int i = 0; i < NMEM; i++) {
        FILE *f;
        if (v[i] >= 0 || !(f = fopen(mem_src[i].file, "r"))) continue;
        while (fgets(line, sizeof line, f))
            for (int j = i; j < NMEM; j++)
                if (strcmp(mem_src[j].file, mem_src[i].file) == 0 &&
                    strncmp(line, mem_src[j].key, strlen(mem_src[j].key)) == 0)
                    v[j] = strtod(line + strlen(mem_src[j].key), NULL);
        fclose(f);
    }
}

typedef struct memres {
    int n;              /* extra sandboxes */
    double per[NMEM];   /* kB per extra sandbox; below -0.5e9: not available */
} memres;

/* Creates one sandbox from snap and makes one call (warm: shared pages and allocations),
 * then MEM_SANDBOXES more, one call each, and divides the growth by MEM_SANDBOXES. The
 * /proc/meminfo figures are system-wide (other tenants add noise). */
static void measure_memory(bench *b, memres *m)
{
    hl_sandbox *sb[MEM_SANDBOXES + 1];
    double a[NMEM], z[NMEM];
    hl_value ret;
    for (int i = 0; i <= MEM_SANDBOXES; i++) {
        if (i == 1) mem_read(a);
        if (hl_sandbox_new_from_snapshot(&sb[i], b->snap, b->cfg) != HL_OK)
            die("memory: hl_sandbox_new_from_snapshot: %s", hl_last_error(NULL));
        call_on(sb[i], "Empty", NULL, 0, &ret);
    }
    mem_read(z);
    m->n = MEM_SANDBOXES;
    for (int i = 0; i < NMEM; i++)
        m->per[i] = a[i] >= 0 && z[i] >= 0 ? (z[i] - a[i]) / MEM_SANDBOXES : -1e9;
    for (int i = 0; i <= MEM_SANDBOXES; i++) hl_sandbox_free(sb[i]);
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
    case R_EMPTY_CONF: {
        hl_sandbox *sb = r == R_EMPTY ? b->sb : b->sbc;
        for (int i = 0; i < BATCH; i++) {
            t0 = now_ns();
            op_empty(sb);
            add_sample(&rows[r].s, now_ns() - t0);
        }
        break;
    }
    case R_ECHO:
        for (int i = 0; i < BATCH; i++) {
            t0 = now_ns();
            op_echo(b);
            add_sample(&rows[r].s, now_ns() - t0);
        }
        break;
    case R_HOSTCALL:
    case R_HOSTCALL_CONF: {
        /* confined: Nop runs on sbc's worker thread, which runs the whole call; the hand-off
         * (futex words, confine.c) happens only at the start and the end of the call */
        hl_sandbox *sb = r == R_HOSTCALL ? b->sb : b->sbc;
        for (int i = 0; i < HOSTCALL_BATCH; i++) {
            nop_log.n = 0;
            nop_log.on = true;
            t0 = now_ns();
            op_hostcalls(sb, HOSTCALLS);
            t1 = now_ns();
            nop_log.on = false;
            add_sample(r == R_HOSTCALL ? &b->hostcall_total : &b->hostcall_total_conf, t1 - t0);
            /* Between two consecutive Nop calls: return to the guest, the guest's loop
             * iteration, its next exit, the host's dispatch = one round trip. */
            for (int k = 1; k < nop_log.n; k++) add_sample(&rows[r].s, nop_log.t[k] - nop_log.t[k - 1]);
        }
        break;
    }
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
    default: /* the snapshot rows */
        if (rows[r].err) break;
        for (int i = 0; i < rows[r].batch; i++) {
            span sp = { .keep = true };
            add_sample(&rows[r].s, sample_row(b, r, &sp));
        }
        pool_settle(b, r);
        break;
    }
}

/* ---- the counting pass: tracepoints and library exits per operation ---- */
/* Counter totals of this thread plus those of the confined sandbox's worker (cw: a group
 * opened on its thread id), read so that neither group counts the other's reads: cw, c
 * before; c, cw after (ctr_per_op then removes the one read c counts, as for the other rows). */
static void ctr_read_both(const counters *c, const counters *cw, uint64_t out[NCTR], bool after)
{
    uint64_t w[NCTR];
    if (!after) ctr_read(cw, w);
    ctr_read(c, out);
    if (after) ctr_read(cw, w);
    for (int i = 0; i < NCTR; i++) out[i] += w[i];
}

/* The confined rows: empty calls, or HostRoundTrip(COUNT_OPS) minus HostRoundTrip(0), on sbc;
 * the counts of both threads (the caller waits, the worker runs the vCPU and Nop). */
static void count_confined(bench *b, counters *c, counters *cw, int r)
{
    uint64_t a[NCTR], z[NCTR], ops = COUNT_OPS, e0 = hl_sandbox_exit_count(b->sbc), e1;
    rows[r].have_ctr = c->ok && cw->ok;
    if (r == R_EMPTY_CONF) {
        ctr_read_both(c, cw, a, false);
        for (uint64_t i = 0; i < ops; i++) op_empty(b->sbc);
        ctr_read_both(c, cw, z, true);
        rows[r].exits_per_op = (double)(hl_sandbox_exit_count(b->sbc) - e0) / (double)ops;
    } else {
        uint64_t a0[NCTR], z0[NCTR];
        ctr_read_both(c, cw, a0, false);
        op_hostcalls(b->sbc, 0);
        ctr_read_both(c, cw, z0, true);
        e1 = hl_sandbox_exit_count(b->sbc);
        ctr_read_both(c, cw, a, false);
        op_hostcalls(b->sbc, COUNT_OPS);
        ctr_read_both(c, cw, z, true);
        for (int i = 0; i < NCTR; i++) a[i] += z0[i] - a0[i];
        a[C_SYSCALL]--; /* as for R_HOSTCALL: the two deltas' counter reads cancel */
        rows[r].exits_per_op = (double)((hl_sandbox_exit_count(b->sbc) - e1) - (e1 - e0)) / (double)ops;
    }
    if (rows[r].have_ctr) rows[r].ctr = ctr_per_op(c, a, z, ops);
}

static void count_row(bench *b, counters *c, counters *cw, int r)
{
    uint64_t a[NCTR], z[NCTR], e0, ops;
    e0 = hl_sandbox_exit_count(b->sb);
    rows[r].exits_per_op = -1;
    switch (r) {
    case R_EMPTY_CONF:
    case R_HOSTCALL_CONF: count_confined(b, c, cw, r); return;
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
        for (uint64_t i = 0; i < ops; i++) op_empty(b->sb);
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
        op_hostcalls(b->sb, 0);
        ctr_read(c, z0);
        e1 = hl_sandbox_exit_count(b->sb);
        ctr_read(c, a);
        op_hostcalls(b->sb, COUNT_OPS);
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
    default: { /* the snapshot rows: counters over the timed parts only */
        span sp = { .c = c };
        ops = (uint64_t)rows[r].count_ops;
        if (rows[r].err || !ops || r == R_FORK_EXEC || r == R_SPAWN || r == R_BWRAP) return; /* (helper's) */
        for (uint64_t i = 0; i < ops; i++) sample_row(b, r, &sp);
        pool_settle(b, r);
        for (int i = 0; i < NCTR; i++)
            rows[r].ctr.c[i] = c->ok && c->slot[i] >= 0 ? (double)sp.acc[i] / (double)ops : -1;
        rows[r].have_ctr = c->ok;
        rows[r].exits_per_op = sp.has_exits ? (double)sp.exits / (double)ops : -1;
        return;
    }
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
    double margin; /* rounding margin for whole-number counts */
} target;

static void json_row_extra(FILE *f, int r, const bench *b, double amortised, uint64_t free_med, const stats *restore)
{
    if (r == R_HOSTCALL) fprintf(f, ", \"amortised_ns\": %.0f", amortised);
    if (r == R_CREATE) fprintf(f, ", \"free_median_ns\": %" PRIu64, free_med);
    if (r == R_CALL_RESTORE)
        fprintf(f, ", \"restore_median_ns\": %" PRIu64 ", \"restore_p99_ns\": %" PRIu64, restore->median,
                restore->p99);
    if (r == R_GUEST_COMPUTE && rows[R_GUEST_COMPUTE].st.median)
        fprintf(f, ", \"speed_vs_native\": %.3f",
                (double)rows[R_NATIVE_COMPUTE].st.median / (double)rows[R_GUEST_COMPUTE].st.median);
    if (r >= R_DFLOOR_W && r < R_DIRTY + NDIRTY) fprintf(f, ", \"dirty_pages\": %u", dirty_n[(r - R_DFLOOR_W) % NDIRTY]);
    if (r >= R_DFLOOR_W && r < R_DFLOOR_P) fprintf(f, ", \"pages_copied_per_restore\": %" PRIu64, b->df[r - R_DFLOOR_W].copied);
    if (r >= R_DIRTY && r < R_DIRTY + NDIRTY) {
        int i = r - R_DIRTY;
        stats rs = compute_stats((samples *)&b->dirty_restore[i]);
        const row *p = &rows[R_DFLOOR_P + i];
        fprintf(f, ", \"restore_median_ns\": %" PRIu64, rs.median);
        if (p->st.median && rows[r].st.median)
            fprintf(f, ", \"ratio_vs_reprotected_floor\": %.3f", (double)rows[r].st.median / (double)p->st.median);
        if (rows[R_DFLOOR_W + i].st.mean > 0)
            fprintf(f, ", \"mean_ratio\": %.3f", rows[r].st.mean / rows[R_DFLOOR_W + i].st.mean);
    }
    if (r == R_FLOOR_VM)
        fprintf(f, ", \"first_run_median_ns\": %" PRIu64, compute_stats((samples *)&b->fresh_first_run).median);
    if (r == R_POOL_CALL && b->pool_warm.n + b->pool_filler.n + b->pool_cold.n) {
        const double all = (double)(b->pool_warm.n + b->pool_filler.n + b->pool_cold.n);
        fprintf(f, ", \"never_ran_fraction\": %.3f, \"filler_made_fraction\": %.3f, \"returned_fraction\": %.3f",
                (double)b->pool_cold.n / all, (double)b->pool_filler.n / all, (double)b->pool_warm.n / all);
        if (b->pool_cold.n)
            fprintf(f, ", \"never_ran_median_ns\": %" PRIu64, compute_stats((samples *)&b->pool_cold).median);
        if (b->pool_filler.n)
            fprintf(f, ", \"filler_made_median_ns\": %" PRIu64 ", \"filler_made_get_median_ns\": %" PRIu64,
                    compute_stats((samples *)&b->pool_filler).median,
                    compute_stats((samples *)&b->pool_filler_get).median);
        if (b->pool_warm.n)
            fprintf(f, ", \"returned_median_ns\": %" PRIu64, compute_stats((samples *)&b->pool_warm).median);
    }
    if ((r == R_EMPTY_CONF || r == R_HOSTCALL_CONF) && rows[rows[r].floor].st.median) {
        const row *u = &rows[rows[r].floor];
        fprintf(f, ", \"unconfined_median_ns\": %" PRIu64 ", \"diff_ns\": %" PRId64 ", \"mean_diff_ns\": %.0f",
                u->st.median, (int64_t)rows[r].st.median - (int64_t)u->st.median, rows[r].st.mean - u->st.mean);
    }
    if (r == R_HOSTCALL_CONF && b->hostcall_total_conf.n && rows[R_EMPTY_CONF].st.median) {
        stats h = compute_stats((samples *)&b->hostcall_total_conf);
        fprintf(f, ", \"host_round_trip_call_median_ns\": %" PRIu64 ", \"amortised_ns\": %.0f", h.median,
                ((double)h.median - (double)rows[R_EMPTY_CONF].st.median) / HOSTCALLS);
    }
    if (r == R_NEW_CALL) fprintf(f, ", \"first_call_median_ns\": %" PRIu64, compute_stats((samples *)&b->new_first_call).median);
    if (r == R_LOAD_CALL && b->load_only.n)
        fprintf(f, ", \"load_median_ns\": %" PRIu64, compute_stats((samples *)&b->load_only).median);
    if (r == R_FORK_EXEC || r == R_SPAWN || r == R_BWRAP) {
        fprintf(f, ", \"binary\": ");
        json_str(f, b->static_bin);
        fprintf(f, ", \"binary_made_by\": ");
        json_str(f, b->static_how ? b->static_how : "");
    }
}

static void write_json(const char *path, const char *when, const char *machine, const char *source, bool pvm,
                       const target *t, int nt, double amortised, uint64_t free_med, const stats *restore,
                       const bench *b, const memres *m)
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
        if (w->err) {
            fprintf(f, "    {\"name\": \"%s\", \"iterations\": 0, \"median_ns\": null, \"error\": ", w->name);
            json_str(f, w->err);
            fprintf(f, "}%s\n", r + 1 < NROWS ? "," : "");
            continue;
        }
        fprintf(f, "    {\"name\": \"%s\", \"iterations\": %zu, \"median_ns\": %" PRIu64 ", \"p99_ns\": %" PRIu64
                   ", \"min_ns\": %" PRIu64 ", \"mean_ns\": %.0f",
                w->name, w->s.n, w->st.median, w->st.p99, w->st.min, w->st.mean);
        if (w->ratio > 0) {
            fprintf(f, ", \"ratio\": %.3f, \"ratio_of\": ", w->ratio);
            json_str(f, w->ratio_of);
        }
        json_row_extra(f, r, b, amortised, free_med, restore);
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
    fprintf(f, "  ],\n  \"memory_per_idle_sandbox\": {\"sandboxes\": %d", m->n);
    for (int i = 0; i < NMEM; i++) {
        fprintf(f, ", \"%s\": ", mem_src[i].json);
        if (m->per[i] > -0.5e9) fprintf(f, "%.1f", m->per[i]);
        else fputs("null", f);
    }
    fprintf(f, "},\n  \"targets\": {\n");
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

#define LABEL_W 36

static void print_row(int r)
{
    const row *w = &rows[r];
    char med[32], p99[32], ratio[32], ex[16], cc[7][16];
    static const int col[7] = { C_UEXIT, C_EMUL, C_SPTE, C_IOCTL, C_RUN, C_REGIO, C_SYSCALL };
    if (w->err) {
        printf("%-*s %s\n", LABEL_W, w->label, w->err);
        return;
    }
    fmt_ns(med, sizeof med, (double)w->st.median);
    fmt_ns(p99, sizeof p99, (double)w->st.p99);
    if (w->ratio > 0 && r >= R_DFLOOR_W && w->floor >= 0)
        snprintf(ratio, sizeof ratio, "%.2fx %s", w->ratio, rows[w->floor].tag);
    else if (w->ratio > 0) snprintf(ratio, sizeof ratio, "%.2fx", w->ratio);
    else snprintf(ratio, sizeof ratio, "-");
    if (w->exits_per_op >= 0) snprintf(ex, sizeof ex, "%.2f", w->exits_per_op);
    else snprintf(ex, sizeof ex, "-");
    for (int i = 0; i < 7; i++) fmt_ctr(cc[i], sizeof cc[i], w, col[i]);
    printf("%-*s %6zu %10s %10s %12s | %5s %5s %5s %6s %5s %5s %5s %5s\n", LABEL_W, w->label, w->s.n, med, p99, ratio,
           ex, cc[0], cc[1], cc[2], cc[3], cc[4], cc[5], cc[6]);
}

static void print_section(const char *title)
{
    printf("-- %s\n", title);
}

static void cleanup_tmp(bench *b)
{
    char p[PATH_MAX + 16];
    if (!b->tmpdir[0]) return;
    static const char *const files[] = { "true", "true.c", "gcc.log", "snapshot.hls" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", b->tmpdir, files[i]);
        unlink(p);
    }
    rmdir(b->tmpdir);
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
    memres mres;

    memset(&b, 0, sizeof b);
    memset(&mres, 0, sizeof mres);
    rows_init();
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
    /* first the process rows' static binary and helper process, while this process is small */
    snprintf(b.tmpdir, sizeof b.tmpdir, "/tmp/hyperlight-bench-XXXXXX");
    if (!mkdtemp(b.tmpdir)) die("mkdtemp: %s", strerror(errno));
    {
        char *why = build_static_binary(&b);
        if (why) rows[R_FORK_EXEC].err = rows[R_SPAWN].err = rows[R_BWRAP].err = why;
        else if (!find_in_path("bwrap", b.bwrap, sizeof b.bwrap))
            rows[R_BWRAP].err = "error: bwrap not found in PATH (scripts/setup.sh installs bubblewrap)";
        else rows[R_BWRAP].err = bwrap_check(&b);
        if (!why) spawner_start(&b);
    }
    if (!(b.cfg = hl_config_new())) die("out of memory");
    if (hl_config_register_host_fn(b.cfg, "Nop", HL_I32, none, 0, host_nop, NULL) != HL_OK ||
        hl_config_register_host_fn(b.cfg, "Spinning", HL_I32, none, 0, host_spinning, NULL) != HL_OK ||
        hl_config_register_host_fn(b.cfg, "Slow", HL_I32, none, 0, host_slow, NULL) != HL_OK)
        die("registering host functions: %s", hl_config_error(b.cfg));
    if (hl_sandbox_new_from_file(&b.sb, b.guest, b.cfg) != HL_OK)
        die("cannot create a sandbox from %s: %s", b.guest, hl_last_error(NULL));
    /* the confined sandbox: the same guest and host functions, calls on a seccomp-confined
     * worker thread (Nop needs no system call beyond the base allowlist) */
    if (!(b.cfgc = hl_config_new())) die("out of memory");
    if (hl_config_register_host_fn(b.cfgc, "Nop", HL_I32, none, 0, host_nop, NULL) != HL_OK ||
        hl_config_register_host_fn(b.cfgc, "Spinning", HL_I32, none, 0, host_spinning, NULL) != HL_OK ||
        hl_config_register_host_fn(b.cfgc, "Slow", HL_I32, none, 0, host_slow, NULL) != HL_OK ||
        hl_config_set_confinement(b.cfgc, true) != HL_OK)
        die("confined configuration: %s", hl_config_error(b.cfgc));
    if (hl_sandbox_new_from_file(&b.sbc, b.guest, b.cfgc) != HL_OK)
        die("cannot create a confined sandbox from %s: %s", b.guest, hl_last_error(NULL));
    if (!sb_confined(b.sbc)) die("the confined sandbox has no worker thread");
    if (hl_sandbox_new_from_file(&b.sbr, b.guest, b.cfg) != HL_OK)
        die("cannot create a sandbox from %s: %s", b.guest, hl_last_error(NULL));
    if (hl_snapshot_take(b.sbr, &b.snap) != HL_OK) die("hl_snapshot_take: %s", hl_last_error(b.sbr));
    floor_create(&b.fl);
    if (!(b.tab = malloc(BENCH_TABLE_WORDS * sizeof *b.tab))) die("out of memory");
    b.compute_check = bench_compute(b.tab, COMPUTE_N);

    /* snapshot rows: sandboxes, each with its snapshot taken right after creation */
    for (int i = 0; i < NDIRTY; i++) {
        if (hl_sandbox_new_from_file(&b.sbd[i], b.guest, b.cfg) != HL_OK)
            die("cannot create a sandbox from %s: %s", b.guest, hl_last_error(NULL));
        if (hl_snapshot_take(b.sbd[i], &b.snapd[i]) != HL_OK) die("hl_snapshot_take: %s", hl_last_error(b.sbd[i]));
        if (!i) {
            b.slot1_size = b.sbd[i]->lo.total - b.sbd[i]->lo.ro_end;
            b.pristine = mmap(NULL, b.slot1_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (b.pristine == MAP_FAILED) die("mmap: %s", strerror(errno));
            memset(b.pristine, 0, b.slot1_size); /* every page touched: a copy reads real pages */
        }
        dfloor_create(&b.df[i], dirty_n[i], b.slot1_size, b.pristine);
        dfloor_create(&b.dfp[i], dirty_n[i], b.slot1_size, b.pristine);
    }
    if (hl_sandbox_new_from_file(&b.sbt, b.guest, b.cfg) != HL_OK)
        die("cannot create a sandbox from %s: %s", b.guest, hl_last_error(NULL));
    if (hl_snapshot_take(b.sbt, &b.snapt) != HL_OK) die("hl_snapshot_take: %s", hl_last_error(b.sbt));
    floor_prepare(&b.fresh, false, 0, HL_PAGE);
    if (hl_pool_new(&b.pool, b.snap, b.cfg, POOL_SIZE, true) != HL_OK ||
        hl_pool_new(&b.pool_fresh, b.snap, b.cfg, POOL_SIZE, true) != HL_OK ||
        hl_pool_new(&b.pool_nobg, b.snap, b.cfg, POOL_SIZE, false) != HL_OK)
        die("hl_pool_new: %s", hl_last_error(NULL));
    if (hl_sandbox_new_from_snapshot(&b.sbi, b.snap, b.cfg) != HL_OK)
        die("hl_sandbox_new_from_snapshot: %s", hl_last_error(NULL));
    hl_sandbox_set_timeout(b.sbi, INTR_TIMEOUT_MS); /* a guard: an interrupt that never lands fails the run */
    snprintf(b.snapfile, sizeof b.snapfile, "%s/snapshot.hls", b.tmpdir);
    if (hl_snapshot_save(b.snap, b.snapfile) != HL_OK) {
        char *msg;
        if (asprintf(&msg, "n/a: hl_snapshot_save failed: %s", hl_last_error(NULL)) < 0) die("out of memory");
        rows[R_LOAD_CALL].err = msg;
    }

    /* ---- warm-up: first exits (the VIF wrmsr), page faults in guest and host memory ---- */
    for (int i = 0; i < 200; i++) floor_exit(&b.fl);
    for (int i = 0; i < 200; i++) op_empty(b.sb), op_echo(&b), op_empty(b.sbc);
    op_hostcalls(b.sb, 200);
    nop_log.want_tid = true; /* the confined sandbox's first call loads its filter */
    op_hostcalls(b.sbc, 200);
    nop_log.want_tid = false;
    b.worker_tid = nop_log.tid != (pid_t)syscall(SYS_gettid) ? nop_log.tid : 0;
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
    call_or_die(b.sb, "Empty", HL_I32, NULL, 0, &ret);
    pool_wait_full(b.pool);
    pool_wait_full(b.pool_fresh);
    pool_wait_full(b.pool_nobg);
    for (int r = R_DFLOOR_W; r < NROWS; r++) {
        span sp = { 0 };
        int n = rows[r].batch < 20 ? rows[r].batch : 20;
        if (rows[r].err) continue;
        for (int k = 0; k < n; k++) sample_row(&b, r, &sp);
    }

    /* ---- timed rounds: every row each round, starting with a different one ---- */
    for (int k = 0; k < rounds; k++)
        for (int j = 0; j < NROWS; j++) run_batch(&b, (k + j) % NROWS);

    /* ---- counting pass ---- */
    counters c, cw;
    ctr_open(&c, 0);
    if (b.worker_tid) ctr_open(&cw, b.worker_tid);
    else memset(&cw, 0, sizeof cw);
    for (int r = 0; r < NROWS; r++) count_row(&b, &c, &cw, r);
    if (b.worker_tid) ctr_close(&cw);
    ctr_close(&c);

    /* ---- memory per idle sandbox (pools gone first: no filler thread at work) ---- */
    hl_pool_free(b.pool);
    hl_pool_free(b.pool_fresh);
    hl_pool_free(b.pool_nobg);
    b.pool = b.pool_fresh = b.pool_nobg = NULL;
    measure_memory(&b, &mres);

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
    for (int r = R_DFLOOR_W; r < NROWS; r++) {
        static char of[NROWS][96];
        row *w = &rows[r];
        if (w->err || w->floor < 0 || rows[w->floor].err || !w->st.median || !rows[w->floor].st.median) continue;
        w->ratio = (double)w->st.median / (double)rows[w->floor].st.median;
        snprintf(of[r], sizeof of[r], "median / %s median", rows[w->floor].name);
        w->ratio_of = of[r];
    }
    /* (HostRoundTrip(n) - empty call) / n */
    const double amortised = ((double)hct.median - (double)rows[R_EMPTY].st.median) / HOSTCALLS;

    /* ---- targets ---- */
    const row *e = &rows[R_EMPTY];
    double regio = -1;
    for (int r = R_EMPTY; r <= R_HOSTCALL; r++)
        if (rows[r].have_ctr && rows[r].ctr.c[C_REGIO] >= 0 && rows[r].ctr.c[C_REGIO] > regio)
            regio = rows[r].ctr.c[C_REGIO];
    const double speed = (double)rows[R_NATIVE_COMPUTE].st.median / (double)rows[R_GUEST_COMPUTE].st.median;
    const double rss_user = mres.per[M_RSS_ANON] > -0.5e9 && mres.per[M_RSS_FILE] > -0.5e9
                                ? mres.per[M_RSS_ANON] + mres.per[M_RSS_FILE]
                                : -1;
    static char tname[NDIRTY][64], tdesc[NDIRTY][160];
    target t[4 + NDIRTY + 3] = {
        { "empty_call_vs_floor", "empty call median <= 1.3 x floor median", rows[R_EMPTY].ratio,
          TARGET_EMPTY_VS_FLOOR, true, true, false, 0 },
        { "guest_compute_speed", "guest compute speed (native time / guest time) >= 0.9", speed,
          TARGET_COMPUTE_SPEED, false, true, false, 0 },
        { "exits_per_empty_call", "one VM exit per call (kvm:kvm_userspace_exit per empty call)",
          e->have_ctr && e->ctr.c[C_UEXIT] >= 0 ? e->ctr.c[C_UEXIT] : e->exits_per_op, 1.0, true, true, false,
          0.005 },
        { "register_ioctls_per_call",
          "no vCPU register ioctl on the call path (KVM_GET/SET_REGS, SREGS, FPU, MSRS, ... per call "
          "or host call: the most of the empty call, Echo and host call rows)",
          regio, 0.0, true, regio >= 0, false, 0.005 },
    };
    int nt = 4;
    for (int i = 0; i < NDIRTY; i++) {
        const row *d = &rows[R_DIRTY + i];
        snprintf(tname[i], sizeof tname[i], "call_restore_dirty_%u_vs_floor", dirty_n[i]);
        snprintf(tdesc[i], sizeof tdesc[i],
                 "Dirty(%u) + hl_restore median <= 1.3 x its floor (exit + dirty log + copy of %u pages, "
                 "pages left writable)",
                 dirty_n[i], dirty_n[i]);
        t[nt++] = (target){ tname[i], tdesc[i], d->ratio, TARGET_RESTORE_VS_FLOOR, true, d->ratio > 0, false, 0 };
    }
    t[nt++] = (target){ "pooled_new_sandbox_first_call_us",
                        "hl_pool_get + first call median <= 50 us (absolute; its floor is in the table)",
                        (double)rows[R_POOL_CALL].st.median / 1e3, TARGET_POOLED_NEW_CALL_US, true,
                        rows[R_POOL_CALL].st.median > 0, false, 0 };
    t[nt++] = (target){ "unpooled_new_sandbox_first_call_vs_fresh_vm",
                        "hl_sandbox_new_from_snapshot + first call median <= 1.2 x fresh KVM VM creation to first "
                        "exit",
                        rows[R_NEW_CALL].ratio, TARGET_UNPOOLED_VS_FRESH_VM, true, rows[R_NEW_CALL].ratio > 0, false,
                        0 };
    t[nt++] = (target){ "rss_per_idle_sandbox_kib",
                        "resident memory (RssAnon + RssFile) per extra idle sandbox <= 128 KiB", rss_user,
                        TARGET_RSS_PER_SANDBOX_KIB, true, rss_user > -0.5, false, 0 };
    for (int i = 0; i < nt; i++)
        if (t[i].known)
            t[i].pass = t[i].at_most ? t[i].value <= t[i].limit + t[i].margin : t[i].value >= t[i].limit;

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
    printf("%-*s %6s %10s %10s %12s | %5s %5s %5s %6s %5s %5s %5s %5s\n", LABEL_W, "", "", "", "", "", "exits", "kvm",
           "kvm", "kvm", "", "", "reg", "");
    printf("%-*s %6s %10s %10s %12s | %5s %5s %5s %6s %5s %5s %5s %5s\n", LABEL_W, "row", "iters", "median", "p99",
           "ratio", "(lib)", "uexit", "emul", "spte", "ioctl", "RUN", "ioctl", "sysc");
    print_section("calls (ratio: median / bare exit floor; compute: guest / native)");
    for (int r = 0; r < R_DFLOOR_W; r++) print_row(r);
    print_section("call + restore, guest writing n pages (ratio to the floor in the tag column; dlogN = floor for "
                  "N pages, writable)");
    for (int i = 0; i < NDIRTY; i++) {
        print_row(R_DFLOOR_W + i);
        print_row(R_DFLOOR_P + i);
        print_row(R_DIRTY + i);
    }
    print_section("snapshots, new sandboxes (vm = fresh VM floor; dlog0 = pooled floor: exit + dirty log)");
    for (int r = R_SNAP_TAKE; r <= R_LOAD_CALL; r++) print_row(r);
    print_section("processes, for comparison (ratio: / new from snapshot + 1st call)");
    for (int r = R_FORK_EXEC; r <= R_BWRAP; r++) print_row(r);
    print_section("interrupt latency: hl_sandbox_interrupt -> hl_call returns (ratio: / bare exit)");
    for (int r = R_INTR_SPIN; r <= R_INTR_HOSTFN; r++) print_row(r);
    print_section("seccomp confinement: the same calls on a confined sandbox (ratio: / the unconfined row)");
    for (int r = R_EMPTY_CONF; r <= R_HOSTCALL_CONF; r++) print_row(r);
    printf("\nCounts per call (host call: per host call; new rows: per sample, timed part only),\n"
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
        for (int i = 0; i < NDIRTY; i++) {
            stats ds = compute_stats(&b.dirty_restore[i]);
            const row *d = &rows[R_DIRTY + i], *p = &rows[R_DFLOOR_P + i];
            fmt_ns(fm, sizeof fm, (double)ds.median);
            const row *w = &rows[R_DFLOOR_W + i];
            printf("Dirty(%u) + hl_restore: hl_restore alone %s; %.2fx the re-protected floor; means: %.2fx the "
                   "writable floor's; floor copies %" PRIu64 " pages per restore\n",
                   dirty_n[i], fm, p->st.median ? (double)d->st.median / (double)p->st.median : 0.0,
                   w->st.mean > 0 ? d->st.mean / w->st.mean : 0.0, b.df[i].copied);
        }
        {
            char fr[32], nc[32];
            stats fs = compute_stats(&b.fresh_first_run), nfc = compute_stats(&b.new_first_call);
            fmt_ns(fr, sizeof fr, (double)fs.median);
            fmt_ns(nc, sizeof nc, (double)nfc.median);
            printf("fresh VM floor: the first KVM_RUN alone %s; new from snapshot + 1st call: the 1st call alone %s\n",
                   fr, nc);
        }
        if (b.pool_warm.n + b.pool_filler.n + b.pool_cold.n) {
            char wm[32], fm2[32], cm[32], gm[32];
            const double all = (double)(b.pool_warm.n + b.pool_filler.n + b.pool_cold.n);
            fmt_ns(wm, sizeof wm, (double)compute_stats(&b.pool_warm).median);
            fmt_ns(fm2, sizeof fm2, (double)compute_stats(&b.pool_filler).median);
            fmt_ns(cm, sizeof cm, (double)compute_stats(&b.pool_cold).median);
            fmt_ns(gm, sizeof gm, (double)compute_stats(&b.pool_filler_get).median);
            printf("pool get + 1st call: %.0f%% of the gets returned a sandbox that never ran (created in "
                   "hl_pool_get, pool empty): median %s; %.0f%% one the filler made and warmed: %s (hl_pool_get "
                   "alone %s); %.0f%% one returned by hl_pool_put: %s\n",
                   100.0 * (double)b.pool_cold.n / all, b.pool_cold.n ? cm : "-", 100.0 * (double)b.pool_filler.n / all,
                   b.pool_filler.n ? fm2 : "-", b.pool_filler.n ? gm : "-", 100.0 * (double)b.pool_warm.n / all,
                   b.pool_warm.n ? wm : "-");
        }
        if (b.load_only.n) {
            fmt_ns(fm, sizeof fm, (double)compute_stats(&b.load_only).median);
            printf("load file + new + 1st call: hl_snapshot_load alone %s (file in the page cache)\n", fm);
        }
        if (!rows[R_FORK_EXEC].err) printf("static binary: %s, %s\n", b.static_bin, b.static_how);
        {
            const row *ec = &rows[R_EMPTY_CONF], *eu = &rows[R_EMPTY], *hc = &rows[R_HOSTCALL_CONF],
                      *hu = &rows[R_HOSTCALL];
            stats hcc = compute_stats(&b.hostcall_total_conf);
            char m1[32], m2[32], p1[32], p2[32], t1[32], t2[32];
            fmt_ns(m1, sizeof m1, (double)ec->st.median);
            fmt_ns(m2, sizeof m2, (double)eu->st.median);
            fmt_ns(p1, sizeof p1, (double)ec->st.p99);
            fmt_ns(p2, sizeof p2, (double)eu->st.p99);
            printf("seccomp confinement, empty call: confined %s, unconfined %s (medians): %.3fx, %+.2f us; "
                   "means %.3fx, %+.2f us; p99 %s / %s\n",
                   m1, m2, ec->ratio, ((double)ec->st.median - (double)eu->st.median) / 1e3,
                   eu->st.mean > 0 ? ec->st.mean / eu->st.mean : 0.0, (ec->st.mean - eu->st.mean) / 1e3, p1, p2);
            fmt_ns(m1, sizeof m1, (double)hc->st.median);
            fmt_ns(m2, sizeof m2, (double)hu->st.median);
            fmt_ns(t1, sizeof t1, (double)hcc.median);
            fmt_ns(t2, sizeof t2, (double)hct.median);
            printf("seccomp confinement, host call round trip: confined %s, unconfined %s: %.3fx, %+.2f us; "
                   "HostRoundTrip(%d): confined %s, unconfined %s (%+.1f us per call)\n",
                   m1, m2, hc->ratio, ((double)hc->st.median - (double)hu->st.median) / 1e3, HOSTCALLS, t1, t2,
                   ((double)hcc.median - (double)hct.median) / 1e3);
            if (!b.worker_tid)
                printf("  (the worker thread's id is unknown: the confined rows count this thread only)\n");
        }
    }
    printf("\nmemory per extra idle sandbox (%d sandboxes from one snapshot, one call each), KiB:\n", mres.n);
    printf("  process: RssAnon %.1f  RssFile %.1f  RssShmem %.1f  (VmRSS %.1f)   Pss %.1f (anon %.1f, file %.1f, "
           "shmem %.1f)\n",
           mres.per[M_RSS_ANON], mres.per[M_RSS_FILE], mres.per[M_RSS_SHMEM], mres.per[M_VM_RSS], mres.per[M_PSS],
           mres.per[M_PSS_ANON], mres.per[M_PSS_FILE], mres.per[M_PSS_SHMEM]);
    printf("  kernel (system-wide /proc/meminfo, noisy): Slab %.1f (unreclaimable %.1f)  PageTables %.1f  "
           "SecPageTables %.1f  KernelStack %.1f\n",
           mres.per[M_SLAB], mres.per[M_SUNRECLAIM], mres.per[M_PAGETABLES], mres.per[M_SECPAGETABLES],
           mres.per[M_KSTACK]);
    if (!c.ok) printf("note: tracepoint counters unavailable (perf_event_open needs root or perf_event_paranoid <= 1)\n");
    printf("\ntargets:\n");
    for (int i = 0; i < nt; i++) {
        if (t[i].known)
            printf("  %-4s %-44s %.3f %s %.3f  (%s)\n", t[i].pass ? "PASS" : "FAIL", t[i].name, t[i].value,
                   t[i].at_most ? "<=" : ">=", t[i].limit, t[i].desc);
        else printf("  %-4s %-44s (%s: not measurable here)\n", "?", t[i].name, t[i].desc);
    }

    /* ---- JSON ---- */
    if (json) {
        char path[PATH_MAX + 128];
        if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
            fprintf(stderr, "hyperlight-bench: cannot create %s: %s\n", out_dir, strerror(errno));
        snprintf(path, sizeof path, "%s/%s", out_dir, fname);
        write_json(path, when, machine, source, pvm, t, nt, amortised, fst.median, &rst, &b, &mres);
        printf("\nwrote %s", path);
        snprintf(path, sizeof path, "%s/latest.json", out_dir);
        write_json(path, when, machine, source, pvm, t, nt, amortised, fst.median, &rst, &b, &mres);
        printf(" and %s\n", path);
    }
    printf("total time: %.1f s\n", (double)(now_ns() - t_start) / 1e9);

    floor_destroy(&b.fl);
    munmap(b.fresh.mem, b.fresh.len);
    for (int i = 0; i < NDIRTY; i++) {
        dfloor_destroy(&b.df[i]);
        dfloor_destroy(&b.dfp[i]);
        hl_sandbox_free(b.sbd[i]);
        hl_snapshot_free(b.snapd[i]);
        free(b.dirty_restore[i].v);
    }
    hl_sandbox_free(b.sbt);
    hl_snapshot_free(b.snapt);
    hl_sandbox_free(b.sbi);
    hl_sandbox_free(b.sbc);
    hl_config_free(b.cfgc);
    hl_sandbox_free(b.sb);
    hl_sandbox_free(b.sbr);
    hl_snapshot_free(b.snap);
    hl_config_free(b.cfg);
    spawner_stop();
    munmap(b.pristine, b.slot1_size);
    cleanup_tmp(&b);
    free(b.tab);
    for (int r = 0; r < NROWS; r++) free(rows[r].s.v);
    free(b.hostcall_total.v);
    free(b.hostcall_total_conf.v);
    free(b.pool_filler.v);
    free(b.pool_filler_get.v);
    free(b.free_only.v);
    free(b.restore_only.v);
    free(b.new_first_call.v);
    free(b.fresh_first_run.v);
    free(b.pool_warm.v);
    free(b.pool_cold.v);
    free(b.load_only.v);
    return 0;
}

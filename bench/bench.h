/* bench.h - what the parts of hyperlight-bench share: the parameters, the rows and their table
 * entries, the benchmark's state, and each part's entry points. Only the public API
 * (hyperlight.h) and floor.h, the one gateway to the library's internals. */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "floor.h"
#include "hyperlight.h"
#include "perf.h"
#include "stats.h"
#include "util.h"

/* ---- parameters ---- */
#define DEFAULT_ROUNDS 30
#define BATCH 500           /* floor exits / empty calls / echo calls per round */
#define HOSTCALLS 100       /* Nop calls per HostRoundTrip call */
#define HOSTCALL_BATCH 2    /* HostRoundTrip calls per round */
#define COMPUTE_N 10000000u /* iterations of bench_compute */
#define CREATE_BATCH 2      /* sandbox creations per round */
#define COUNT_OPS 2000      /* calls in the counting pass */
/* (the per-round and counting-pass sample counts of the other rows are in main.c's table) */
#define NDIRTY 4
/* The largest page count of the dirty rows: BENCH_DIRTY_MAX_PAGES of compute.h, the size of
 * the guest's Dirty() arena (checked in calls.c: compute.h defines a function, so only the
 * file that calls it includes it). */
#define DIRTY_MAX_PAGES 256u
extern const uint32_t dirty_n[NDIRTY]; /* 0, 1, 16, DIRTY_MAX_PAGES */
#define POOL_SIZE 2                    /* sandboxes each pool keeps ready */
#define MEM_SANDBOXES 50               /* extra idle sandboxes for the memory figure */
#define INTR_TIMEOUT_MS 5000           /* guard: an interrupt that does not land fails the run */
#define SPIN_DELAY_NS 300000u          /* from Spin() saying it starts to the interrupt */
#define SLOW_DELAY_NS 50000u           /* from Slow() starting to the interrupt */
#define INSNS_CALLS_FEW 100            /* host instructions: Echo calls of the two runs under callgrind */
#define INSNS_CALLS_MANY 1100

/* ---- targets (the issues') ---- */
#define TARGET_EMPTY_VS_FLOOR 1.3
#define TARGET_COMPUTE_SPEED 0.9
#define TARGET_RESTORE_VS_FLOOR 1.3      /* call + restore / its floor */
#define TARGET_POOLED_NEW_CALL_US 50.0   /* pooled new sandbox + first call */
#define TARGET_UNPOOLED_VS_FRESH_VM 1.2  /* unpooled new sandbox + first call / fresh VM */
#define TARGET_RSS_PER_SANDBOX_KIB 128.0 /* per extra idle sandbox */
#define TARGET_INSNS_PER_ECHO 1200.0     /* host instructions per warm Echo("hello") call */

/* ---- the rows ---- */
enum {
    R_FLOOR,
    R_EMPTY,
    R_ECHO,
    R_HOSTCALL,
    R_CALL_RESTORE, /* per call: ratio to the floor */
    R_GUEST_COMPUTE,
    R_NATIVE_COMPUTE,
    R_CREATE,
    R_SNAP_CREATE,
    /* snapshots (each of the next three: one row per dirty_n[i]) */
    R_DFLOOR_W,                       /* floor: exit + dirty log + copy, pages left writable */
    R_DFLOOR_P = R_DFLOOR_W + NDIRTY, /* the same, pages re-protected after each restore */
    R_DIRTY = R_DFLOOR_P + NDIRTY,    /* hl_call(Dirty n) + hl_sandbox_restore */
    R_SNAP_TAKE = R_DIRTY + NDIRTY,   /* hl_snapshot_take after Dirty(16) */
    R_FLOOR_VM,                       /* floor: fresh KVM VM, creation to first exit */
    R_NEW_CALL,                       /* hl_sandbox_new_from_snapshot + first call */
    R_POOL_CALL,                      /* hl_pool_get + first call */
    R_POOL_PUT,                       /* hl_pool_put (the scrub) */
    R_POOL_NOBG,                      /* the same as R_POOL_CALL, pool without a filler thread */
    R_POOL_FRESH,                     /* hl_pool_get of a sandbox no caller used + first call */
    R_LOAD_CALL,                      /* hl_snapshot_load + new from snapshot + first call */
    R_FORK_EXEC,
    R_SPAWN,
    R_BWRAP, /* processes, for comparison */
    R_INTR_SPIN,
    R_INTR_HOSTFN,   /* interrupt latency */
    R_EMPTY_CONF,    /* empty call on a confined sandbox (seccomp, worker thread) */
    R_HOSTCALL_CONF, /* host call round trip on the confined sandbox */
    R_HOST_CLOCK,    /* clock_gettime(CLOCK_MONOTONIC) on the host, per read */
    R_GUEST_CLOCK,   /* the same in the guest (no exit), per read */
    NROWS
};

typedef struct bench bench;

/* How a row is measured (main.c's driver). Each round: run if set (the row times itself);
 * else `batch` calls of op, each timed by the driver; else `batch` calls of sample, each
 * returning its own timed part (through the span: preparation and clean-up untimed). The
 * counting pass: count if set; else a loop of `count_ops` calls of op between two counter
 * reads; else `count_ops` samples, counted over their spans only. */
typedef void op_fn(bench *b);
typedef uint64_t sample_fn(bench *b, int r, span *sp);
typedef void run_fn(bench *b, int r);
typedef void count_fn(bench *b, counters *c, counters *cw, int r);
typedef void settle_fn(bench *b);

/* The exits an op row reports from its counting pass. */
enum { EXITS_NONE, EXITS_ONE, EXITS_ZERO, EXITS_SB, EXITS_SBR };

typedef struct row {
    const char *name;  /* JSON name */
    const char *label; /* table label */
    const char *tag;   /* short name, shown next to ratios taken to this row */
    op_fn *op;
    sample_fn *sample;
    run_fn *run;
    count_fn *count;
    settle_fn *settle; /* after each batch (untimed) */
    int exits;         /* op rows: EXITS_*, what the counting pass reports */
    int batch;         /* op and sample rows: samples per round */
    int count_ops;     /* op and sample rows: operations in the counting pass (0: not counted) */
    int floor;         /* rows from R_DFLOOR_W on: the row the ratio is taken to (-1: none) */
    /* results */
    samples s;
    stats st;
    double ratio; /* to the floor (or guest/native for compute); 0: none */
    const char *ratio_of;
    const char *err;     /* not measured, and why */
    double exits_per_op; /* hl_sandbox_exit_count; negative: not applicable */
    counts ctr;
    bool have_ctr;
} row;

extern row rows[NROWS];

/* ---- resident memory per extra idle sandbox (mem.c) ---- */
enum {
    M_RSS_ANON,
    M_RSS_FILE,
    M_RSS_SHMEM,
    M_VM_RSS,
    M_PSS,
    M_PSS_ANON,
    M_PSS_FILE,
    M_PSS_SHMEM,
    M_SLAB,
    M_SUNRECLAIM,
    M_PAGETABLES,
    M_SECPAGETABLES,
    M_KSTACK,
    NMEM
};

typedef struct memres {
    int n;            /* extra sandboxes */
    double per[NMEM]; /* kB per extra sandbox; below -0.5e9: not available */
} memres;

/* ---- host instructions per warm Echo call (insns.c) ---- */
#define INSNS_TOP 15
typedef struct insns_fn {
    char name[160];  /* function [object] */
    double per_call; /* self instructions per call: (many - few) / (INSNS_CALLS_MANY - INSNS_CALLS_FEW) */
} insns_fn;

typedef struct insns_res {
    bool ok;
    char err[512]; /* !ok: why not measured */
    char guest[PATH_MAX];
    uint64_t total[2]; /* Ir totals of the runs with INSNS_CALLS_FEW and INSNS_CALLS_MANY calls */
    double per_call;
    int ntop;
    insns_fn top[INSNS_TOP];
    double top_other;  /* the rest of per_call */
    char top_err[256]; /* why there is no breakdown ("": there is) */
} insns_res;

/* ---- the benchmark's state ---- */
struct bench {
    const char *guest;
    bool pvm;
    hl_config *cfg;
    hl_sandbox *sb;
    floor_vm *fl;
    uint64_t *tab;          /* native compute table */
    uint64_t compute_check; /* checksum both sides must return */
    samples hostcall_total; /* HostRoundTrip(HOSTCALLS) call times, for the amortised figure */
    samples free_only;      /* the hl_sandbox_free part of the create row */
    hl_sandbox *sbr;        /* sandbox restored to snap after each call */
    hl_snapshot *snap;      /* sbr's state right after creation */
    samples restore_only;   /* the hl_sandbox_restore part of the call + restore row */
    /* snapshot rows */
    dfloor *df[NDIRTY];  /* dirty floors (pages left writable), one VM per page count */
    dfloor *dfp[NDIRTY]; /* dirty floors (pages re-protected), one VM per page count */
    uint8_t *pristine;   /* zeros, what the dirty floors copy back */
    uint64_t slot1_size;
    hl_sandbox *sbd[NDIRTY];       /* Dirty(n) + restore, one sandbox per page count ... */
    hl_snapshot *snapd[NDIRTY];    /* ... restored to its snapshot taken right after creation */
    samples dirty_restore[NDIRTY]; /* the hl_sandbox_restore part */
    hl_sandbox *sbt;               /* snapshot take: restored to snapt, then Dirty(16), then taken */
    hl_snapshot *snapt;
    floor_vm *fresh;         /* memory of the fresh-VM floor */
    samples fresh_first_run; /* the first KVM_RUN part of the fresh-VM floor */
    samples new_first_call;  /* the hl_call part of new from snapshot + first call */
    hl_pool *pool;           /* get + call + put */
    /* its get + call samples, by where the sandbox came from: returned by the benchmark's
     * hl_pool_put, made (and warmed) by the filler, or created in hl_pool_get (never ran) */
    samples pool_warm, pool_filler, pool_cold;
    samples pool_filler_get; /* the hl_pool_get part of the pool_filler samples */
    struct {
        hl_sandbox *sb;
        uint64_t exits;
    } pool_put_log[16]; /* the last puts to pool */
    unsigned pool_puts;
    hl_pool *pool_fresh;         /* get + call, never put back: every get is one the filler made and warmed */
    hl_pool *pool_nobg;          /* get + call + put, without a filler thread */
    samples load_only;           /* the hl_snapshot_load part of the load row */
    hl_sandbox *sbi;             /* interrupted calls */
    hl_config *cfgc;             /* cfg + hl_config_set_confinement(cfgc, true) */
    hl_sandbox *sbc;             /* confined sandbox of the same guest: its calls run on its worker */
    samples hostcall_total_conf; /* HostRoundTrip(HOSTCALLS) call times on sbc */
    pid_t worker_tid;            /* sbc's worker thread (0: unknown), for its counters */
    bool ctr_ok;                 /* the counting pass had its counters */
    memres mem;
    insns_res insns;
    char tmpdir[64]; /* static binary, snapshot file, callgrind files */
    char static_bin[PATH_MAX], bwrap[PATH_MAX], snapfile[PATH_MAX];
    const char *static_how; /* how the static binary was made */
};

/* ---- calls.c: the call rows, the host function Nop, and call helpers ---- */
void calls_setup(bench *b);
void calls_warm(bench *b);
void calls_teardown(bench *b);
void call_on(hl_sandbox *sb, const char *name, const hl_value *args, int nargs, hl_value *ret); /* -> i32 */
void restore_or_die(hl_sandbox *sb, hl_snapshot *snap);
op_fn op_floor, op_empty, op_empty_confined, op_echo, op_guest_compute, op_native_compute, op_call_restore, op_create,
    op_snap_create;
run_fn run_hostcalls, run_call_restore, run_create;
count_fn count_hostcalls, count_confined;

/* ---- snapshots.c: snapshots, new sandboxes, pools, snapshot files ---- */
void snapshots_setup(bench *b);
void snapshots_warm(bench *b);
void snapshots_teardown(bench *b);
void snapfile_setup(bench *b);
void pools_free(bench *b);
sample_fn sample_dfloor_writable, sample_dfloor_reprotected, sample_dirty, sample_take, sample_fresh_vm,
    sample_new_call, sample_pool_call, sample_pool_put, sample_pool_nobg, sample_pool_fresh, sample_load;
settle_fn settle_pool, settle_pool_fresh;

/* ---- spawn.c: fork + exec, posix_spawn and bwrap of a static binary, in a helper process ---- */
void spawn_setup(bench *b);
void spawn_teardown(bench *b);
sample_fn sample_process;
int wait_child(pid_t pid);

/* ---- intr.c: interrupt latency, and the host functions Spinning and Slow ---- */
void intr_setup(bench *b);
void intr_teardown(bench *b);
sample_fn sample_intr_spin, sample_intr_hostfn;
/* clocks (calls.c): per read, CLOCK_READS reads a sample */
#define CLOCK_READS 10000
sample_fn sample_host_clock, sample_guest_clock;
int host_spinning(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret);
int host_slow(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret);

/* ---- mem.c ---- */
void measure_memory(bench *b, memres *m);
const char *mem_json_name(int i);

/* ---- insns.c: host instructions per warm Echo call, under valgrind --tool=callgrind ---- */
/* Measures into b->insns (b->insns.guest: the guest with Echo); callgrind files in dir. */
void insns_measure(bench *b, const char *dir);
void insns_print(const insns_res *m, bool top);
/* The hidden mode valgrind runs: argv = { exe, "--insns-child", N, GUEST }. */
int insns_child(int argc, char **argv);
/* hyperlight-bench --alloc (alloc.c): the guest allocators compared; returns the exit code. */
int alloc_main(int argc, char **argv);
/* alloc_native.c: the workloads of alloc_work.h with the SDK's allocator, natively. */
uint64_t alloc_native_mix(uint32_t ops, uint32_t seed);
uint64_t alloc_native_build(uint32_t n);

/* ---- report.c: statistics, targets, the table and the JSON file ---- */
void report(bench *b, int rounds, const char *out_dir, bool json);

#endif

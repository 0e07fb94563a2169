/* sandbox.h - the sandbox object (sandbox.c): its memory, its VM, its state, and the one
 * gateway from guest addresses to host memory. */
#ifndef HL_SANDBOX_H
#define HL_SANDBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "functions.h"
#include "layout.h"
#include "snapshot.h"
#include "vm.h"
#include "wire.h"

/* Write tracking of one dirty-logged memslot: which of its pages may differ from the base. */
typedef struct hl_track {
    uint32_t slot;
    hl_gpa gpa; /* the slot's first guest-physical address */
    uint64_t npages;
    uint64_t *dirty; /* pages that may differ from the sandbox's base */
    uint64_t *tmp;   /* KVM's dirty log, as last read */
    uint64_t *prev;  /* KVM's dirty log at the previous restore */
} hl_track;

struct hl_sandbox {
    hl_state state;
    hl_layout lo;
    hl_vm *vm;
    uint8_t *mem;      /* host mapping of all guest memory: */
    uint8_t *slot1;    /* = mem + ro_end: private writable view of [lo.ro_end, lo.total);
                     * [0, ro_end) is a shared read-only view but for the page tables, which
                     * are private and writable like slot 1 */
    hl_snapshot *base; /* the image the memory was last made equal to */
    int nfiles;
    hl_file files[HL_MAX_FILES];   /* mapped files */
    void *file_host[HL_MAX_FILES]; /* their read-only mappings */
    hl_track rw;                   /* the writable memslot's pages */
    hl_track pt;                   /* the page tables' memslot */
    uint64_t restores;
    int64_t emul_mark;   /* KVM's emulated-instruction count when the debug registers and */
    uint64_t exits_mark; /* page tables were last known clean, and `exits` then; -1: never */
    uint64_t in_max;     /* highest input-stack top since the memory equalled base */
    uint64_t gen_counter;
    hl_clock_mode clock_mode; /* from the configuration; */
    hl_clock_src clock;       /* what the meta page's clock and entropy blocks are made from */
    /* from the configuration */
    int nhostfns;
    hl_hostfn *hostfns;
    hl_print_fn print;
    void *print_user;
    hl_log_fn log;
    void *log_user;
    /* the guest's function table */
    int nguestfns;
    hl_guestfn *guestfns;
    const hl_guestfn *last_fn; /* the one called last: most calls call it again */
    /* per call */
    size_t in_top;    /* host's own record of the input stack top */
    uint8_t *outcopy; /* private copy of the output buffer (validated before use) */
    hl_rec *recs;
    int maxrecs;
    uint8_t *retmem; /* string/bytes of the last return value */
    size_t retcap;
    int err_code;
    size_t err_msg_at; /* with err_code != 0: where in err the guest's own message starts */
    char err[HL_ERR_LEN];
    char poison_why[HL_ERR_LEN];        /* the failure that poisoned the sandbox */
    char core_dir[HL_CORE_DIR_MAX + 1]; /* crash dumps go here; "" = off */
    uint64_t exits;                     /* VM exits since creation (tests and benchmarks read it) */
    uint64_t pt_repairs;                /* times the guest's writes to its page tables were undone */
    struct hl_fault fault;              /* the exception the guest reported (HL_PORT_FAULT)... */
    bool have_fault;                    /* ...while it is being described and dumped */
    /* cancellation (cancel.c); run_word, cancel_seq and cancel_why are shared with
     * hl_sandbox_interrupt on other threads and with the signal handler */
    uint64_t call_seq;                     /* number of the current or last call */
    uint64_t run_word;                     /* call_seq << 2 | IN_GUEST | RUNNING */
    uint64_t cancel_seq;                   /* highest call number cancelled */
    int cancel_why;                        /* HL_CANCEL_* */
    pthread_t tid;                         /* thread running the current call */
    uint64_t timeout_ms;                   /* per-call time limit, 0 = none */
    uint64_t max_host_calls, max_output;   /* limits per guest call */
    uint64_t call_host_calls, call_output; /* this call's use of them */
    bool has_timer;
    int timer_tid;
    timer_t timer;
    struct hl_confine *confine; /* the worker of a confined sandbox, else NULL (confine.c) */
    /* per call, for the executor: what the job runs */
    const char *call_fn; /* the guest function being called; NULL: initialisation */
};

hl_sandbox *hl_sandbox_alloc(void);
/* Ends a creation: on success hands (sb) out through (out), else keeps its error for this
 * thread and frees it. Returns (st). */
hl_status hl_sandbox_finish(hl_sandbox **out, hl_sandbox *sb, hl_status st);
/* Maps (snap)'s image as (sb)'s memory and makes snap its base. */
hl_status hl_sandbox_map(hl_sandbox *sb, hl_snapshot *snap);
/* Takes the host functions, print and log functions and limits from (cfg); allocates the
 * per-call buffers; starts the confined worker if cfg asks for one. */
hl_status hl_sandbox_adopt_config(hl_sandbox *sb, const hl_config *cfg);
/* Creates (sb)'s VM over its mapped memory and files (dup'd from files[0..nfiles)): at
 * the guest's entry point for a first boot (cpu NULL), else with the state (cpu). */
hl_status hl_sandbox_start_vm(hl_sandbox *sb, const hl_file *files, int nfiles, const hl_cpu_state *cpu);

/* Host pointer for guest range [gpa, gpa+len) if it lies inside slot 1 (writable memory),
 * else NULL. The one gateway from guest addresses to host memory. */
static inline uint8_t *hl_gpa_rw(hl_sandbox *sb, hl_gpa gpa, uint64_t len)
{
    if (gpa < sb->lo.ro_end || gpa > sb->lo.total || len > sb->lo.total - gpa) return NULL;
    return sb->slot1 + (gpa - sb->lo.ro_end);
}

/* Same for any guest memory (slot 0 or 1), read-only. */
static inline const uint8_t *hl_gpa_ro(const hl_sandbox *sb, hl_gpa gpa, uint64_t len)
{
    if (gpa > sb->lo.total || len > sb->lo.total - gpa) return NULL;
    return sb->mem + gpa;
}

/* Exit counter, for tests and benchmarks (not in the public header). */
HL_API uint64_t hl_sandbox_exit_count(const hl_sandbox *sb);
/* Times a restore or snapshot found the page tables written by the guest and put them back. */
HL_API uint64_t hl_sandbox_pt_repairs(const hl_sandbox *sb);

#endif

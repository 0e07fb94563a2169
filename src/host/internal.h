/* internal.h - types shared by the host library's modules (not installed). */
#ifndef HL_INTERNAL_H
#define HL_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <time.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hyperlight.h"
#include "wire.h"

/* An error text holds a whole guest message (HL_MAX_MESSAGE bytes) with what the host says
 * around it: a function name, a guest's file path and a few phrases ("PATH: guest
 * initialisation failed: guest aborted with code N: MESSAGE"). */
#define HL_ERR_LEN (HL_MAX_MESSAGE + HL_MAX_NAME + PATH_MAX + 512)
#define HL_PAGE HL_PAGE_SIZE
#define HL_ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))
#define HL_ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))

typedef uint64_t hl_gpa; /* guest-physical address (= guest-virtual: identity map) */

/* Formats into err[HL_ERR_LEN]; returns st so callers can `return hl_fail(...)`. */
hl_status hl_errf(char *err, hl_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- ELF loader (elf.c) ---- */
#define HL_ELF_MAX_SEGS 16
#define HL_ELF_MAX_SPAN (512u << 20) /* bytes from HL_IMAGE_BASE to the image end */

enum { HL_SEG_R = 4, HL_SEG_W = 2, HL_SEG_X = 1 }; /* = ELF p_flags bits */

typedef struct hl_segment {
    uint64_t vaddr, memsz, offset, filesz;
    uint32_t flags;
} hl_segment;

typedef struct hl_elf {
    uint64_t entry;
    uint64_t end;    /* page-aligned end of the highest segment */
    uint64_t ro_end; /* page-aligned start of the first writable segment (or end) */
    int nseg;
    hl_segment seg[HL_ELF_MAX_SEGS];
    uint32_t abi_version;
} hl_elf;

/* Validates the ELF in data[0, len) (hostile input) and describes its loadable image. */
hl_status hl_elf_parse(const uint8_t *data, size_t len, hl_elf *out, char *err);
/* Copies the segments into mem, which holds guest-physical [0, mem_len). */
void hl_elf_load(const hl_elf *elf, const uint8_t *data, uint8_t *mem, size_t mem_len);

/* ---- layout (layout.c) ---- */
enum hl_region_kind {
    HL_RGN_PEB,
    HL_RGN_CODE,
    HL_RGN_RODATA,
    HL_RGN_DATA,
    HL_RGN_META,
    HL_RGN_HEAP,
    HL_RGN_GUARD,
    HL_RGN_STACK,
    HL_RGN_INPUT,
    HL_RGN_OUTPUT,
    HL_RGN_INIT,
    HL_RGN_FILE,
};
#define HL_PERM_R 1u
#define HL_PERM_W 2u
#define HL_PERM_X 4u

typedef struct hl_region {
    int kind;
    hl_gpa gpa;
    uint64_t size;  /* bytes, page multiple */
    unsigned perm;  /* HL_PERM_*, 0 = not mapped */
} hl_region;

#define HL_MAX_REGIONS (HL_ELF_MAX_SEGS + 12 + HL_MAX_FILES)

typedef struct hl_sizes {
    uint64_t heap, scratch, input, output;
    uint64_t init;                    /* init data, bytes (its region is page-rounded) */
    int nfiles;
    uint64_t file_size[HL_MAX_FILES]; /* bytes of each mapped file */
    char file_label[HL_MAX_FILES][HL_FILE_LABEL_MAX + 1];
} hl_sizes;

typedef struct hl_layout {
    hl_sizes sizes;
    hl_gpa ro_end;     /* read-only slot [HL_PEB_GPA, ro_end), writable slot [ro_end, total) */
    hl_gpa total;      /* end of the memory image */
    hl_gpa end;        /* end of everything mapped: mapped files follow the image */
    hl_gpa pt_end;     /* page tables occupy [HL_PT_GPA, pt_end) */
    hl_gpa entry;
    hl_gpa meta, heap, guard, stack, input, output, init;
    hl_gpa file_gpa[HL_MAX_FILES]; /* each in a memslot of its own (HL_SLOT_FILE0 + i) */
    int nregions;
    hl_region regions[HL_MAX_REGIONS];
} hl_layout;

hl_status hl_layout_build(hl_layout *lo, const hl_elf *elf, const hl_sizes *sizes, char *err);
const hl_region *hl_layout_find(const hl_layout *lo, hl_gpa gpa);
const char *hl_region_name(int kind);
/* Writes the PEB for lo into p (a struct hl_peb). */
void hl_layout_peb(const hl_layout *lo, bool pvm, struct hl_peb *peb);

/* ---- page tables (pagetable.c) ---- */
#define HL_PTE_P (1ull << 0)
#define HL_PTE_W (1ull << 1)
#define HL_PTE_U (1ull << 2)
#define HL_PTE_A (1ull << 5)
#define HL_PTE_D (1ull << 6)
#define HL_PTE_NX (1ull << 63)
#define HL_PTE_ADDR 0x000ffffffffff000ull

/* Builds 4-level page tables mapping every region of lo with its permissions into mem
 * (guest-physical [0, mem_len)), starting at HL_PT_GPA; sets lo->pt_end. Identity map. */
hl_status hl_pt_build(hl_layout *lo, uint8_t *mem, size_t mem_len, char *err);
/* Page-table pages the regions of lo need. */
uint64_t hl_pt_pages_needed(const hl_layout *lo);
/* Walks the tables in mem for gva; returns the leaf PTE with the U/W/NX bits combined from
 * all levels (W only if every level has W; NX if any has NX), or 0 if not present. */
uint64_t hl_pt_walk(const uint8_t *mem, size_t mem_len, uint64_t gva);

/* ---- KVM backend (vm_kvm.c): the only file that issues ioctls ---- */
enum hl_exit_kind {
    HL_EXIT_OUT,      /* port, value */
    HL_EXIT_IN,       /* port */
    HL_EXIT_MMIO,     /* addr, is_write */
    HL_EXIT_SHUTDOWN, /* triple fault */
    HL_EXIT_HLT,
    HL_EXIT_INTR,     /* KVM_RUN returned EINTR */
    HL_EXIT_EMULATION, /* KVM could not emulate the guest's instruction */
    HL_EXIT_OTHER,    /* reason */
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

typedef struct hl_vm {
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
    int statsfd;       /* the vCPU's KVM statistics, or -1 */
    off_t emul_at;     /* where its insn_emulation counter is, or -1 */
    struct hl_vm_slot {
        uint64_t gpa, size;
        void *host;
        uint32_t flags;
    } slots[HL_NSLOTS];
} hl_vm;

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
    int nfiles;       /* read-only slots HL_SLOT_FILE0 + i for mapped files: */
    hl_gpa file_gpa[HL_MAX_FILES];
    void *file_host[HL_MAX_FILES];
    uint64_t file_len[HL_MAX_FILES];
    void *ro;         /* host view of [ro_gpa, ro_gpa + ro_size), read-only */
    hl_gpa ro_gpa;
    uint64_t ro_size;
    void *pt;         /* host view of [HL_PT_GPA, HL_PT_GPA + pt_size): page tables */
    uint64_t pt_size;
    void *rw;         /* host view of [rw_gpa, rw_gpa + rw_size), writable */
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
hl_status hl_vm_create(hl_vm *vm, const hl_vm_setup *s, char *err);
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
hl_status hl_vm_dirty_log(hl_vm *vm, uint32_t slot, uint64_t *bitmap, uint64_t *scratch, uint64_t npages,
                          char *err);
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
void hl_vm_destroy(hl_vm *vm);
/* Guest instructions KVM has emulated on this vCPU so far (its insn_emulation statistic;
 * a read of the statistics file, no vCPU ioctl), or -1 if unknown. */
int64_t hl_vm_emulations(hl_vm *vm);

/* ---- memory images (memory.c) ---- */
typedef struct hl_memfile {
    int fd;
    uint64_t offset; /* file offset of guest page 0 */
    int refs;
} hl_memfile;

typedef struct hl_extent {
    uint64_t first, count; /* guest pages */
    hl_memfile *file;
} hl_extent;

typedef struct hl_image {
    int n;
    hl_extent *ext; /* sorted, covering every page of the guest's memory */
} hl_image;

hl_memfile *hl_memfile_new(int fd, uint64_t offset);
void hl_memfile_ref(hl_memfile *f);
void hl_memfile_unref(hl_memfile *f);
hl_status hl_image_single(hl_image *img, hl_memfile *file, uint64_t pages);
/* out = parent, with the pages dirty_first + i for each bit i set in dirty taken from file. */
hl_status hl_image_derive(const hl_image *parent, const uint64_t *dirty, uint64_t dirty_first,
                          uint64_t dirty_count, hl_memfile *file, hl_image *out);
/* Maps pages [first, first + count) of img at base + first * page (MAP_FIXED | flags). */
hl_status hl_image_map(const hl_image *img, uint8_t *base, uint64_t first, uint64_t count, int prot,
                       int flags, char *err);
void hl_image_free(hl_image *img);
/* Reserves an inaccessible range of address space for mappings to replace. */
uint8_t *hl_reserve(uint64_t bytes);
uint64_t hl_checksum(const uint8_t *p, uint64_t len);

/* ---- configuration and host functions (hostfn.c) ---- */
/* A set of x86-64 system call numbers (confinement, confine.c). */
#define HL_SYSCALL_LIMIT 512
typedef struct hl_syscall_set {
    uint64_t bits[HL_SYSCALL_LIMIT / 64];
} hl_syscall_set;

typedef struct hl_hostfn {
    char name[HL_MAX_NAME + 1];
    hl_type ret;
    int nparams;
    hl_type params[HL_MAX_ARGS];
    hl_host_fn fn;
    void *user;
    hl_syscall_set syscalls; /* declared with hl_config_set_host_fn_syscalls */
} hl_hostfn;

/* A host file mapped read-only into guests: kept open by configurations, snapshots and
 * sandboxes (each holds its own descriptor). */
typedef struct hl_file {
    int fd;
    uint64_t size;
} hl_file;

struct hl_config {
    hl_sizes sizes;
    void *init_data;             /* copied at hl_config_set_init_data; sizes.init bytes */
    hl_file files[HL_MAX_FILES]; /* sizes.nfiles of them; labels in sizes */
    uint64_t timeout_ms;
    uint64_t init_timeout_ms; /* for the guest's initialisation */
    uint64_t max_host_calls; /* per guest call */
    uint64_t max_output;     /* bytes of prints and log messages per guest call */
    int nhostfns, caphostfns;
    hl_hostfn *hostfns;
    hl_print_fn print;
    void *print_user;
    hl_log_fn log;
    void *log_user;
    char core_dir[HL_CORE_DIR_MAX + 1]; /* crash dumps go here; "" = off (coredump.c) */
    bool confine;         /* hl_config_set_confinement */
    hl_syscall_set allow; /* hl_config_allow_syscalls */
    char err[HL_ERR_LEN];
};

/* Copies cfg (host functions, init data, file descriptors): for pools. NULL if out of memory. */
hl_config *hl_config_clone(const hl_config *cfg);
/* dup()s the descriptors of n files into dst; false (nothing kept) on failure. */
bool hl_files_dup(hl_file *dst, const hl_file *src, int n);
void hl_files_close(hl_file *files, int n);
/* Maps sb's files (sb->files) and fills the file part of a VM setup. */
hl_status hl_sandbox_map_files(hl_sandbox *sb, hl_vm_setup *vs);
const hl_hostfn *hl_hostfn_find(const hl_hostfn *fns, int n, const char *name);

struct hl_host_call {
    void *user;
    hl_sandbox *sb;
    char err[HL_MAX_MESSAGE + 1]; /* for the guest: as much as a message to it can hold */
    int err_code;
    void **allocs;
    int nallocs, capallocs;
};

/* ---- sandbox (sandbox.c) ---- */
typedef struct hl_guestfn {
    char *name;
    bool hidden; /* reserved by the SDK (HL_RESERVED_PREFIX): callable, not listed */
    hl_type ret;
    int nparams;
    hl_type params[HL_MAX_ARGS];
} hl_guestfn;

/* An immutable guest state: memory image, vCPU state, layout, function tables. Shared by
 * the sandboxes made from it and by its child snapshots; freed with its last reference. */
struct hl_snapshot {
    int refs;
    uint64_t generation;
    bool has_cpu; /* false for the image a sandbox boots from (before initialisation) */
    hl_cpu_state cpu;
    hl_layout lo;
    hl_image img;
    uint8_t *view;      /* read-only mapping of the whole image */
    uint64_t slot0_sum; /* checksum of [0, lo.ro_end): code, PEB, page tables */
    int nguestfns;
    hl_guestfn *guestfns;
    int nhostfns;
    hl_hostfn *hostfns; /* names and signatures only */
    int nfiles;
    hl_file files[HL_MAX_FILES]; /* the files mapped when it was taken */
};

/* Creates a snapshot of image img (one reference taken on each of its files). */
hl_status hl_snapshot_from_image(hl_snapshot **out, const hl_layout *lo, hl_image *img, char *err);
hl_status hl_snapshot_from_image_sum(hl_snapshot **out, const hl_layout *lo, hl_image *img, uint64_t sum,
                                     bool have_sum, char *err);
void hl_snapshot_ref(hl_snapshot *s);
hl_status hl_sandbox_restore_ex(hl_sandbox *sb, hl_snapshot *snap, bool full_cpu);
hl_status hl_guestfns_copy(hl_guestfn **dst, const hl_guestfn *src, int n);
void hl_guestfns_free(hl_guestfn *fns, int n);

/* Write tracking of one dirty-logged memslot: which of its pages may differ from the base. */
typedef struct hl_track {
    uint32_t slot;
    hl_gpa gpa;     /* the slot's first guest-physical address */
    uint64_t npages;
    uint64_t *dirty; /* pages that may differ from the sandbox's base */
    uint64_t *tmp;   /* KVM's dirty log, as last read */
    uint64_t *prev;  /* KVM's dirty log at the previous restore */
} hl_track;

struct hl_sandbox {
    hl_state state;
    hl_layout lo;
    hl_vm vm;
    uint8_t *mem;   /* host mapping of all guest memory: */
    uint8_t *slot1; /* = mem + ro_end: private writable view of [lo.ro_end, lo.total);
                     * [0, ro_end) is a shared read-only view but for the page tables, which
                     * are private and writable like slot 1 */
    hl_snapshot *base;   /* the image the memory was last made equal to */
    int nfiles;
    hl_file files[HL_MAX_FILES];       /* mapped files */
    void *file_host[HL_MAX_FILES];     /* their read-only mappings */
    hl_track rw;         /* the writable memslot's pages */
    hl_track pt;         /* the page tables' memslot */
    uint64_t restores;
    int64_t emul_mark;   /* KVM's emulated-instruction count when the debug registers and */
    uint64_t exits_mark; /* page tables were last known clean, and `exits` then; -1: never */
    uint64_t in_max;     /* highest input-stack top since the memory equalled base */
    uint64_t gen_counter;
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
    /* per call */
    size_t in_top;      /* host's own record of the input stack top */
    uint8_t *outcopy;   /* private copy of the output buffer (validated before use) */
    hl_rec *recs;
    int maxrecs;
    uint8_t *retmem;    /* string/bytes of the last return value */
    size_t retcap;
    int err_code;
    char err[HL_ERR_LEN];
    char poison_why[HL_ERR_LEN]; /* the failure that poisoned the sandbox */
    char core_dir[HL_CORE_DIR_MAX + 1]; /* crash dumps go here; "" = off */
    uint64_t exits;     /* VM exits since creation (tests and benchmarks read it) */
    uint64_t pt_repairs; /* times the guest's writes to its page tables were undone */
    struct hl_fault fault; /* the exception the guest reported (HL_PORT_FAULT)... */
    bool have_fault;       /* ...while it is being described and dumped */
    /* cancellation (cancel.c); run_word, cancel_seq and cancel_why are shared with
     * hl_sandbox_interrupt on other threads and with the signal handler */
    uint64_t call_seq;   /* number of the current or last call */
    uint64_t run_word;   /* call_seq << 2 | IN_GUEST | RUNNING */
    uint64_t cancel_seq; /* highest call number cancelled */
    int cancel_why;      /* HL_CANCEL_* */
    pthread_t tid;       /* thread running the current call */
    uint64_t timeout_ms; /* per-call time limit, 0 = none */
    uint64_t max_host_calls, max_output;      /* limits per guest call */
    uint64_t call_host_calls, call_output;    /* this call's use of them */
    hl_status drain_status;                   /* why the last drain() failed */
    bool has_timer;
    int timer_tid;
    timer_t timer;
    struct hl_confine *confine; /* the worker of a confined sandbox, else NULL (confine.c) */
};

/* ---- cancellation (cancel.c) ---- */
#define HL_SIGNAL (SIGRTMIN + 1)
#define HL_CANCEL_INTERRUPT 1
#define HL_CANCEL_TIMEOUT 2
#define HL_CANCEL_CONFINE 3 /* a refused system call (confine.c) */
hl_status hl_cancel_init(hl_sandbox *sb);
void hl_cancel_fini(hl_sandbox *sb);
hl_status hl_cancel_begin(hl_sandbox *sb);
void hl_cancel_end(hl_sandbox *sb);
void hl_cancel_enter_guest(hl_sandbox *sb);
void hl_cancel_leave_guest(hl_sandbox *sb);
/* HL_CANCEL_* if the current call was cancelled, else 0. */
int hl_cancelled(hl_sandbox *sb);
/* After an EINTR: true if nobody cancelled the call (then the vCPU may simply resume). */
bool hl_cancel_spurious(hl_sandbox *sb);

/* ---- confinement (confine.c) ---- */
typedef struct hl_confine hl_confine;
/* For a cfg with confinement on: starts sb's worker thread (after the host functions and
 * print function were taken from cfg). A no-op otherwise. */
hl_status hl_confine_start(hl_sandbox *sb, const hl_config *cfg);
/* Stops and joins the worker; a no-op for a sandbox without one. */
void hl_confine_stop(hl_sandbox *sb);
/* True on the worker thread of sb. */
bool hl_confine_on_worker(const hl_sandbox *sb);
/* Runs hl_call(sb, ...) on sb's worker and returns its status. */
/* Runs job(sb, arg) on sb's confined worker and waits for it; what names it in errors. */
hl_status hl_confine_run(hl_sandbox *sb, const char *what, hl_status (*job)(hl_sandbox *, void *), void *arg);
hl_status hl_confine_call(hl_sandbox *sb, const char *name, hl_type ret_type, const hl_value *args, int nargs,
                          hl_value *ret);
/* After host function `hostfn` returned: if a system call was refused since the call began
 * and not yet reported, writes the call's error into sb->err and returns true. */
bool hl_confine_stopped(hl_sandbox *sb, const char *hostfn);
/* The default print function (hostfn.c). */
void hl_default_print(void *user, int stream, const char *data, size_t len);

hl_sandbox *hl_sandbox_alloc(void);
hl_status hl_sandbox_finish(hl_sandbox **out, hl_sandbox *sb, hl_status st);
hl_status hl_sandbox_map(hl_sandbox *sb, hl_snapshot *snap);
/* Fills the memslot part of vs from sb's mapped memory. */
void hl_sandbox_vm_setup(const hl_sandbox *sb, hl_vm_setup *vs);
hl_status hl_sandbox_adopt_config(hl_sandbox *sb, const hl_config *cfg);
/* Sets the calling thread's creation error (hl_last_error(NULL)); returns st. */
hl_status hl_set_thread_error(hl_status st, const char *msg);

/* Host pointer for guest range [gpa, gpa+len) if it lies inside slot 1 (writable memory),
 * else NULL. The one gateway from guest addresses to host memory. */
uint8_t *hl_gpa_rw(hl_sandbox *sb, hl_gpa gpa, uint64_t len);
/* Same for any guest memory (slot 0 or 1), read-only. */
const uint8_t *hl_gpa_ro(const hl_sandbox *sb, hl_gpa gpa, uint64_t len);

/* ---- crash dumps (coredump.c) ---- */
/* Checks that dir is an existing, writable directory and stores its absolute path in
 * out[HL_CORE_DIR_MAX + 1] ("" for a NULL or empty dir: dumps off). */
hl_status hl_coredump_dir_check(const char *dir, char *out, char *err);
/* Called on a guest fault, after sb->err describes it: if sb has a core directory, writes
 * an ELF core file of the guest there and appends " (core dump: PATH)" or " (core dump
 * failed: REASON)" to sb->err. sig is the signal the core reports, or 0 to derive it from
 * the pending exception. Returns st. */
hl_status hl_coredump_fault(hl_sandbox *sb, hl_status st, int sig);
/* For a fault whose registers are gone: if sb has a core directory, appends " (no core
 * dump: WHY)" to sb->err. Returns st. */
hl_status hl_coredump_skip(hl_sandbox *sb, hl_status st, const char *why);

/* Exit counter, for tests and benchmarks (not in the public header). */
HL_API uint64_t hl_sandbox_exit_count(const hl_sandbox *sb);
/* Times a restore or snapshot found the page tables written by the guest and put them back. */
HL_API uint64_t hl_sandbox_pt_repairs(const hl_sandbox *sb);

#endif

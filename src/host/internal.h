/* internal.h - types shared by the host library's modules (not installed). */
#ifndef HL_INTERNAL_H
#define HL_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hyperlight.h"
#include "wire.h"

#define HL_ERR_LEN 512
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

#define HL_MAX_REGIONS (HL_ELF_MAX_SEGS + 12)

typedef struct hl_sizes {
    uint64_t heap, scratch, input, output;
} hl_sizes;

typedef struct hl_layout {
    hl_sizes sizes;
    hl_gpa ro_end;     /* slot 0 = [0, ro_end), slot 1 = [ro_end, total) */
    hl_gpa total;
    hl_gpa pt_end;     /* page tables occupy [HL_PT_GPA, pt_end) */
    hl_gpa entry;
    hl_gpa meta, heap, guard, stack, input, output;
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

typedef struct hl_vm {
    int vmfd, vcpufd;
    struct kvm_run *run;
    size_t run_size;
    bool pvm;
} hl_vm;

typedef struct hl_vm_setup {
    void *slot0;      /* host view of [0, slot0_size), read-only */
    uint64_t slot0_size;
    void *slot1;      /* host view of [slot0_size, slot0_size + slot1_size), writable */
    uint64_t slot1_size;
    uint64_t cr3, rip, rsp, rdi;
} hl_vm_setup;

bool hl_kvm_is_pvm(void);
hl_status hl_vm_create(hl_vm *vm, const hl_vm_setup *s, char *err);
/* Runs the vCPU until the next exit. Returns HL_OK with *ex filled, or an error. */
hl_status hl_vm_run(hl_vm *vm, hl_exit *ex, char *err);
typedef struct hl_vm_state {
    uint64_t rip, rsp, rflags, cr2, rax;
} hl_vm_state;
hl_status hl_vm_state_get(hl_vm *vm, hl_vm_state *st);
void hl_vm_destroy(hl_vm *vm);

/* ---- configuration and host functions (hostfn.c) ---- */
typedef struct hl_hostfn {
    char name[HL_MAX_NAME + 1];
    hl_type ret;
    int nparams;
    hl_type params[HL_MAX_ARGS];
    hl_host_fn fn;
    void *user;
} hl_hostfn;

struct hl_config {
    hl_sizes sizes;
    int nhostfns, caphostfns;
    hl_hostfn *hostfns;
    hl_print_fn print;
    void *print_user;
    hl_log_fn log;
    void *log_user;
    char err[HL_ERR_LEN];
};

const hl_hostfn *hl_hostfn_find(const hl_hostfn *fns, int n, const char *name);

struct hl_host_call {
    void *user;
    char err[HL_ERR_LEN];
    int err_code;
    void **allocs;
    int nallocs, capallocs;
};

/* ---- sandbox (sandbox.c) ---- */
typedef struct hl_guestfn {
    char *name;
    hl_type ret;
    int nparams;
    hl_type params[HL_MAX_ARGS];
} hl_guestfn;

struct hl_sandbox {
    hl_state state;
    hl_layout lo;
    hl_vm vm;
    int memfd;
    uint8_t *slot0; /* read-only view of [0, lo.ro_end) */
    uint8_t *slot1; /* private writable view of [lo.ro_end, lo.total) */
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
    uint64_t exits;     /* VM exits since creation (tests and benchmarks read it) */
};

/* Host pointer for guest range [gpa, gpa+len) if it lies inside slot 1 (writable memory),
 * else NULL. The one gateway from guest addresses to host memory. */
uint8_t *hl_gpa_rw(hl_sandbox *sb, hl_gpa gpa, uint64_t len);
/* Same for any guest memory (slot 0 or 1), read-only. */
const uint8_t *hl_gpa_ro(const hl_sandbox *sb, hl_gpa gpa, uint64_t len);

/* Exit counter, for tests and benchmarks (not in the public header). */
HL_API uint64_t hl_sandbox_exit_count(const hl_sandbox *sb);

#endif

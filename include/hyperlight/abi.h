/* hyperlight/abi.h - the host/guest boundary: guest-physical layout, ports, PEB, wire format.
 *
 * Self-contained C99, shared by the host library and the guest SDK. Everything a guest can
 * observe or produce is defined here; docs/abi.md explains it in prose. Any change to a value
 * or structure below must bump HL_ABI_VERSION. */
#ifndef HYPERLIGHT_ABI_H
#define HYPERLIGHT_ABI_H

#ifdef __ASSEMBLER__
#define HL_U(x) x
#else
#include <stddef.h>
#include <stdint.h>
#define HL_U(x) x##u
/* A compile-time check of the layout below that also lets C99 and C++ include this header. */
#if defined(__cplusplus) && __cplusplus >= 201103L
#define HL_ABI_CHECK(cond, msg) static_assert(cond, msg)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define HL_ABI_CHECK(cond, msg) _Static_assert(cond, msg)
#else
#define HL_ABI_CHECK(cond, msg) struct hl_abi_check_skipped /* the library's C11 build checks */
#endif
#endif

#define HL_ABI_VERSION HL_U(3)

/* ---- guest-physical (= guest-virtual, identity mapped) layout ---------------------------- */
#define HL_PAGE_SIZE HL_U(4096)
/* GPA 0 .. 0x1000 is never mapped: a NULL dereference faults.
 * The host-built page tables come next. They are not mapped into the guest, but the CPU's
 * own page walks must be able to write them: hardware nested paging (AMD NPT; Intel EPT with
 * accessed/dirty flags) treats every guest page-table access of a walk as a write, so they
 * live in a memslot of their own that is writable at the hypervisor level (docs/platforms.md).
 * The PEB sits in the page just below the image, so that it, the code and the read-only data
 * form one read-only memslot. */
#define HL_PT_GPA HL_U(0x1000)       /* host-built page tables, not mapped into the guest */
#define HL_IMAGE_BASE HL_U(0x200000) /* guests are linked here (hyperlight_guest.ld) */
#define HL_PEB_GPA HL_U(0x1ff000)    /* one read-only page: struct hl_peb */
/* Page tables fill HL_PT_GPA .. HL_PEB_GPA at most, which bounds the guest's address space. */
#define HL_PT_MAX_PAGES ((HL_PEB_GPA - HL_PT_GPA) / HL_PAGE_SIZE)

/* ---- ports: the guest leaves the VM only with `out %eax, %dx` on one of these -------- */
#define HL_PORT_DONE HL_U(0x10)     /* init finished, or a guest call finished: result on output */
#define HL_PORT_HOSTCALL HL_U(0x11) /* a host-function call is on top of the output stack */
#define HL_PORT_ABORT HL_U(0x12)    /* an ABORT record is on top of the output stack */
#define HL_PORT_FLUSH HL_U(0x13)    /* output stack full of LOG/PRINT records: drain and resume */
#define HL_PORT_FAULT HL_U(0x14)    /* the guest took a CPU exception: hl_meta.fault describes it */

/* kvm_pvm only: the guest registers its virtual-IF page with this MSR as its first act
 * (value = gpa | 1); this is what lets kvm_pvm run supervisor code natively (docs/platforms.md). */
#define HL_MSR_PVM_VIF HL_U(0x4b564d10)

/* ---- PEB: written once by the host at GPA HL_PEB_GPA, read-only to the guest ----------- */
#define HL_PEB_MAGIC HL_U(0x4250484c) /* "LHPB" little-endian */
#define HL_PEB_FLAG_PVM HL_U(0x1)     /* host runs on kvm_pvm: register the VIF page first */
#define HL_MAX_FILES 32               /* host files mapped into one guest */
#define HL_FILE_LABEL_MAX 47          /* bytes in a file mapping's label, excluding the NUL */
/* Offsets of the fields the guest's assembly reads (entry.S), checked against the structures
 * below; likewise for struct hl_meta. */
#define HL_PEB_OFF_FLAGS HL_U(8)     /* struct hl_peb: flags */
#define HL_PEB_OFF_META_GPA HL_U(16) /* struct hl_peb: meta_gpa */
#define HL_META_OFF_PVM_VIF HL_U(0)  /* struct hl_meta: pvm_vif, first, so meta_gpa | 1 is the MSR value */

#ifndef __ASSEMBLER__
struct hl_peb {
    uint32_t magic;
    uint32_t abi_version;
    uint64_t flags;
    uint64_t meta_gpa; /* struct hl_meta, one writable page */
    uint64_t heap_gpa; /* guest heap: [heap_gpa, heap_gpa + heap_size) */
    uint64_t heap_size;
    uint64_t stack_gpa;  /* lowest stack address; the page below it is an unmapped guard */
    uint64_t stack_size; /* initial rsp = stack_gpa + stack_size */
    uint64_t input_gpa;  /* input stack (host -> guest) */
    uint64_t input_size;
    uint64_t output_gpa; /* output stack (guest -> host) */
    uint64_t output_size;
    uint64_t init_data_gpa; /* optional blob given at creation (read-only), 0 if none */
    uint64_t init_data_size;
    uint64_t nfiles; /* host files mapped read-only into the guest */
    struct hl_peb_file {
        uint64_t gpa, size;
        char label[HL_FILE_LABEL_MAX + 1]; /* NUL-terminated */
    } files[HL_MAX_FILES];
};

/* A CPU exception the guest caught itself (hardware KVM only: there the guest installs an
 * IDT; on kvm_pvm exceptions cannot be delivered and the host reads the fault from KVM).
 * Written by the guest's handler just before it signals HL_PORT_FAULT; hostile like every
 * guest word, the host copies it once and only formats it. */
struct hl_fault {
    uint64_t vector;                   /* 0..31 */
    uint64_t error_code;               /* 0 for vectors without one */
    uint64_t rip, cs, rflags, rsp, ss; /* the frame the CPU pushed */
    uint64_t cr2;                      /* read by the handler (page faults) */
    uint64_t gpr[16];                  /* rax rcx rdx rbx rsp(unused: see rsp) rbp rsi rdi r8..r15, at the fault */
};

/* The guest's clock, written by the host when the VM starts and after every restore, while
 * the vCPU is stopped; the guest turns its own rdtsc into time without an exit:
 *     ns = base_ns + ((rdtsc - tsc) * mult) >> shift   (a 128-bit product; 0 if rdtsc < tsc)
 * for base_ns = realtime_ns (CLOCK_REALTIME) or monotonic_ns (CLOCK_MONOTONIC). In
 * HL_CLOCK_MODE_FROZEN mult is 0: every read gives the same instant. seq is odd while the
 * host writes the block; a reader copies the block and retries if seq was odd or changed. */
#define HL_CLOCK_MODE_OFF HL_U(0)    /* no clock: clock_gettime fails with ENOSYS */
#define HL_CLOCK_MODE_REAL HL_U(1)   /* the host's clocks */
#define HL_CLOCK_MODE_FROZEN HL_U(2) /* one fixed instant */
#define HL_CLOCK_SHIFT HL_U(32)      /* the shift the host uses: mult = 10^9 * 2^32 / tsc_hz */
struct hl_clock {
    uint32_t seq;
    uint32_t mode;         /* HL_CLOCK_MODE_* */
    uint64_t tsc;          /* a value of the guest's TSC ... */
    uint64_t realtime_ns;  /* ... and the host's CLOCK_REALTIME at that instant (ns since 1970) */
    uint64_t monotonic_ns; /* ... and its CLOCK_MONOTONIC */
    uint64_t start_ns;     /* CLOCK_MONOTONIC when this sandbox's VM was created (process time) */
    uint64_t mult;         /* ns per TSC tick, times 2^shift */
    uint32_t shift;
    uint32_t reserved;
    uint64_t tsc_hz; /* the guest's TSC frequency (0 if unknown: mode is then not REAL) */
};

/* Fresh entropy, written by the host with the clock: a new 32-byte seed whenever the VM
 * starts or is restored, taken from a per-sandbox ChaCha20 stream the host seeds from the
 * kernel once. epoch is never 0 and differs (with overwhelming probability) from every
 * epoch another sandbox or an earlier restore saw: a guest keeps the epoch its own generator
 * was keyed under and re-keys from seed when the block's differs (its memory, generator
 * included, may have just been restored). epoch 0: no entropy (getentropy fails with EIO). */
#define HL_ENTROPY_SEED HL_U(32)
struct hl_entropy {
    uint64_t epoch;
    uint8_t seed[HL_ENTROPY_SEED];
};

/* One writable page of host/guest bookkeeping, GPA given by hl_peb.meta_gpa. */
struct hl_meta {
    uint8_t pvm_vif[16]; /* kvm_pvm virtual-IF block: u8 if, u8 pending, u8 pad[6], u64 cr2 */
    uint64_t generation; /* host: generation of the snapshot this memory came from */
    uint64_t host_flags; /* host: reserved */
    uint64_t reserved0;
    uint64_t resume_gva; /* guest: address of hl_resume (entry.S), see docs/abi.md */
    uint64_t reserved[3];
    struct hl_fault fault;     /* guest: its last CPU exception (HL_PORT_FAULT) */
    struct hl_clock clock;     /* host: see above */
    struct hl_entropy entropy; /* host: see above */
};

HL_ABI_CHECK(offsetof(struct hl_peb, flags) == HL_PEB_OFF_FLAGS, "HL_PEB_OFF_FLAGS is not the offset of hl_peb.flags");
HL_ABI_CHECK(offsetof(struct hl_peb, meta_gpa) == HL_PEB_OFF_META_GPA,
             "HL_PEB_OFF_META_GPA is not the offset of hl_peb.meta_gpa");
HL_ABI_CHECK(sizeof(struct hl_meta) <= HL_PAGE_SIZE, "struct hl_meta must fit its page");
HL_ABI_CHECK(offsetof(struct hl_meta, pvm_vif) == HL_META_OFF_PVM_VIF,
             "HL_META_OFF_PVM_VIF is not the offset of hl_meta.pvm_vif");
HL_ABI_CHECK(sizeof(struct hl_peb) <= HL_PAGE_SIZE, "struct hl_peb must fit its one page");
#endif

/* ---- value types ---------------------------------------------------------------------- */
#ifndef __ASSEMBLER__
typedef enum hl_type {
    HL_VOID = 0,
    HL_I32 = 1,
    HL_U32 = 2,
    HL_I64 = 3,
    HL_U64 = 4,
    HL_F32 = 5,
    HL_F64 = 6,
    HL_BOOL = 7,
    HL_STRING = 8,
    HL_BYTES = 9,
} hl_type;
#endif
#define HL_TYPE_MAX 9
#define HL_MAX_ARGS 16      /* arguments per call, both directions */
#define HL_MAX_NAME 255     /* bytes in a function name, excluding the NUL */
#define HL_MAX_FUNCS 1024   /* guest functions a guest may register */
#define HL_MAX_SDK_FUNCS 16 /* functions the SDK registers itself, named HL_RESERVED_PREFIX... */
#define HL_MAX_FUNC_TABLE (HL_MAX_FUNCS + HL_MAX_SDK_FUNCS) /* entries in a function table */
#define HL_RESERVED_PREFIX "hl."                            /* guest function names the SDK keeps for itself */
#define HL_WARM_FN HL_RESERVED_PREFIX "warm" /* the SDK's no-op: pools call it to fault in a new VM's hot pages */
/* The host call the SDK makes for the table of the embedder's host functions (no arguments,
 * returns bytes: a FUNCS payload, see below). Host functions may not be named HL_RESERVED_PREFIX... */
#define HL_HOSTFN_TABLE HL_RESERVED_PREFIX "host_functions"

/* ---- buffers: stacks of records --------------------------------------------------------
 * A buffer (input or output) starts with a u64 `top`: the offset of the first free byte
 * (empty: 8). Records follow, each 8-aligned:
 *     u32 len | u16 kind | u16 zero | payload[len] | pad to 8 | u64 start
 * where `start` is the offset of the record's first byte (a back pointer). All integers are
 * little-endian. The host validates the whole chain (forward by len, backward by start)
 * on a private copy before it reads any record. */
#define HL_REC_HEADER HL_U(8)
#define HL_REC_TRAILER HL_U(8)
#define HL_BUF_EMPTY HL_U(8)

#ifndef __ASSEMBLER__
enum hl_rec_kind {
    HL_REC_CALL = 1,     /* host -> guest: call a guest function */
    HL_REC_RESULT = 2,   /* result of a guest call (guest -> host) or host call (host -> guest) */
    HL_REC_HOSTCALL = 3, /* guest -> host: call a host function */
    HL_REC_LOG = 4,      /* guest -> host: log record */
    HL_REC_PRINT = 5,    /* guest -> host: bytes written to stdout/stderr */
    HL_REC_ABORT = 6,    /* guest -> host: abort with code and message */
    HL_REC_FUNCS = 7,    /* guest -> host, at init: the guest's function table */
};
#endif
#define HL_REC_KIND_MAX 7

/* Payloads (byte streams, little-endian, no padding):
 *   value    : u8 type, then i32/u32/f32: 4 bytes; i64/u64/f64: 8; bool: 1 (0 or 1);
 *              string: u32 len, len bytes, one 0 byte (no 0 byte inside);
 *              bytes: u32 len, len bytes; void: nothing
 *   CALL, HOSTCALL : u8 name_len, name, u8 return type, u8 argc, argc values
 *   RESULT   : u8 1, value                    (success)
 *              u8 0, i32 code, u32 len, msg    (error)
 *   LOG      : u8 level, u32 line, u8 file_len, file, u32 len, msg
 *   PRINT    : u8 stream (1 stdout, 2 stderr), bytes to end of payload
 *   ABORT    : i32 code, u32 len, msg
 *   FUNCS    : u16 count, count x (u8 name_len, name, u8 return type, u8 argc, argc x u8 type) */

#ifndef __ASSEMBLER__
enum hl_log_level {
    HL_LOG_TRACE = 0,
    HL_LOG_DEBUG = 1,
    HL_LOG_INFO = 2,
    HL_LOG_WARN = 3,
    HL_LOG_ERROR = 4,
    HL_LOG_CRITICAL = 5,
};
#endif
#define HL_LOG_LEVEL_MAX 5

#define HL_MAX_MESSAGE HL_U(4096) /* abort, error and log messages, bytes */

/* Error codes a guest reports for failures the SDK itself detects (a guest's own codes
 * are its business; these are negative so they never collide with a guest's >0 codes). */
#define HL_GUEST_ERR_UNKNOWN_FUNCTION (-1)
#define HL_GUEST_ERR_BAD_CALL (-2)
#define HL_GUEST_ERR_OUT_OF_MEMORY (-3)
#define HL_GUEST_ERR_HOST_FN (-4)
#define HL_GUEST_ERR_OUTPUT_FULL (-5)
#define HL_GUEST_ERR_ABI (-6)
#define HL_GUEST_ERR_HEAP (-7) /* free/realloc of a bad pointer, double free, heap corrupted */

/* ELF note that marks a guest built with this SDK: name "Hyperlight", type 1,
 * descriptor = u32 HL_ABI_VERSION. The host refuses a guest whose version differs. */
#define HL_NOTE_NAME "Hyperlight"
#define HL_NOTE_TYPE_ABI HL_U(1)
/* A second note of the same name, optional: the stack and heap sizes the guest wants when the
 * embedder does not set them (HL_GUEST_DEFAULTS in hyperlight_guest.h). Type 2, descriptor =
 * u64 stack bytes, u64 heap bytes, little-endian, stored as four u32 (low word first) so that
 * the note needs only the 4-byte alignment of the notes around it. 0 means "no preference". */
#define HL_NOTE_TYPE_DEFAULTS HL_U(2)
#define HL_NOTE_DEFAULTS_DESC HL_U(16)

#endif

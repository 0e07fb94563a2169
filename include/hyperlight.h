/* hyperlight.h - the hyperlight-c host API: run guest functions inside KVM micro-VMs.
 *
 * A sandbox is one VM with one vCPU and only memory, running a guest ELF built with the
 * guest SDK (hyperlight_guest.h). The host calls guest functions by name with typed
 * arguments; the guest can call back only the host functions registered in the configuration
 * the sandbox was made from. */
#ifndef HYPERLIGHT_H
#define HYPERLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hyperlight/abi.h"
#include "hyperlight/value.h" /* also defines HL_API, which marks the exported functions */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- conventions ---------------------------------------------------------------------
 *
 *  - Names are hl_<object>_<verb>: hl_config_set_heap_size, hl_sandbox_restore,
 *    hl_snapshot_take. hl_call, the call itself, and hl_last_error/hl_last_error_code are
 *    the exceptions.
 *  - Arguments: the handle first; a constructor's `out` first (hl_sandbox_new_from_file(&sb,
 *    ...)); results last (hl_call(..., &ret), hl_snapshot_take(sb, &snap)). Counts follow
 *    the array they count (args, nargs). hl_signature_format, like snprintf, takes its buffer
 *    first.
 *  - Every function that can fail returns an hl_status; HL_OK is 0. Setters that take a
 *    handle return one too: HL_ERR_INVALID_ARG for a NULL handle. The text of the last
 *    failure is hl_last_error(sb) for functions taking a sandbox, hl_config_error(cfg) for
 *    configuration functions, and hl_last_error(NULL) (per thread) for the functions that
 *    have no sandbox to hold it: creations, pools, snapshot files.
 *  - Which failure gets which status:
 *
 *      a NULL handle, a bad argument, a configuration value out of range  HL_ERR_INVALID_ARG
 *      no guest or host function of that name                            HL_ERR_NOT_FOUND
 *      argument count or types, or the return type, not the signature's   HL_ERR_TYPE
 *      the sandbox is not Ready                                           HL_ERR_STATE
 *      a value or request exceeds a buffer or limit the configuration
 *        sets (arguments that do not fit the input buffer)                HL_ERR_TOO_LARGE
 *      host memory or address space ran out (malloc, mmap)                HL_ERR_NO_MEMORY
 *      reading or writing a file the caller named (guest, snapshot file,
 *        mapped file, core directory) failed                              HL_ERR_IO
 *      the guest ELF or snapshot file is malformed or incompatible        HL_ERR_BAD_GUEST
 *      /dev/kvm is missing, or an operation on KVM failed                 HL_ERR_HYPERVISOR
 *      another operating-system facility failed: memfd, sealing, timers,
 *        signals, seccomp, threads                                        HL_ERR_SYSTEM
 *      the guest function returned an error                               HL_ERR_GUEST
 *      the guest aborted / faulted / broke the boundary protocol          HL_ERR_ABORTED,
 *                                                                         HL_ERR_FAULT,
 *                                                                         HL_ERR_PROTOCOL
 *      the call was interrupted, ran out of time, or the guest went
 *        beyond a per-call limit (hl_config_set_limits)                   HL_ERR_CANCELLED
 *
 *  - No global state: any number of sandboxes may live in one process. A sandbox must be
 *    used by one thread at a time (any thread; it may move between threads). Configurations
 *    are read-only once a sandbox was created from them and may then be shared by threads.
 *  - Guests are untrusted. Nothing a guest does makes these functions crash, hang or leak;
 *    a misbehaving guest ends its call with an error and leaves its sandbox Poisoned. */

typedef struct hl_config hl_config;
typedef struct hl_sandbox hl_sandbox;
typedef struct hl_host_call hl_host_call;
typedef struct hl_snapshot hl_snapshot;
typedef struct hl_pool hl_pool;

/* ---- status and state ---------------------------------------------------------------- */

/* Result codes: a small closed set. Details are in the last-error text. New codes are only
 * ever appended. */
typedef enum hl_status {
    HL_OK = 0,
    HL_ERR_INVALID_ARG = 1, /* bad argument or configuration value */
    HL_ERR_NOT_FOUND = 2,   /* no guest/host function of that name */
    HL_ERR_TYPE = 3,        /* argument count or type does not match the signature */
    HL_ERR_GUEST = 4,       /* the guest function returned an error (code: hl_last_error_code) */
    HL_ERR_ABORTED = 5,     /* the guest aborted (code: hl_last_error_code); sandbox Poisoned */
    HL_ERR_FAULT = 6,       /* the guest faulted (bad memory access, stack overflow, ...); Poisoned */
    HL_ERR_PROTOCOL = 7,    /* the guest broke the boundary protocol; Poisoned */
    HL_ERR_STATE = 8,       /* the sandbox is not Ready (Poisoned or Unrecoverable) */
    HL_ERR_NO_MEMORY = 9,   /* host memory or address space ran out */
    HL_ERR_HYPERVISOR = 10, /* KVM is missing or an operation on it failed */
    HL_ERR_BAD_GUEST = 11,  /* the guest ELF is malformed or incompatible */
    HL_ERR_IO = 12,         /* reading or writing a file the caller named (guest, snapshot
                               * file, mapped file, core directory) */
    HL_ERR_CANCELLED = 13,  /* the call was interrupted or ran out of time; Poisoned */
    HL_ERR_SYSTEM = 14,     /* an operating-system facility other than KVM or a file the
                               * caller named failed: memfd, sealing, timers, signals,
                               * seccomp, threads */
    HL_ERR_TOO_LARGE = 15,  /* a value or request exceeds a buffer or limit the configuration
                               * sets, e.g. arguments that do not fit the input buffer */
} hl_status;

/* "HL_OK", "HL_ERR_TYPE", ... */
HL_API const char *hl_status_name(hl_status st);

typedef enum hl_state {
    HL_STATE_READY = 0,         /* calls may be made */
    HL_STATE_POISONED = 1,      /* a call failed in a way that left the guest in an unknown state */
    HL_STATE_UNRECOVERABLE = 2, /* only hl_sandbox_free works */
} hl_state;

/* Text of the last failure on sb (""), or with sb NULL the calling thread's last failed
 * sandbox creation. Valid until the next call on sb (or creation on this thread). */
HL_API const char *hl_last_error(const hl_sandbox *sb);
/* The guest's code for HL_ERR_GUEST and HL_ERR_ABORTED, else 0. */
HL_API int hl_last_error_code(const hl_sandbox *sb);
/* For HL_ERR_GUEST and HL_ERR_ABORTED, the guest's own message: the part of hl_last_error
 * after the library's "guest function 'F' failed with code N: " (or "guest aborted with code
 * N: "); else "". Valid as long as hl_last_error(sb). */
HL_API const char *hl_last_guest_message(const hl_sandbox *sb);

/* ---- configuration ------------------------------------------------------------------- */

/* Sizes in bytes; each setter refuses values outside [MIN, MAX] with HL_ERR_INVALID_ARG and
 * a message naming the bound. Sizes are rounded up to whole pages. A guest may declare the
 * stack and heap it wants (HL_GUEST_DEFAULTS); they apply where the configuration did not call
 * the setter, and a declaration outside [MIN, MAX] fails creation with HL_ERR_BAD_GUEST. */
#define HL_HEAP_MIN (64u << 10)
#define HL_HEAP_MAX (256u << 20)
#define HL_HEAP_DEFAULT (4u << 20)
#define HL_SCRATCH_MIN (64u << 10) /* scratch: the guest's stack */
#define HL_SCRATCH_MAX (64u << 20)
#define HL_SCRATCH_DEFAULT (256u << 10)
#define HL_BUFFER_MIN (16u << 10) /* input and output buffers */
#define HL_BUFFER_MAX (16u << 20)
#define HL_BUFFER_DEFAULT (256u << 10)

/* Allocates a configuration holding the defaults and the default print function (guest
 * stdout/stderr to the host's stdout). Returns NULL only if memory is exhausted. */
HL_API hl_config *hl_config_new(void);
/* Frees cfg. Sandboxes made from it keep working (they copy what they need). */
HL_API void hl_config_free(hl_config *cfg);
/* Text of the last failed configuration call on cfg ("" if none). */
HL_API const char *hl_config_error(const hl_config *cfg);

HL_API hl_status hl_config_set_heap_size(hl_config *cfg, size_t bytes);
HL_API hl_status hl_config_set_scratch_size(hl_config *cfg, size_t bytes);
HL_API hl_status hl_config_set_input_size(hl_config *cfg, size_t bytes);
HL_API hl_status hl_config_set_output_size(hl_config *cfg, size_t bytes);

/* Limits per guest call on the host calls a guest makes and on the bytes it prints and logs
 * (defaults: HL_MAX_HOST_CALLS_DEFAULT, HL_MAX_OUTPUT_DEFAULT). A call that goes beyond
 * either fails with HL_ERR_CANCELLED naming the limit, and its sandbox is Poisoned. Abort,
 * error and log messages are each cut at HL_MAX_MESSAGE bytes. */
#define HL_MAX_HOST_CALLS_DEFAULT 1000000u
#define HL_MAX_OUTPUT_DEFAULT (64u << 20)
HL_API hl_status hl_config_set_limits(hl_config *cfg, uint64_t max_host_calls, uint64_t max_output_bytes);

/* A time limit for every guest call of sandboxes made from cfg, in milliseconds (0, the
 * default: none). A call that runs longer is stopped like hl_sandbox_interrupt does and
 * fails with HL_ERR_CANCELLED ("... timed out after N ms"). */
HL_API hl_status hl_config_set_timeout(hl_config *cfg, uint64_t ms);

/* A time limit for the guest's initialisation (its hl_guest_main, run inside
 * hl_sandbox_new_from_file/_memory) in milliseconds; 0: none. The default,
 * HL_INIT_TIMEOUT_DEFAULT, holds on every machine: raise it where guests run much slower
 * (software emulation is ~100 times slower than KVM). An initialisation that runs longer is
 * stopped and the creation fails with HL_ERR_CANCELLED ("... guest initialisation timed out
 * after N ms"). hl_config_set_timeout does not apply to initialisation. */
#define HL_INIT_TIMEOUT_DEFAULT 10000u
HL_API hl_status hl_config_set_init_timeout(hl_config *cfg, uint64_t ms);
/* The initialisation time limit of cfg in milliseconds (0 for a NULL cfg). */
HL_API uint64_t hl_config_init_timeout(const hl_config *cfg);

/* What guests of sandboxes made from cfg get from clock_gettime, gettimeofday, time, clock,
 * times, nanosleep and clock_nanosleep (src/guest/time.c). Every read is the guest's own
 * rdtsc scaled by what the host writes into its meta page when the VM starts and after every
 * restore: no VM exit. The host's clocks are read then without a system call (vDSO).
 *   HL_CLOCK_REAL (the default): the host's CLOCK_REALTIME and CLOCK_MONOTONIC (to within a
 *     few microseconds; re-anchored at each restore), process time since the sandbox was
 *     created, and sleeps wait (spinning: the call's time limit still applies). If KVM
 *     does not tell the TSC frequency, guests get HL_CLOCK_OFF instead.
 *   HL_CLOCK_FROZEN: one fixed instant, the same in every sandbox, call and restore:
 *     CLOCK_REALTIME 2000-01-01 00:00:00 UTC (946684800 s), CLOCK_MONOTONIC 1 s, process
 *     time 0; sleeps return at once.
 *   HL_CLOCK_OFF: every clock function fails with ENOSYS (time() returns -1).
 * A guest that can read a clock can measure how long things take, itself and what the host
 * does meanwhile: FROZEN and OFF take that away from the SDK's functions, but a guest can
 * still execute rdtsc itself (docs/security.md). Entropy (getentropy, arc4random) is given in
 * every mode. Returns HL_ERR_INVALID_ARG for another value (cfg unchanged, hl_config_error
 * says why). Sandboxes take the setting when they are created. */
typedef enum hl_clock_mode { HL_CLOCK_REAL = 0, HL_CLOCK_FROZEN = 1, HL_CLOCK_OFF = 2 } hl_clock_mode;
HL_API hl_status hl_config_set_clock(hl_config *cfg, hl_clock_mode mode);

/* A blob the guest can read (hl_guest_init_data), copied now, placed read-only in every
 * sandbox made from cfg, and part of its snapshots. At most HL_INIT_DATA_MAX bytes; len 0
 * removes it. */
#define HL_INIT_DATA_MAX (64u << 20)
HL_API hl_status hl_config_set_init_data(hl_config *cfg, const void *data, size_t len);

/* Maps the host file at path read-only into every sandbox made from cfg, under label (1..47
 * bytes, unique); the guest finds it with hl_guest_file(label), or opens it as a file whose
 * path is the label (open, fopen: docs/guest.md "Files"). The file is opened now and shared
 * with the page cache, never copied; the guest cannot write it (a write is a fault). At most
 * HL_MAX_FILES (32) files of 0..HL_FILE_MAX bytes each. The file must not shrink while
 * sandboxes use it. Snapshots keep the files they were taken with mapped. */
#define HL_FILE_MAX (1u << 30)
HL_API hl_status hl_config_map_file(hl_config *cfg, const char *path, const char *label);

/* Receives what the guest writes to stdout (stream 1) or stderr (stream 2). The default
 * writes both to the host's stdout. */
typedef void (*hl_print_fn)(void *user, int stream, const char *data, size_t len);
HL_API hl_status hl_config_set_print(hl_config *cfg, hl_print_fn fn, void *user);

/* Receives guest log records; level is an hl_log_level; msg is NUL-terminated. Without a
 * log function, log records are dropped. */
typedef void (*hl_log_fn)(void *user, int level, const char *msg, const char *file, uint32_t line);
HL_API hl_status hl_config_set_log(hl_config *cfg, hl_log_fn fn, void *user);

/* Crash dumps (opt-in, off by default): when a guest call or initialisation ends in a guest
 * fault (HL_ERR_FAULT: bad memory access, stack overflow, invalid instruction, ...), write an
 * ELF core file of the guest (registers and mapped memory) into directory dir, to open with
 * `gdb guest.elf core` (docs/coredump.md). The file is named
 * hyperlight-<pid>-<counter>-<unix time>.core, created new (never overwriting, never through
 * a symlink) with mode 0600; the call's error text then ends in " (core dump: PATH)", or in
 * " (core dump failed: REASON)" if it could not be written (the call's status is HL_ERR_FAULT
 * either way). dir must exist and be a writable directory now, else HL_ERR_INVALID_ARG and
 * the setting is unchanged; it is kept as an absolute path of at most HL_CORE_DIR_MAX bytes.
 * NULL or "" turns dumps off. Sandboxes take the setting when they are created. */
#define HL_CORE_DIR_MAX 255
HL_API hl_status hl_config_set_core_dir(hl_config *cfg, const char *dir);

/* Confinement (opt-in, off by default). With on, every sandbox made from cfg gets a worker
 * thread of its own. Each hl_call on it runs there, host functions and print and log
 * functions included, and so does the guest's initialisation (inside
 * hl_sandbox_new_from_file/_memory), under a seccomp filter that allows only the system
 * calls running the vCPU needs plus those declared below. The thread calling hl_call is
 * never confined; it waits for the worker. hl_sandbox_free stops and joins the worker. A
 * system call that is not allowed is not made: it returns -1 with errno EPERM, the guest
 * call is cancelled (hl_host_call_cancelled becomes true), and when the host function
 * returns the call fails with HL_ERR_CANCELLED and the sandbox is Poisoned
 * (hl_sandbox_restore makes it Ready); during initialisation, the creation fails. Cannot
 * be combined with hl_config_set_core_dir (creation fails with HL_ERR_INVALID_ARG). Linux
 * x86-64 only. docs/confinement.md has the allowed system calls, the error texts, what
 * confinement protects against and what it costs. */
HL_API hl_status hl_config_set_confinement(hl_config *cfg, bool on);
/* Declares the system calls host function `name` (registered in cfg before) makes, as
 * x86-64 numbers from <sys/syscall.h> (SYS_openat, SYS_read, ...); replaces its earlier
 * declaration (n = 0: none); registering the function again clears it. An unknown name is
 * HL_ERR_NOT_FOUND, a number that is not a system call HL_ERR_INVALID_ARG. A seccomp filter
 * is per thread, not per function: a confined sandbox allows, during the whole call, the
 * union of what its host functions declare. */
HL_API hl_status hl_config_set_host_fn_syscalls(hl_config *cfg, const char *name, const int *nrs, int n);
/* Adds system calls every confined sandbox of cfg allows, for the print and log functions
 * (which also run on the worker). */
HL_API hl_status hl_config_allow_syscalls(hl_config *cfg, const int *nrs, int n);

/* ---- host functions ------------------------------------------------------------------ */

/* A host function: called on the thread running hl_call (for a confined sandbox: its worker
 * thread, see hl_config_set_confinement) while the guest waits. args has
 * nargs values matching the registered parameter types (strings and bytes point into memory
 * valid until the function returns). Set *ret to a value of the registered return type
 * (strings/bytes must stay valid until the function returns: use hl_host_call_alloc for
 * memory that lives exactly that long). Return 0 on success; on failure return
 * hl_host_call_error(...): the guest receives the code and message as an error and the
 * sandbox stays Ready. */
typedef int (*hl_host_fn)(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret);

/* Registers (or replaces) host function `name` with parameter types params[0..nparams) and
 * return type ret. `user` is available to fn as hl_host_call_user(). Must precede the creation
 * of the sandboxes that use it. */
HL_API hl_status hl_config_register_host_fn(hl_config *cfg, const char *name, hl_type ret, const hl_type *params,
                                            int nparams, hl_host_fn fn, void *user);

/* What a host function may use of the call it serves: */
HL_API void *hl_host_call_user(hl_host_call *call);
/* Scratch memory released after the host function returns (NULL if exhausted). */
HL_API void *hl_host_call_alloc(hl_host_call *call, size_t bytes);
/* Records an error for the guest; returns code (which must not be 0) for `return`. */
HL_API int hl_host_call_error(hl_host_call *call, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* True once the guest call this host function serves was interrupted or timed out; a long
 * host function should then return early. The call ends as cancelled when it returns. */
HL_API bool hl_host_call_cancelled(hl_host_call *call);

/* ---- sandboxes ----------------------------------------------------------------------- */

/* Creates a sandbox from the guest ELF at `path` (or `len` bytes at `elf`): builds its
 * memory, creates the VM, runs the guest's initialisation. On HL_OK *out is a Ready sandbox;
 * otherwise *out is NULL and hl_last_error(NULL) says why. */
HL_API hl_status hl_sandbox_new_from_file(hl_sandbox **out, const char *path, const hl_config *cfg);
HL_API hl_status hl_sandbox_new_from_memory(hl_sandbox **out, const void *elf, size_t len, const hl_config *cfg);
/* Releases the VM and all memory of sb. NULL is a no-op. */
HL_API void hl_sandbox_free(hl_sandbox *sb);

HL_API hl_state hl_sandbox_state(const hl_sandbox *sb);

/* The guest's functions, as registered by its hl_guest_main. */
HL_API int hl_sandbox_fn_count(const hl_sandbox *sb);
/* Describes function i (0 <= i < count): *params points at *nparams types owned by sb. */
HL_API hl_status hl_sandbox_fn_info(const hl_sandbox *sb, int i, const char **name, hl_type *ret,
                                    const hl_type **params, int *nparams);
/* The stack (scratch) and heap sizes of sb in bytes, as its guest finds them in its PEB: the
 * configuration's where it set them (hl_config_set_scratch_size, hl_config_set_heap_size),
 * else the sizes the guest declares (HL_GUEST_DEFAULTS in hyperlight_guest.h), else the
 * defaults; a sandbox made from a snapshot has the snapshot's. Either pointer may be NULL.
 * HL_ERR_INVALID_ARG if sb is NULL. */
HL_API hl_status hl_sandbox_sizes(const hl_sandbox *sb, uint64_t *stack_bytes, uint64_t *heap_bytes);

/* ---- calls --------------------------------------------------------------------------- */

/* Calls guest function `name` with args[0..nargs) and expects a value of type ret_type
 * (HL_VOID for none). On HL_OK *ret holds the value; a string or bytes return points into
 * memory owned by sb, valid until the next call on sb or its free. Argument count and types
 * are checked against the guest's registered signature before the guest runs. */
HL_API hl_status hl_call(hl_sandbox *sb, const char *name, hl_type ret_type, const hl_value *args, int nargs,
                         hl_value *ret);

/* Sets the time limit for the following calls on sb (0: none), overriding the
 * configuration's. */
HL_API hl_status hl_sandbox_set_timeout(hl_sandbox *sb, uint64_t ms);

/* Stops the guest call running in sb, from any thread, promptly: also a guest that spins
 * without ever exiting, and one inside a host function (which may poll
 * hl_host_call_cancelled; the call ends when it returns). The call fails with
 * HL_ERR_CANCELLED and sb becomes Poisoned (hl_sandbox_restore makes it Ready). An interrupt when
 * no call runs does nothing: it never cancels a later call. Safe to call concurrently with
 * anything but hl_sandbox_free of sb. Uses the signal SIGRTMIN+1 (a handler is installed
 * once per process) to kick the thread running the vCPU out of KVM_RUN. */
HL_API void hl_sandbox_interrupt(hl_sandbox *sb);

/* ---- snapshots ----------------------------------------------------------------------- */

/* Captures sb's state between calls (memory, vCPU, layout, function tables) as a new
 * snapshot. sb must be Ready. The snapshot keeps only the pages that differ from the state
 * sb was created or last restored from, and shares the rest with it. A snapshot is
 * immutable, may be used from any thread, and lives until hl_snapshot_free and the last
 * sandbox using it are gone. */
HL_API hl_status hl_snapshot_take(hl_sandbox *sb, hl_snapshot **out);
/* Drops the caller's reference to snap. NULL is a no-op. */
HL_API void hl_snapshot_free(hl_snapshot *snap);
/* The generation of snap (1 for the first snapshot of a sandbox made from an ELF; each
 * snapshot taken from a sandbox gets one more than the snapshot the sandbox's state came
 * from: the one it was made from or last restored to, or the one it took last). After a
 * restore to an older snapshot, a new snapshot may share its generation with one taken
 * before: generations count depth, they are not unique. The guest reads the generation of
 * the snapshot it was last restored from with hl_guest_generation(). */
HL_API uint64_t hl_snapshot_generation(const hl_snapshot *snap);

/* Puts sb (Ready or Poisoned) back to snap, which must have been taken from sb or from a
 * sandbox with the same layout and image (else HL_ERR_INVALID_ARG, sb unchanged). After it,
 * the guest sees exactly snap's memory, its registers are snap's, its buffers are empty and
 * sb is Ready. Cost is proportional to the pages written since sb last equalled snap. If the
 * restore itself fails, sb is Unrecoverable. */
HL_API hl_status hl_sandbox_restore(hl_sandbox *sb, hl_snapshot *snap);

/* Creates a sandbox in snap's state, sharing snap's memory read-only (only pages the guest
 * then writes are its own). cfg supplies host functions and the print and log functions;
 * its sizes are ignored (the snapshot's layout applies). The host functions snap recorded
 * must all be registered in cfg with the same signatures, else HL_ERR_INVALID_ARG naming
 * each missing or different one. */
HL_API hl_status hl_sandbox_new_from_snapshot(hl_sandbox **out, hl_snapshot *snap, const hl_config *cfg);

/* ---- pools --------------------------------------------------------------------------- */

/* A pool of sandboxes made from snap with cfg (copied), ready ahead of need so that taking
 * one costs no VM creation. With background, a thread creates them and keeps `size` ready
 * besides those out with users (under steady get/put load it makes sandboxes the puts then
 * free: a server should use background = false, the pool is then a free list of `size`);
 * without, hl_pool_new creates all `size` before it returns. */
HL_API hl_status hl_pool_new(hl_pool **out, hl_snapshot *snap, const hl_config *cfg, int size, bool background);
/* Takes a Ready sandbox in snap's state; when none is ready, creates one (as
 * hl_sandbox_new_from_snapshot). Thread-safe. */
HL_API hl_status hl_pool_get(hl_pool *pool, hl_sandbox **out);
/* Gives sb back: it is restored to the pool's snapshot (memory, registers, buffers: nothing
 * of its last user remains; x87/SSE registers are reset by the guest before its next call,
 * and never recorded in a snapshot) and kept if the pool has room, else freed. If the restore fails
 * sb is freed and its status returned. Thread-safe. */
HL_API hl_status hl_pool_put(hl_pool *pool, hl_sandbox *sb);
/* Sandboxes ready now. */
HL_API int hl_pool_ready(hl_pool *pool);
/* Stops the filler and frees the ready sandboxes. Sandboxes taken out stay valid. NULL is fine. */
HL_API void hl_pool_free(hl_pool *pool);

/* ---- snapshot files ------------------------------------------------------------------ */

/* Saves snap to the file at path (written to a temporary name, then renamed): a versioned
 * header (magic, format and ABI versions, sizes, checksum), the layout, vCPU state and
 * function tables, then the memory image, page-aligned so that loading maps it. On failure
 * hl_last_error(NULL) says why. */
HL_API hl_status hl_snapshot_save(const hl_snapshot *snap, const char *path);
/* Loads a snapshot saved by hl_snapshot_save. The header and checksum are verified before
 * anything is used; a truncated, corrupt or incompatible file gives HL_ERR_BAD_GUEST (or
 * HL_ERR_IO) and hl_last_error(NULL) names the problem. The memory is mapped from the file,
 * so processes loading the same file share its pages in the page cache. */
HL_API hl_status hl_snapshot_load(hl_snapshot **out, const char *path);
/* The first 8 bytes of every snapshot file, in every format version (a file starting with
 * them is a snapshot file, not an ELF). */
#define HL_SNAPSHOT_MAGIC "HLSNAP01"

/* ---- utilities ----------------------------------------------------------------------- */

/* Writes "name(i32, string) -> string" for a signature into buf; returns buf. (The name of
 * one type: hl_type_name, in hyperlight/value.h.) */
HL_API char *hl_signature_format(char *buf, size_t len, const char *name, hl_type ret, const hl_type *params,
                                 int nparams);

#ifdef __cplusplus
}
#endif
#endif

/* hyperlight_guest.h - the guest SDK: write functions a hyperlight-c host can call.
 *
 * A guest is a freestanding C program linked with libhyperlight_guest.a and picolibc
 * (build it with `hyperlight-cc -o guest.elf guest.c`). It defines hl_guest_main(), which
 * registers the guest's functions and returns; the SDK then serves calls from the host.
 * stdout/stderr, malloc/free and the rest of picolibc work as usual: output travels to the
 * host with the result of the current call. */
#ifndef HYPERLIGHT_GUEST_H
#define HYPERLIGHT_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hyperlight/abi.h"
#include "hyperlight/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defined by the guest: registers its functions. Runs once, when the sandbox is created. */
void hl_guest_main(void);

/* A guest function. args holds argc values of the registered types; strings and bytes are
 * valid until the function returns. Set *ret (of the registered return type; nothing for
 * void) and return 0, or return hl_error(...) to fail the call with a code and message.
 * A string or bytes in *ret must stay valid after the function returns (static, heap, or an
 * argument); memory obtained from hl_ret_alloc is freed by the SDK once the result is sent. */
typedef int (*hl_guest_fn)(const hl_value *args, int argc, hl_value *ret);

/* Registers `name` with return type ret and argc parameter types (variadic hl_type values).
 * Returns 0, or -1 if the guest registered HL_MAX_FUNCS functions already (the SDK's own
 * functions do not count), the name is invalid or duplicated, or a type is invalid (the host
 * then fails sandbox creation with the reason). */
int hl_guest_register(const char *name, hl_guest_fn fn, hl_type ret, int argc, ...);

/* Calls host function `name` with args[0..nargs) expecting ret_type: the arguments in the
 * order of the host's hl_call, result last. On success returns 0 and sets *ret
 * (strings/bytes in memory from malloc, which the caller frees with hl_value_free). On
 * failure returns the host's nonzero code (or HL_GUEST_ERR_HOST_FN when the host refused
 * the call: unknown name, wrong types) and hl_host_error() gives the text. */
int hl_call_host(const char *name, hl_type ret_type, const hl_value *args, int nargs, hl_value *ret);
const char *hl_host_error(void);
void hl_value_free(hl_value *v);

/* The host functions the embedder registered, as the guest may call them: name, return type
 * and parameter types. The SDK asks the host for the table once per guest call that needs
 * it (one exit) and keeps it until that call returns, so it always describes the sandbox's
 * own configuration, also after a restore from a snapshot made elsewhere. */
typedef struct hl_host_fn_info {
    const char *name;
    hl_type ret;
    int nparams;
    hl_type params[HL_MAX_ARGS];
} hl_host_fn_info;
/* The number of host functions, or -1 if the table could not be read (hl_host_error says why). */
int hl_host_fn_count(void);
/* Entry i (0 <= i < hl_host_fn_count()), or NULL when i is out of range. */
const hl_host_fn_info *hl_host_fn_at(int i);
/* The entry named name, or NULL when the host has no such function. */
const hl_host_fn_info *hl_host_fn_lookup(const char *name);

/* Sets the current call's error message and returns code (which must not be 0). */
int hl_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Ends the current call with code and message; the host reports HL_ERR_ABORTED and the
 * sandbox is Poisoned. Does not return. */
void hl_abort(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

/* Memory for a string/bytes return value, freed by the SDK after the result is sent. */
void *hl_ret_alloc(size_t bytes);

/* Log record at level (hl_log_level) from file:line; delivered with the current call. */
void hl_log(int level, const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define HL_TRACE(...) hl_log(HL_LOG_TRACE, __FILE__, __LINE__, __VA_ARGS__)
#define HL_DEBUG(...) hl_log(HL_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
#define HL_INFO(...) hl_log(HL_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define HL_WARN(...) hl_log(HL_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define HL_ERROR(...) hl_log(HL_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define HL_CRITICAL(...) hl_log(HL_LOG_CRITICAL, __FILE__, __LINE__, __VA_ARGS__)

/* The init data the host gave (hl_config_set_init_data): read-only; NULL and *len 0 if none. */
const void *hl_guest_init_data(size_t *len);
/* The host file mapped under label (hl_config_map_file): read-only; NULL if there is none.
 * An empty file gives a non-NULL address that must not be read, and *len 0. */
const void *hl_guest_file(const char *label, size_t *len);
/* The mapped files are also a read-only file system for open/read/pread/lseek/close/fstat/
 * stat/access and so picolibc's fopen family (src/guest/files.c, docs/guest.md "Files"):
 * descriptors 0..HL_GUEST_OPEN_MAX-1, of which 0, 1 and 2 are stdin, stdout and stderr. */
#define HL_GUEST_OPEN_MAX 64

/* The PEB the host wrote (sizes and addresses of the guest's memory). */
const struct hl_peb *hl_guest_peb(void);
/* The guest's stack: [*lo, *hi), from the PEB (the page below *lo is an unmapped guard).
 * For interpreters that bound their recursion by the stack left. */
void hl_guest_stack_bounds(uintptr_t *lo, uintptr_t *hi);

/* Declares, once per guest at file scope, the stack and heap (bytes) the guest wants when the
 * embedder does not set them (hl_config_set_scratch_size, hl_config_set_heap_size): e.g.
 * HL_GUEST_DEFAULTS(1 << 20, 32 << 20) for an interpreter. 0 keeps the host's default. The
 * values go into an ELF note (HL_NOTE_TYPE_DEFAULTS, hyperlight/abi.h) the host reads before it
 * lays out memory; they must lie within the host's limits (HL_SCRATCH_MIN..MAX and
 * HL_HEAP_MIN..MAX in hyperlight.h) or creation fails. A second declaration is a link error. */
struct hl_guest_defaults_note {
    uint32_t namesz, descsz, type;
    char name[12];    /* HL_NOTE_NAME and its NUL, padded to 4 bytes */
    uint32_t desc[4]; /* stack low, stack high, heap low, heap high */
};
#define HL_GUEST_DEFAULTS(stack_bytes, heap_bytes)                                      \
    __attribute__((used, section(".note.hyperlight"), aligned(4)))                      \
    const struct hl_guest_defaults_note hl_guest_defaults_note = {                      \
        sizeof HL_NOTE_NAME,                                                            \
        HL_NOTE_DEFAULTS_DESC,                                                          \
        HL_NOTE_TYPE_DEFAULTS,                                                          \
        HL_NOTE_NAME,                                                                   \
        { (uint32_t)(uint64_t)(stack_bytes), (uint32_t)((uint64_t)(stack_bytes) >> 32), \
          (uint32_t)(uint64_t)(heap_bytes), (uint32_t)((uint64_t)(heap_bytes) >> 32) }  \
    }
/* The snapshot generation this guest's memory was last restored from (0: never). */
uint64_t hl_guest_generation(void);

#ifdef __cplusplus
}
#endif
#endif

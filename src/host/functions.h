/* functions.h - guest and host function tables (functions.c): signatures, lookup, checks. */
#ifndef HL_FUNCTIONS_H
#define HL_FUNCTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hyperlight.h"
#include "wire.h"

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

typedef struct hl_guestfn {
    char *name;
    bool hidden; /* reserved by the SDK (HL_RESERVED_PREFIX): callable, not listed */
    hl_type ret;
    int nparams;
    hl_type params[HL_MAX_ARGS];
} hl_guestfn;

const hl_hostfn *hl_hostfn_find(const hl_hostfn *fns, int n, const char *name);
const hl_guestfn *hl_guestfn_find(const hl_guestfn *fns, int n, const char *name);
/* Checks (args)[0..nargs) against a signature; NULL if they match, else (msg) holding the
 * reason ("wrong number of arguments to KIND function 'NAME': ..."). */
const char *hl_args_check(char *msg, size_t len, const char *kind, const char *name, const hl_type *params,
                          int nparams, const hl_value *args, int nargs);
/* Decodes the guest's FUNCS record (hostile input) into a new table *fns of *n entries.
 * HL_ERR_PROTOCOL with the reason in (err), or HL_ERR_NO_MEMORY. */
hl_status hl_guestfns_read(const hl_rec *rec, hl_guestfn **fns, int *n, char *err);
hl_status hl_guestfns_copy(hl_guestfn **dst, const hl_guestfn *src, int n);
void hl_guestfns_free(hl_guestfn *fns, int n);

#endif

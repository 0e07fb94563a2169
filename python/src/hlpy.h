/* hlpy.h - what the C files of the extension module hyperlight._hyperlight share: the
 * objects, the error classes, value conversion and the per-call context of host functions. */
#ifndef HLPY_H
#define HLPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "hyperlight.h"

/* ---- errors (errors.c) ---- */

/* hyperlight.Error and its subclasses; SandboxClosed and Busy have no hl_status. */
extern PyObject *hlpy_Error, *hlpy_SandboxClosed, *hlpy_Busy;
int hlpy_errors_init(PyObject *module);
/* Raises the class of st with message msg (and, for guest errors, code and guest_msg as the
 * exception's .code and .guest_message); returns NULL. */
PyObject *hlpy_raise(hl_status st, const char *msg, int code, const char *guest_msg);
/* The same with the text of sb's last failure (sb NULL: the thread's last creation failure). */
PyObject *hlpy_raise_last(const hl_sandbox *sb, hl_status st);

/* ---- values (convert.c) ---- */

/* Parses "i32", "string", ... into *out; -1 with ValueError for an unknown name. */
int hlpy_type_from_name(PyObject *name, hl_type *out);
/* Converts argument `index` (1-based) of fname, o, into a value of type t. Strings point into
 * o; a bytes-like o other than bytes is copied into a new bytes object left in *tmp, which
 * the caller releases after the call. Returns 0, or -1 with TypeError/OverflowError/ValueError. */
int hlpy_to_value(PyObject *o, hl_type t, hl_value *out, PyObject **tmp, const char *fname, int index);
/* A new Python object for v: int, float, bool, str, bytes or None. */
PyObject *hlpy_from_value(const hl_value *v);

/* ---- configuration (config.c) ---- */

/* Builds a configuration from the keyword arguments the types share: heap, stack (bytes),
 * timeout (seconds), host_functions (a sequence of (name, callable, return type, parameter
 * types)), print and log (callables or None). *keep receives the object that holds the
 * Python callables the configuration points at; it must outlive every sandbox made from the
 * configuration. Returns NULL with an exception set on failure. */
hl_config *hlpy_config_build(PyObject *heap, PyObject *stack, PyObject *timeout, PyObject *host_functions,
                             PyObject *print, PyObject *log, PyObject **keep);
/* Maps files (None, or a sequence of (label, path) pairs of str) into cfg
 * (hl_config_map_file). Returns -1 with an exception set on failure. */
int hlpy_config_map_files(hl_config *cfg, PyObject *files);
/* Readies the type of the `keep` objects. */
int hlpy_config_init(void);
/* Parses a timeout in seconds (None, int or float >= 0) into milliseconds, rounding up. */
int hlpy_timeout_ms(PyObject *timeout, uint64_t *ms);

/* What a call in progress on this thread shares with its host, print and log functions: an
 * exception that is not an Exception (KeyboardInterrupt, SystemExit) raised inside one of
 * them is kept here and raised when the call returns. Calls nest (a host function may call
 * another sandbox): each keeps the context it replaced in prev. */
typedef struct hlpy_callctx {
    hl_sandbox *sb; /* NULL while a sandbox is created */
    PyObject *exc_type, *exc_value, *exc_tb;
    struct hlpy_capture *cap; /* NULL: the guest's output goes to the print function */
    struct hlpy_callctx *prev;
} hlpy_callctx;

/* The guest's stdout and stderr kept during Sandbox.run_code (not given to the print
 * function): lists of str made on the first text, limit bytes of UTF-8 in all; the text
 * beyond it is cut at a character boundary, over set and the call interrupted. */
typedef struct hlpy_capture {
    PyObject *out, *err;
    Py_ssize_t left;
    int over;
} hlpy_capture;
void hlpy_ctx_enter(hlpy_callctx *ctx, hl_sandbox *sb);
/* Leaves the context; returns -1 with the kept exception raised if there is one, else 0. */
int hlpy_ctx_leave(hlpy_callctx *ctx);

/* ---- objects (sandbox.c, snapshot.c) ---- */

typedef struct {
    PyObject_HEAD hl_snapshot *snap;
} hlpy_Snapshot;
extern PyTypeObject hlpy_SnapshotType;

extern PyTypeObject hlpy_SandboxType;
extern PyTypeObject hlpy_PoolType;
/* A new Sandbox object owning sb (freed on failure), holding keep and pool (may be NULL). */
PyObject *hlpy_sandbox_wrap(hl_sandbox *sb, PyObject *keep, PyObject *pool);
/* The handle of Sandbox o, NULL with SandboxClosed or Busy raised if it cannot be used now. */
hl_sandbox *hlpy_sandbox_take(PyObject *o);
/* Forgets the handle of Sandbox o (it now belongs to someone else, e.g. a pool). */
void hlpy_sandbox_forget(PyObject *o);
PyObject *hlpy_sandbox_pool(PyObject *o);

/* Runs `stmt` with the GIL released. */
#define HLPY_NOGIL(stmt)             \
    do {                             \
        Py_BEGIN_ALLOW_THREADS stmt; \
        Py_END_ALLOW_THREADS         \
    } while (0)

#endif

/* sandbox.c - hyperlight._hyperlight.Sandbox: one hl_sandbox, its guest functions'
 * signatures, calls with the GIL released, interrupts, snapshots. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hlpy.h"
#include "sigint.h"

typedef struct {
    hl_type ret;
    int nparams;
    hl_type params[HL_MAX_ARGS];
} signature;

typedef struct {
    PyObject_HEAD hl_sandbox *sb;
    PyObject *keep;  /* the callables the sandbox's configuration points at */
    PyObject *pool;  /* the _hyperlight.Pool it was taken from, or NULL */
    PyObject *names; /* guest function name -> index into sigs */
    signature *sigs;
    int busy; /* a call runs (read and written with the GIL held) */
} Sandbox;

/* Reads the guest's function table into names and sigs. */
static int read_functions(Sandbox *self)
{
    int n = hl_sandbox_fn_count(self->sb);
    PyObject *names = PyDict_New();
    signature *sigs = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof *sigs);
    if (!names || !sigs) goto fail;
    for (int i = 0; i < n; i++) {
        const char *name;
        const hl_type *params;
        PyObject *key, *idx;
        hl_status st = hl_sandbox_fn_info(self->sb, i, &name, &sigs[i].ret, &params, &sigs[i].nparams);
        if (st != HL_OK) {
            hlpy_raise_last(self->sb, st);
            goto fail;
        }
        memcpy(sigs[i].params, params, (size_t)sigs[i].nparams * sizeof *params);
        key = PyUnicode_FromString(name);
        idx = PyLong_FromLong(i);
        if (!key || !idx || PyDict_SetItem(names, key, idx) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(idx);
            goto fail;
        }
        Py_DECREF(key);
        Py_DECREF(idx);
    }
    Py_XSETREF(self->names, names);
    PyMem_Free(self->sigs);
    self->sigs = sigs;
    return 0;
fail:
    if (!PyErr_Occurred()) PyErr_NoMemory();
    Py_XDECREF(names);
    PyMem_Free(sigs);
    return -1;
}

PyObject *hlpy_sandbox_wrap(hl_sandbox *sb, PyObject *keep, PyObject *pool)
{
    Sandbox *self = PyObject_GC_New(Sandbox, &hlpy_SandboxType);
    if (!self) {
        hl_sandbox_free(sb);
        return NULL;
    }
    self->sb = sb;
    self->keep = Py_XNewRef(keep);
    self->pool = Py_XNewRef(pool);
    self->names = NULL;
    self->sigs = NULL;
    self->busy = 0;
    PyObject_GC_Track(self);
    if (read_functions(self) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* The sandbox from an ELF path, ELF bytes, or a snapshot, with the GIL released. */
static hl_status create(hl_sandbox **out, PyObject *source, const hl_config *cfg)
{
    hl_status st;
    hlpy_callctx ctx;
    PyObject *path = NULL;
    Py_buffer view;
    hlpy_ctx_enter(&ctx, NULL);
    if (PyObject_TypeCheck(source, &hlpy_SnapshotType)) {
        hl_snapshot *snap = ((hlpy_Snapshot *)source)->snap;
        if (!snap) {
            PyErr_SetString(hlpy_SandboxClosed, "the snapshot was closed");
            st = HL_ERR_INVALID_ARG;
        } else {
            HLPY_NOGIL(st = hl_sandbox_new_from_snapshot(out, snap, cfg));
        }
    } else if (!PyUnicode_Check(source) && PyObject_CheckBuffer(source)) {
        if (PyObject_GetBuffer(source, &view, PyBUF_SIMPLE) < 0) st = HL_ERR_INVALID_ARG;
        else {
            HLPY_NOGIL(st = hl_sandbox_new_from_memory(out, view.buf, (size_t)view.len, cfg));
            PyBuffer_Release(&view);
        }
    } else if (!PyUnicode_FSConverter(source, &path)) {
        PyErr_Format(PyExc_TypeError, "a guest is a path, bytes or a Snapshot, not %s", Py_TYPE(source)->tp_name);
        st = HL_ERR_INVALID_ARG;
    } else {
        HLPY_NOGIL(st = hl_sandbox_new_from_file(out, PyBytes_AS_STRING(path), cfg));
        Py_DECREF(path);
    }
    if (hlpy_ctx_leave(&ctx) < 0 && st == HL_OK) {
        hl_sandbox_free(*out);
        st = HL_ERR_CANCELLED;
    }
    return st;
}

static PyObject *sandbox_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = { "guest", "heap", "stack", "timeout", "host_functions", "print", "log", "files", NULL };
    PyObject *source, *heap = NULL, *stack = NULL, *timeout = NULL, *hostfns = NULL, *print = NULL, *log = NULL;
    PyObject *files = NULL, *keep = NULL, *res;
    hl_config *cfg;
    hl_sandbox *sb = NULL;
    hl_status st;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$OOOOOOO:Sandbox", kwlist, &source, &heap, &stack, &timeout,
                                     &hostfns, &print, &log, &files))
        return NULL;
    cfg = hlpy_config_build(heap, stack, timeout, hostfns, print, log, &keep);
    if (!cfg) return NULL;
    if (hlpy_config_map_files(cfg, files) < 0) {
        hl_config_free(cfg);
        Py_DECREF(keep);
        return NULL;
    }
    st = create(&sb, source, cfg);
    hl_config_free(cfg);
    if (st != HL_OK) {
        Py_DECREF(keep);
        return PyErr_Occurred() ? NULL : hlpy_raise_last(NULL, st);
    }
    res = hlpy_sandbox_wrap(sb, keep, NULL);
    Py_DECREF(keep);
    return res;
}

hl_sandbox *hlpy_sandbox_take(PyObject *o)
{
    Sandbox *self = (Sandbox *)o;
    if (!self->sb) {
        PyErr_SetString(hlpy_SandboxClosed, "the sandbox is closed");
        return NULL;
    }
    if (self->busy) {
        PyErr_SetString(hlpy_Busy, "the sandbox is running a call (one sandbox runs one call at a time)");
        return NULL;
    }
    return self->sb;
}

void hlpy_sandbox_forget(PyObject *o)
{
    Sandbox *self = (Sandbox *)o;
    self->sb = NULL;
    Py_CLEAR(self->pool);
}

PyObject *hlpy_sandbox_pool(PyObject *o) { return ((Sandbox *)o)->pool; }

/* A host function may hold its own sandbox: the cycle goes through keep. */
static int sandbox_traverse(Sandbox *self, visitproc visit, void *arg)
{
    Py_VISIT(self->keep);
    Py_VISIT(self->pool);
    return 0;
}

/* Frees the VM before what its configuration points at. */
static int sandbox_clear(Sandbox *self)
{
    hl_sandbox_free(self->sb); /* a sandbox of a pool is freed too: pools keep only those given back */
    self->sb = NULL;
    Py_CLEAR(self->keep);
    Py_CLEAR(self->pool);
    return 0;
}

static void sandbox_dealloc(Sandbox *self)
{
    PyObject_GC_UnTrack(self);
    sandbox_clear(self);
    Py_XDECREF(self->names);
    PyMem_Free(self->sigs);
    PyObject_GC_Del(self);
}

/* Converts the arguments of call(name, *args) for the signature of name into vals. */
static const signature *call_args(Sandbox *self, PyObject *const *args, Py_ssize_t nargs, hl_value *vals,
                                  PyObject **tmp, const char **namep)
{
    PyObject *idx;
    const signature *sig;
    const char *name;
    if (nargs < 1 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "call() needs the guest function's name (a str) first");
        return NULL;
    }
    name = *namep = PyUnicode_AsUTF8(args[0]); /* kept by the str: valid during the call */
    if (!name) return NULL;
    idx = PyDict_GetItemWithError(self->names, args[0]);
    if (!idx) {
        char msg[HL_MAX_MESSAGE];
        if (PyErr_Occurred()) return NULL;
        snprintf(msg, sizeof msg, "guest function '%s' not found", name);
        hlpy_raise(HL_ERR_NOT_FOUND, msg, 0, NULL);
        return NULL;
    }
    sig = &self->sigs[PyLong_AsLong(idx)];
    if (nargs - 1 != sig->nparams) {
        PyErr_Format(PyExc_TypeError, "%s() takes %d argument%s but %zd were given", name, sig->nparams,
                     sig->nparams == 1 ? "" : "s", nargs - 1);
        return NULL;
    }
    for (int i = 0; i < sig->nparams; i++)
        if (hlpy_to_value(args[i + 1], sig->params[i], &vals[i], &tmp[i], name, i + 1) < 0) return NULL;
    return sig;
}

/* Calls name with vals on sb, whose output goes to cap (NULL: the print function); the
 * result, or NULL with the exception raised. A guest error with code skip (0: none) is no
 * error: the result is None. */
static PyObject *call_guest(Sandbox *self, hl_sandbox *sb, const char *name, const signature *sig, hl_value *vals,
                            hlpy_capture *cap, int skip)
{
    PyObject *res = NULL;
    hl_value ret;
    hlpy_callctx ctx;
    hlpy_sigint si;
    hl_status st;
    int sigint, kept;
    self->busy = 1;
    hlpy_ctx_enter(&ctx, sb);
    ctx.cap = cap;
    hlpy_sigint_enter(&si, sb);
    HLPY_NOGIL(st = hl_call(sb, name, sig->ret, vals, sig->nparams, &ret));
    sigint = hlpy_sigint_leave(&si);
    kept = hlpy_ctx_leave(&ctx) < 0;
    if (kept) {
        /* a KeyboardInterrupt or SystemExit from a host, print or log function */
    } else if (sigint && st == HL_ERR_CANCELLED && PyErr_CheckSignals() < 0) {
        /* Ctrl-C: Python's SIGINT handler raised */
    } else if (skip && st == HL_ERR_GUEST && hl_last_error_code(sb) == skip) {
        res = Py_NewRef(Py_None);
    } else if (st != HL_OK) {
        hlpy_raise_last(sb, st);
    } else {
        res = hlpy_from_value(&ret); /* before anything else may run on sb */
    }
    self->busy = 0;
    return res;
}

static PyObject *sandbox_call(Sandbox *self, PyObject *const *args, Py_ssize_t nargs)
{
    hl_value vals[HL_MAX_ARGS];
    PyObject *tmp[HL_MAX_ARGS] = { 0 }, *res = NULL;
    const signature *sig;
    const char *name = NULL;
    hl_sandbox *sb = hlpy_sandbox_take((PyObject *)self);
    if (!sb) return NULL;
    sig = call_args(self, args, nargs, vals, tmp, &name);
    if (sig) res = call_guest(self, sb, name, sig, vals, NULL, 0);
    for (int i = 0; i < HL_MAX_ARGS; i++) Py_XDECREF(tmp[i]);
    return res;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The language guests' protocol (include/hyperlight/lang.h): Eval's error code for a value
 * without a JSON form. */
#define EVAL_NOT_JSON 2

static PyObject *joined(PyObject *list)
{
    if (!list) return PyUnicode_FromStringAndSize("", 0);
    PyObject *empty = PyUnicode_FromStringAndSize("", 0), *s = empty ? PyUnicode_Join(empty, list) : NULL;
    Py_XDECREF(empty);
    return s;
}

/* run_code(parts, timeout, usual, max_output, restore=None) -> (text, error, stdout, stderr, over, duration):
 * hyperlight.Interpreter's run in one call (python/hyperlight/interpreter.py, _call). Calls
 * the guest's Eval with each str of the tuple parts in turn, within timeout seconds (None: no
 * limit) for all of them, then sets the sandbox's timeout back to usual. The parts before the
 * last may have no JSON value; any other failure ends the run. The guest's output is kept,
 * max_output bytes at most (hlpy_capture). text: the last part's JSON text, or None; error:
 * the hyperlight.Error that ended the run, or None (anything else is raised, after the
 * timeout is back); duration: seconds from the first Eval to the end of the last. A run
 * without error is followed by hl_sandbox_restore to the Snapshot restore, if given; if that
 * fails the sandbox is closed (it is unrecoverable). */
static PyObject *sandbox_run_code(Sandbox *self, PyObject *const *args, Py_ssize_t nargs)
{
    static PyObject *eval_name;
    PyObject *parts, *text = NULL, *error = NULL, *out = NULL, *err = NULL, *res = NULL;
    PyObject *et = NULL, *ev = NULL, *tb = NULL;
    hlpy_capture cap = { NULL, NULL, 0, 0 };
    uint64_t ms, usual_ms;
    double limit_s = 0, t0, duration;
    Py_ssize_t n;
    hl_sandbox *sb;
    hl_status st;
    int retime;
    if (nargs < 4 || nargs > 5 || !PyTuple_Check(args[0]) || PyTuple_GET_SIZE(args[0]) < 1)
        return PyErr_Format(PyExc_TypeError,
                            "run_code(parts, timeout, usual, max_output, restore=None) needs a tuple of parts");
    if (nargs == 5 && args[4] != Py_None && !PyObject_TypeCheck(args[4], &hlpy_SnapshotType))
        return PyErr_Format(PyExc_TypeError, "run_code(): restore must be a Snapshot, not %s",
                            Py_TYPE(args[4])->tp_name);
    if (!eval_name && !(eval_name = PyUnicode_InternFromString("Eval"))) return NULL;
    parts = args[0];
    n = PyTuple_GET_SIZE(parts);
    cap.left = PyLong_AsSsize_t(args[3]);
    if (cap.left == -1 && PyErr_Occurred()) return NULL;
    if (hlpy_timeout_ms(args[1], &ms) < 0 || hlpy_timeout_ms(args[2], &usual_ms) < 0) return NULL;
    if (ms) limit_s = PyFloat_AsDouble(args[1]);
    if (!(sb = hlpy_sandbox_take((PyObject *)self))) return NULL;
    retime = ms != usual_ms || n > 1;
    if (retime && (st = hl_sandbox_set_timeout(sb, ms)) != HL_OK) return hlpy_raise_last(sb, st);
    t0 = seconds_now();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *argv[2] = { eval_name, PyTuple_GET_ITEM(parts, i) }, *tmp[HL_MAX_ARGS] = { 0 }, *r = NULL;
        hl_value vals[HL_MAX_ARGS];
        const char *name;
        const signature *sig = call_args(self, argv, 2, vals, tmp, &name);
        int last = i == n - 1;
        if (sig) r = call_guest(self, sb, name, sig, vals, &cap, last ? 0 : EVAL_NOT_JSON);
        for (int j = 0; j < HL_MAX_ARGS; j++) Py_XDECREF(tmp[j]);
        if (!r) break;
        if (last) {
            text = r;
        } else {
            Py_DECREF(r);
            if (ms) { /* what is left of the time limit, at least 1 ms */
                double left = limit_s - (seconds_now() - t0);
                hl_sandbox_set_timeout(sb, (uint64_t)ceil((left > 0.001 ? left : 0.001) * 1000.0));
            }
        }
    }
    duration = seconds_now() - t0;
    if (!text) {
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
    }
    if (retime) hl_sandbox_set_timeout(sb, usual_ms);
    if (et && !PyErr_GivenExceptionMatches(et, hlpy_Error)) { /* KeyboardInterrupt, SystemExit, ... */
        PyErr_Restore(et, ev, tb);                            /* takes the references */
        et = ev = tb = NULL;
        goto out;
    }
    error = ev;
    ev = NULL;
    if (!error && nargs == 5 && args[4] != Py_None) {
        hl_snapshot *snap = ((hlpy_Snapshot *)args[4])->snap;
        st = HL_ERR_INVALID_ARG;
        self->busy = 1;
        if (snap) HLPY_NOGIL(st = hl_sandbox_restore(sb, snap));
        self->busy = 0;
        if (st != HL_OK) {
            hl_sandbox_free(sb);
            self->sb = NULL;
        }
    }
    if ((out = joined(cap.out)) && (err = joined(cap.err)))
        res = Py_BuildValue("(OOOOOd)", text ? text : Py_None, error ? error : Py_None, out, err,
                            cap.over ? Py_True : Py_False, duration);
out:
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(tb);
    Py_XDECREF(text);
    Py_XDECREF(error);
    Py_XDECREF(out);
    Py_XDECREF(err);
    Py_XDECREF(cap.out);
    Py_XDECREF(cap.err);
    return res;
}

static PyObject *sandbox_functions(Sandbox *self, PyObject *unused)
{
    PyObject *list, *key, *idx;
    Py_ssize_t pos = 0;
    if (!hlpy_sandbox_take((PyObject *)self) && !self->busy) return NULL;
    PyErr_Clear();
    list = PyList_New(0);
    while (list && PyDict_Next(self->names, &pos, &key, &idx)) {
        const signature *sig = &self->sigs[PyLong_AsLong(idx)];
        PyObject *params = PyTuple_New(sig->nparams), *item;
        for (int i = 0; params && i < sig->nparams; i++)
            PyTuple_SET_ITEM(params, i, PyUnicode_FromString(hl_type_name(sig->params[i])));
        item = params ? Py_BuildValue("(OsN)", key, hl_type_name(sig->ret), params) : NULL;
        if (!item || PyList_Append(list, item) < 0) Py_CLEAR(list);
        Py_XDECREF(item);
    }
    return list;
}

static PyObject *sandbox_state(Sandbox *self, void *unused)
{
    if (!self->sb) return PyUnicode_FromString("closed");
    switch (hl_sandbox_state(self->sb)) {
    case HL_STATE_READY: return PyUnicode_FromString("ready");
    case HL_STATE_POISONED: return PyUnicode_FromString("poisoned");
    default: return PyUnicode_FromString("unrecoverable");
    }
}

static PyObject *sandbox_closed(Sandbox *self, void *unused) { return PyBool_FromLong(self->sb == NULL); }

static PyObject *sandbox_interrupt(Sandbox *self, PyObject *unused)
{
    if (self->sb) hl_sandbox_interrupt(self->sb); /* never freed while busy: close refuses */
    Py_RETURN_NONE;
}

static PyObject *sandbox_set_timeout(Sandbox *self, PyObject *timeout)
{
    uint64_t ms;
    hl_sandbox *sb = hlpy_sandbox_take((PyObject *)self);
    hl_status st;
    if (!sb || hlpy_timeout_ms(timeout, &ms) < 0) return NULL;
    st = hl_sandbox_set_timeout(sb, ms);
    if (st != HL_OK) return hlpy_raise_last(sb, st);
    Py_RETURN_NONE;
}

static PyObject *sandbox_snapshot(Sandbox *self, PyObject *unused)
{
    hl_sandbox *sb = hlpy_sandbox_take((PyObject *)self);
    hlpy_Snapshot *snap;
    hl_status st;
    if (!sb) return NULL;
    snap = PyObject_New(hlpy_Snapshot, &hlpy_SnapshotType);
    if (!snap) return NULL;
    snap->snap = NULL;
    st = hl_snapshot_take(sb, &snap->snap);
    if (st != HL_OK) {
        Py_DECREF(snap);
        return hlpy_raise_last(sb, st);
    }
    return (PyObject *)snap;
}

static PyObject *sandbox_restore(Sandbox *self, PyObject *arg)
{
    hl_sandbox *sb = hlpy_sandbox_take((PyObject *)self);
    hl_status st;
    if (!sb) return NULL;
    if (!PyObject_TypeCheck(arg, &hlpy_SnapshotType))
        return PyErr_Format(PyExc_TypeError, "restore() needs a Snapshot, not %s", Py_TYPE(arg)->tp_name);
    if (!((hlpy_Snapshot *)arg)->snap) return PyErr_Format(hlpy_SandboxClosed, "the snapshot was closed");
    self->busy = 1;
    HLPY_NOGIL(st = hl_sandbox_restore(sb, ((hlpy_Snapshot *)arg)->snap));
    self->busy = 0;
    if (st != HL_OK) return hlpy_raise_last(sb, st);
    /* the function table stays: it is the guest image's, which the snapshot must share */
    Py_RETURN_NONE;
}

static PyObject *sandbox_close(Sandbox *self, PyObject *unused)
{
    if (self->busy) return PyErr_Format(hlpy_Busy, "cannot close a sandbox while it runs a call");
    hl_sandbox_free(self->sb);
    self->sb = NULL;
    Py_RETURN_NONE;
}

static PyMethodDef sandbox_methods[] = {
    { "call", (PyCFunction)(void (*)(void))sandbox_call, METH_FASTCALL,
      "call(name, *args): calls guest function name; argument and return types follow its signature." },
    { "run_code", (PyCFunction)(void (*)(void))sandbox_run_code, METH_FASTCALL,
      "run_code(parts, timeout, usual, max_output) -> (text, error, stdout, stderr, over, duration): the\n"
      "guest's Eval of each part, output captured (hyperlight.Interpreter)." },
    { "functions", (PyCFunction)sandbox_functions, METH_NOARGS,
      "functions() -> [(name, return type, (parameter types...))]" },
    { "interrupt", (PyCFunction)sandbox_interrupt, METH_NOARGS, "Stops the running call (from any thread)." },
    { "set_timeout", (PyCFunction)sandbox_set_timeout, METH_O, "set_timeout(seconds or None)" },
    { "snapshot", (PyCFunction)sandbox_snapshot, METH_NOARGS, "snapshot() -> Snapshot" },
    { "restore", (PyCFunction)sandbox_restore, METH_O, "restore(snapshot)" },
    { "close", (PyCFunction)sandbox_close, METH_NOARGS, "Frees the VM; later uses raise SandboxClosed." },
    { NULL },
};

static PyGetSetDef sandbox_getset[] = {
    { "state", (getter)sandbox_state, NULL, "\"ready\", \"poisoned\", \"unrecoverable\" or \"closed\"", NULL },
    { "closed", (getter)sandbox_closed, NULL, "True once closed", NULL },
    { NULL },
};

PyTypeObject hlpy_SandboxType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "hyperlight._hyperlight.Sandbox",
    .tp_basicsize = sizeof(Sandbox),
    .tp_dealloc = (destructor)sandbox_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)sandbox_traverse,
    .tp_clear = (inquiry)sandbox_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "A guest in a micro-VM (use hyperlight.Sandbox).",
    .tp_methods = sandbox_methods,
    .tp_getset = sandbox_getset,
    .tp_new = sandbox_new,
};

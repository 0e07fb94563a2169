/* config.c - configurations built from Python arguments, and the C functions the library
 * calls back (host functions, print, log) that run the Python callables with the GIL. */
#include <math.h>
#include <string.h>

#include "hlpy.h"

/* One registered Python host function. */
typedef struct {
    PyObject *fn;
    PyObject *name;
    hl_type ret;
    int nparams;
    hl_type params[HL_MAX_ARGS];
} hostfn;

/* What a configuration points at: the `keep` object. Python code can hold a sandbox in a
 * host function (a cycle: sandbox, hooks, function, sandbox), so it takes part in garbage
 * collection; a cleared entry is NULL and the trampolines check. fns never moves: the
 * configuration points at its entries. */
typedef struct {
    PyObject_HEAD PyObject *print, *log;
    Py_ssize_t nfns;
    hostfn *fns;
} hooks;

static _Thread_local hlpy_callctx *current;

void hlpy_ctx_enter(hlpy_callctx *ctx, hl_sandbox *sb)
{
    ctx->sb = sb;
    ctx->exc_type = ctx->exc_value = ctx->exc_tb = NULL;
    ctx->cap = NULL;
    ctx->prev = current;
    current = ctx;
}

int hlpy_ctx_leave(hlpy_callctx *ctx)
{
    current = ctx->prev;
    if (!ctx->exc_type) return 0;
    PyErr_Restore(ctx->exc_type, ctx->exc_value, ctx->exc_tb);
    return -1;
}

/* Called with the GIL and an exception set by a callback: an Exception is reported by the
 * caller; anything else (KeyboardInterrupt, SystemExit, ...) is kept for the end of the call,
 * which it ends (hl_sandbox_interrupt). Returns 1 if the exception was kept. */
static int keep_base_exception(void)
{
    hlpy_callctx *ctx = current;
    if (PyErr_ExceptionMatches(PyExc_Exception) || !ctx) return 0;
    if (ctx->exc_type) {
        PyErr_Clear(); /* the first one wins */
    } else {
        PyErr_Fetch(&ctx->exc_type, &ctx->exc_value, &ctx->exc_tb);
        PyErr_NormalizeException(&ctx->exc_type, &ctx->exc_value, &ctx->exc_tb);
    }
    if (ctx->sb) hl_sandbox_interrupt(ctx->sb);
    return 1;
}

/* The code and text the guest receives for the exception raised by a host function: an
 * exception with an int attribute `code` (hyperlight.HostError) gives that code and its
 * message; any other gives HL_GUEST_ERR_HOST_FN and "TypeName: message". Clears it. */
static int report_to_guest(hl_host_call *call, const char *fname)
{
    PyObject *type, *value, *tb, *s, *c;
    const char *text;
    int code = HL_GUEST_ERR_HOST_FN, named = 1, rc;
    long v;
    if (keep_base_exception()) return hl_host_call_error(call, code, "host function '%s' was interrupted", fname);
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    c = value ? PyObject_GetAttrString(value, "code") : NULL;
    if (c && PyLong_Check(c) && !PyBool_Check(c)) {
        v = PyLong_AsLong(c);
        if (v != 0 && v >= INT32_MIN && v <= INT32_MAX) code = (int)v, named = 0;
    }
    Py_XDECREF(c);
    PyErr_Clear();
    s = value ? PyObject_Str(value) : NULL;
    text = s ? PyUnicode_AsUTF8(s) : NULL;
    if (!text) {
        PyErr_Clear();
        text = "(unprintable exception)";
    }
    if (named) rc = hl_host_call_error(call, code, "%s: %s", ((PyTypeObject *)type)->tp_name, text);
    else rc = hl_host_call_error(call, code, "%s", text);
    Py_XDECREF(s);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return rc;
}

/* The result of a host function as a value of its return type; strings and bytes are copied
 * into the call's scratch memory (the Python object dies before the guest reads them). */
static int host_result(hl_host_call *call, const hostfn *h, PyObject *res, hl_value *ret)
{
    PyObject *tmp = NULL;
    const char *name = PyUnicode_AsUTF8(h->name);
    if (hlpy_to_value(res, h->ret, ret, &tmp, name, 0) < 0) {
        PyObject *type, *value, *tb, *s;
        int rc;
        PyErr_Fetch(&type, &value, &tb);
        s = value ? PyObject_Str(value) : NULL;
        rc = hl_host_call_error(call, HL_GUEST_ERR_HOST_FN, "%s", s ? PyUnicode_AsUTF8(s) : "bad return value");
        PyErr_Clear();
        Py_XDECREF(s);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return rc;
    }
    if (ret->type == HL_STRING || ret->type == HL_BYTES) {
        size_t n = ret->v.buf.len;
        char *copy = hl_host_call_alloc(call, n + 1);
        if (!copy) {
            Py_XDECREF(tmp);
            return hl_host_call_error(call, HL_GUEST_ERR_OUT_OF_MEMORY, "host function '%s': out of memory", name);
        }
        memcpy(copy, ret->v.buf.ptr, n);
        copy[n] = 0;
        ret->v.buf.ptr = copy;
    }
    Py_XDECREF(tmp);
    return 0;
}

static int host_trampoline(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    const hostfn *h = hl_host_call_user(call);
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *tuple, *res = NULL;
    int rc;
    if (!h->fn) {
        PyGILState_Release(g);
        return hl_host_call_error(call, HL_GUEST_ERR_HOST_FN, "host function was released");
    }
    tuple = PyTuple_New(nargs);
    for (int i = 0; tuple && i < nargs; i++) {
        PyObject *v = hlpy_from_value(&args[i]);
        if (!v) {
            Py_CLEAR(tuple);
            break;
        }
        PyTuple_SET_ITEM(tuple, i, v);
    }
    if (tuple) res = PyObject_Call(h->fn, tuple, NULL);
    if (!res) rc = report_to_guest(call, PyUnicode_AsUTF8(h->name));
    else rc = host_result(call, h, res, ret);
    Py_XDECREF(res);
    Py_XDECREF(tuple);
    PyGILState_Release(g);
    return rc;
}

/* A failing print or log function cannot fail the call: an Exception is reported as
 * unraisable (sys.unraisablehook), anything else ends the call. */
static void callback_failed(PyObject *fn)
{
    if (!keep_base_exception()) PyErr_WriteUnraisable(fn);
}

/* Keeps text in the capture of the call running on this thread (hlpy_capture); whole
 * characters up to its limit, as the guest's output is counted: in UTF-8 after the bad bytes
 * were replaced by U+FFFD. */
static void capture(hlpy_callctx *ctx, int stream, const char *data, size_t len)
{
    hlpy_capture *cap = ctx->cap;
    PyObject **list = stream == 2 ? &cap->err : &cap->out, *text, *cut;
    Py_ssize_t n;
    const char *utf8;
    if (cap->over) return;
    text = PyUnicode_DecodeUTF8(data, (Py_ssize_t)len, "replace");
    if (!text) goto fail;
    if (PyUnicode_IS_ASCII(text)) {
        n = PyUnicode_GET_LENGTH(text);
        utf8 = data;
    } else if (!(utf8 = PyUnicode_AsUTF8AndSize(text, &n))) {
        goto fail;
    }
    if (n > cap->left) { /* keep what fits, then stop the run */
        cut = PyUnicode_DecodeUTF8(utf8, cap->left, "ignore");
        Py_SETREF(text, cut);
        cap->over = 1;
        hl_sandbox_interrupt(ctx->sb);
        if (!text) goto fail;
    }
    cap->left -= n;
    if (!*list && !(*list = PyList_New(0))) goto fail;
    if (PyList_Append(*list, text) < 0) goto fail;
    Py_DECREF(text);
    return;
fail:
    Py_XDECREF(text);
    callback_failed(Py_None);
}

static void print_trampoline(void *user, int stream, const char *data, size_t len)
{
    hooks *k = user;
    PyGILState_STATE g = PyGILState_Ensure();
    if (current && current->cap) {
        capture(current, stream, data, len);
        PyGILState_Release(g);
        return;
    }
    if (!k->print) {
        PyGILState_Release(g);
        return;
    }
    PyObject *text = PyUnicode_DecodeUTF8(data, (Py_ssize_t)len, "replace");
    PyObject *res = text ? PyObject_CallFunction(k->print, "iO", stream, text) : NULL;
    if (!res) callback_failed(k->print);
    Py_XDECREF(text);
    Py_XDECREF(res);
    PyGILState_Release(g);
}

static void log_trampoline(void *user, int level, const char *msg, const char *file, uint32_t line)
{
    hooks *k = user;
    PyGILState_STATE g = PyGILState_Ensure();
    if (!k->log) {
        PyGILState_Release(g);
        return;
    }
    PyObject *m = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
    PyObject *f = file ? PyUnicode_DecodeUTF8(file, (Py_ssize_t)strlen(file), "replace") : PyUnicode_FromString("");
    PyObject *res = m && f ? PyObject_CallFunction(k->log, "iOOk", level, m, f, (unsigned long)line) : NULL;
    if (!res) callback_failed(k->log);
    Py_XDECREF(m);
    Py_XDECREF(f);
    Py_XDECREF(res);
    PyGILState_Release(g);
}

static int hooks_traverse(hooks *k, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < k->nfns; i++) Py_VISIT(k->fns[i].fn);
    Py_VISIT(k->print);
    Py_VISIT(k->log);
    return 0;
}

static int hooks_clear(hooks *k)
{
    for (Py_ssize_t i = 0; i < k->nfns; i++) Py_CLEAR(k->fns[i].fn);
    Py_CLEAR(k->print);
    Py_CLEAR(k->log);
    return 0;
}

static void hooks_dealloc(hooks *k)
{
    PyObject_GC_UnTrack(k);
    hooks_clear(k);
    for (Py_ssize_t i = 0; i < k->nfns; i++) Py_XDECREF(k->fns[i].name);
    PyMem_Free(k->fns);
    PyObject_GC_Del(k);
}

static PyTypeObject hooks_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "hyperlight._hyperlight._Hooks",
    .tp_basicsize = sizeof(hooks),
    .tp_dealloc = (destructor)hooks_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)hooks_traverse,
    .tp_clear = (inquiry)hooks_clear,
    .tp_free = PyObject_GC_Del,
};

int hlpy_config_init(void) { return PyType_Ready(&hooks_type); }

int hlpy_timeout_ms(PyObject *timeout, uint64_t *ms)
{
    double s;
    *ms = 0;
    if (!timeout || timeout == Py_None) return 0;
    if (PyBool_Check(timeout) || !(PyFloat_Check(timeout) || PyLong_Check(timeout))) {
        PyErr_Format(PyExc_TypeError, "timeout must be a number of seconds or None, not %s", Py_TYPE(timeout)->tp_name);
        return -1;
    }
    s = PyFloat_AsDouble(timeout);
    if (s == -1.0 && PyErr_Occurred()) return -1;
    if (!(s >= 0) || s > 1e9) {
        PyErr_Format(PyExc_ValueError, "timeout must be between 0 and 1e9 seconds, not %R", timeout);
        return -1;
    }
    *ms = (uint64_t)ceil(s * 1000.0);
    return 0;
}

/* hostfn i from the tuple (name, callable, return type, parameter types). */
static int parse_hostfn(PyObject *item, hostfn *h)
{
    PyObject *name, *fn, *ret, *params, *seq;
    if (!PyArg_ParseTuple(item, "UOOO;a host function is (name, callable, return type, parameter types)", &name, &fn,
                          &ret, &params))
        return -1;
    if (!PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "host function %R is not callable", name);
        return -1;
    }
    if (hlpy_type_from_name(ret, &h->ret) < 0) return -1;
    seq = PySequence_Fast(params, "parameter types must be a sequence");
    if (!seq) return -1;
    if (PySequence_Fast_GET_SIZE(seq) > HL_MAX_ARGS) {
        PyErr_Format(PyExc_ValueError, "host function %R has more than %d parameters", name, HL_MAX_ARGS);
        Py_DECREF(seq);
        return -1;
    }
    h->nparams = (int)PySequence_Fast_GET_SIZE(seq);
    for (int i = 0; i < h->nparams; i++)
        if (hlpy_type_from_name(PySequence_Fast_GET_ITEM(seq, i), &h->params[i]) < 0) {
            Py_DECREF(seq);
            return -1;
        }
    Py_DECREF(seq);
    h->fn = Py_NewRef(fn);
    h->name = Py_NewRef(name);
    return 0;
}

/* The hooks object for host_functions, print and log. */
static PyObject *make_hooks(PyObject *host_functions, PyObject *print, PyObject *log, hooks **out)
{
    PyObject *seq = NULL, *obj;
    Py_ssize_t n = 0;
    hooks *k = NULL;
    if (host_functions && host_functions != Py_None) {
        seq = PySequence_Fast(host_functions, "host_functions must be a sequence of tuples");
        if (!seq) return NULL;
        n = PySequence_Fast_GET_SIZE(seq);
    }
    hostfn *fns = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof *fns);
    if (fns) k = PyObject_GC_New(hooks, &hooks_type);
    if (!k) {
        PyMem_Free(fns);
        Py_XDECREF(seq);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    k->print = k->log = NULL;
    k->nfns = 0;
    k->fns = fns;
    PyObject_GC_Track(k);
    obj = (PyObject *)k;
    for (Py_ssize_t i = 0; i < n; i++, k->nfns++)
        if (parse_hostfn(PySequence_Fast_GET_ITEM(seq, i), &k->fns[i]) < 0) goto fail;
    Py_XDECREF(seq);
    seq = NULL;
    if (print && print != Py_None) {
        if (!PyCallable_Check(print)) goto not_callable;
        k->print = Py_NewRef(print);
    }
    if (log && log != Py_None) {
        if (!PyCallable_Check(log)) goto not_callable;
        k->log = Py_NewRef(log);
    }
    *out = k;
    return obj;
not_callable:
    PyErr_SetString(PyExc_TypeError, "print and log must be callables or None");
fail:
    Py_XDECREF(seq);
    Py_DECREF(obj);
    return NULL;
}

static int config_fail(hl_config *cfg, hl_status st)
{
    if (st != HL_OK) hlpy_raise(st, hl_config_error(cfg), 0, NULL);
    return st != HL_OK;
}

hl_config *hlpy_config_build(PyObject *heap, PyObject *stack, PyObject *timeout, PyObject *host_functions,
                             PyObject *print, PyObject *log, PyObject **keep)
{
    hooks *k = NULL;
    PyObject *obj = make_hooks(host_functions, print, log, &k);
    hl_config *cfg;
    uint64_t ms;
    size_t sz;
    if (!obj) return NULL;
    if (hlpy_timeout_ms(timeout, &ms) < 0) goto fail_hooks;
    cfg = hl_config_new();
    if (!cfg) {
        PyErr_NoMemory();
        goto fail_hooks;
    }
    if (heap && heap != Py_None) {
        sz = PyLong_AsSize_t(heap);
        if (PyErr_Occurred() || config_fail(cfg, hl_config_set_heap_size(cfg, sz))) goto fail;
    }
    if (stack && stack != Py_None) {
        sz = PyLong_AsSize_t(stack);
        if (PyErr_Occurred() || config_fail(cfg, hl_config_set_scratch_size(cfg, sz))) goto fail;
    }
    if (config_fail(cfg, hl_config_set_timeout(cfg, ms))) goto fail;
    for (Py_ssize_t i = 0; i < k->nfns; i++) {
        hostfn *h = &k->fns[i];
        if (config_fail(cfg, hl_config_register_host_fn(cfg, PyUnicode_AsUTF8(h->name), h->ret, h->params, h->nparams,
                                                        host_trampoline, h)))
            goto fail;
    }
    if (k->print && config_fail(cfg, hl_config_set_print(cfg, print_trampoline, k))) goto fail;
    if (k->log && config_fail(cfg, hl_config_set_log(cfg, log_trampoline, k))) goto fail;
    *keep = obj;
    return cfg;
fail:
    hl_config_free(cfg);
fail_hooks:
    Py_DECREF(obj);
    return NULL;
}

int hlpy_config_map_files(hl_config *cfg, PyObject *files)
{
    PyObject *seq, *item;
    Py_ssize_t n;
    const char *label, *path;
    if (!files || files == Py_None) return 0;
    seq = PySequence_Fast(files, "files must be a sequence of (label, path) pairs");
    if (!seq) return -1;
    n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(item, 0)) ||
            !PyUnicode_Check(PyTuple_GET_ITEM(item, 1))) {
            PyErr_SetString(PyExc_TypeError, "files must be a sequence of (label, path) pairs of str");
            goto fail;
        }
        if (!(label = PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 0))) ||
            !(path = PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 1))))
            goto fail;
        if (config_fail(cfg, hl_config_map_file(cfg, path, label))) goto fail;
    }
    Py_DECREF(seq);
    return 0;
fail:
    Py_DECREF(seq);
    return -1;
}

/* snapshot.c - hyperlight._hyperlight.Snapshot (taken, saved, loaded) and Pool (ready
 * sandboxes made from a snapshot). */
#include <pthread.h>

#include "hlpy.h"

static hl_snapshot *snapshot_of(hlpy_Snapshot *self)
{
    if (!self->snap) PyErr_SetString(hlpy_SandboxClosed, "the snapshot was closed");
    return self->snap;
}

static void snapshot_dealloc(hlpy_Snapshot *self)
{
    hl_snapshot_free(self->snap);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *snapshot_load(PyTypeObject *type, PyObject *arg)
{
    PyObject *path = NULL;
    hlpy_Snapshot *self;
    hl_status st;
    if (!PyUnicode_FSConverter(arg, &path)) return NULL;
    self = PyObject_New(hlpy_Snapshot, &hlpy_SnapshotType);
    if (!self) {
        Py_DECREF(path);
        return NULL;
    }
    self->snap = NULL;
    HLPY_NOGIL(st = hl_snapshot_load(&self->snap, PyBytes_AS_STRING(path)));
    Py_DECREF(path);
    if (st != HL_OK) {
        Py_DECREF(self);
        return hlpy_raise_last(NULL, st);
    }
    return (PyObject *)self;
}

static PyObject *snapshot_save(hlpy_Snapshot *self, PyObject *arg)
{
    PyObject *path = NULL;
    hl_snapshot *snap = snapshot_of(self);
    hl_status st;
    if (!snap || !PyUnicode_FSConverter(arg, &path)) return NULL;
    HLPY_NOGIL(st = hl_snapshot_save(snap, PyBytes_AS_STRING(path)));
    Py_DECREF(path);
    if (st != HL_OK) return hlpy_raise_last(NULL, st);
    Py_RETURN_NONE;
}

static PyObject *snapshot_close(hlpy_Snapshot *self, PyObject *unused)
{
    hl_snapshot_free(self->snap); /* sandboxes made from it keep their reference */
    self->snap = NULL;
    Py_RETURN_NONE;
}

static PyObject *snapshot_generation(hlpy_Snapshot *self, void *unused)
{
    hl_snapshot *snap = snapshot_of(self);
    return snap ? PyLong_FromUnsignedLongLong(hl_snapshot_generation(snap)) : NULL;
}

static PyObject *snapshot_enter(PyObject *self, PyObject *unused) { return Py_NewRef(self); }
static PyObject *snapshot_exit(hlpy_Snapshot *self, PyObject *args) { return snapshot_close(self, NULL); }

static PyMethodDef snapshot_methods[] = {
    { "load", (PyCFunction)snapshot_load, METH_O | METH_CLASS,
      "Snapshot.load(path) -> Snapshot: a snapshot file written by save()." },
    { "save", (PyCFunction)snapshot_save, METH_O, "save(path): writes the snapshot to a file." },
    { "close", (PyCFunction)snapshot_close, METH_NOARGS, "Drops this reference to the snapshot." },
    { "__enter__", snapshot_enter, METH_NOARGS, NULL },
    { "__exit__", (PyCFunction)snapshot_exit, METH_VARARGS, NULL },
    { NULL },
};

static PyGetSetDef snapshot_getset[] = {
    { "generation", (getter)snapshot_generation, NULL, "How many snapshots deep this state is (1: from an ELF).", NULL },
    { NULL },
};

PyTypeObject hlpy_SnapshotType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "hyperlight.Snapshot",
    .tp_basicsize = sizeof(hlpy_Snapshot),
    .tp_dealloc = (destructor)snapshot_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A sandbox's state between calls: Sandbox.snapshot(), Snapshot.load(path). Immutable.",
    .tp_methods = snapshot_methods,
    .tp_getset = snapshot_getset,
};

/* ---- pools ---- */

/* get() and put() run hl_pool_get/hl_pool_put with the GIL released, so close() can come
 * while they run: close() takes the handle away (later gets raise SandboxClosed, later puts
 * free their sandbox) and then waits, without the GIL, until the gets and puts in flight have
 * left the library before it frees the pool. They leave it without taking the GIL first. */
typedef struct {
    PyObject_HEAD hl_pool *pool;
    PyObject *keep;
    pthread_mutex_t lock; /* guards inflight */
    pthread_cond_t idle;  /* signalled when inflight drops to 0 */
    int inflight;         /* gets and puts inside the library */
} Pool;

/* The gets and puts in flight on this thread, innermost first: a print or log function that
 * runs inside one (a sandbox being made) must not wait for it to end. */
typedef struct pool_frame {
    Pool *pool;
    struct pool_frame *prev;
} pool_frame;
static _Thread_local pool_frame *frames;

/* Marks a get or put as inside the library (GIL held). */
static void enter_pool(Pool *self, pool_frame *f)
{
    f->pool = self;
    f->prev = frames;
    frames = f;
    pthread_mutex_lock(&self->lock);
    self->inflight++;
    pthread_mutex_unlock(&self->lock);
}

/* Marks it as out of the library (without the GIL: a close may be waiting for it). */
static void leave_pool(Pool *self, pool_frame *f)
{
    pthread_mutex_lock(&self->lock);
    if (--self->inflight == 0) pthread_cond_broadcast(&self->idle);
    pthread_mutex_unlock(&self->lock);
    frames = f->prev;
}

static int inside(Pool *self)
{
    for (pool_frame *f = frames; f; f = f->prev)
        if (f->pool == self) return 1;
    return 0;
}

/* Takes the handle away, waits for the gets and puts in flight and frees the pool, with the
 * GIL released (the filler and the calls in flight may need it for print and log). */
static void close_pool(Pool *self)
{
    hl_pool *pool = self->pool;
    self->pool = NULL;
    if (!pool) return;
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&self->lock);
    while (self->inflight > 0) pthread_cond_wait(&self->idle, &self->lock);
    pthread_mutex_unlock(&self->lock);
    hl_pool_free(pool);
    Py_END_ALLOW_THREADS;
}

static PyObject *pool_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = { "snapshot", "size", "background", "timeout", "host_functions", "print", "log", NULL };
    PyObject *snap, *timeout = NULL, *hostfns = NULL, *print = NULL, *log = NULL, *keep = NULL;
    int size, background = 0;
    hl_config *cfg;
    hl_status st;
    Pool *self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!i|$pOOOO:Pool", kwlist, &hlpy_SnapshotType, &snap, &size,
                                     &background, &timeout, &hostfns, &print, &log))
        return NULL;
    if (!snapshot_of((hlpy_Snapshot *)snap)) return NULL;
    cfg = hlpy_config_build(NULL, NULL, timeout, hostfns, print, log, &keep);
    if (!cfg) return NULL;
    self = (Pool *)type->tp_alloc(type, 0);
    if (!self) goto fail;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->idle, NULL);
    self->keep = keep;
    keep = NULL;
    HLPY_NOGIL(st = hl_pool_new(&self->pool, ((hlpy_Snapshot *)snap)->snap, cfg, size, background));
    hl_config_free(cfg);
    if (st != HL_OK) {
        Py_DECREF(self);
        return hlpy_raise_last(NULL, st);
    }
    return (PyObject *)self;
fail:
    hl_config_free(cfg);
    Py_XDECREF(keep);
    return NULL;
}

static int pool_traverse(Pool *self, visitproc visit, void *arg)
{
    Py_VISIT(self->keep);
    return 0;
}

/* Stops the filler and frees the ready sandboxes before what their configuration points at. */
static int pool_clear(Pool *self)
{
    close_pool(self);
    Py_CLEAR(self->keep);
    return 0;
}

static void pool_dealloc(Pool *self)
{
    PyObject_GC_UnTrack(self);
    pool_clear(self);
    pthread_cond_destroy(&self->idle);
    pthread_mutex_destroy(&self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static hl_pool *pool_of(Pool *self)
{
    if (!self->pool) PyErr_SetString(hlpy_SandboxClosed, "the pool is closed");
    return self->pool;
}

static PyObject *pool_get(Pool *self, PyObject *unused)
{
    hl_pool *pool = pool_of(self);
    hl_sandbox *sb = NULL;
    pool_frame f;
    hl_status st;
    if (!pool) return NULL;
    enter_pool(self, &f);
    HLPY_NOGIL(st = hl_pool_get(pool, &sb); leave_pool(self, &f));
    if (st != HL_OK) return hlpy_raise_last(NULL, st);
    return hlpy_sandbox_wrap(sb, self->keep, (PyObject *)self);
}

static PyObject *pool_put(Pool *self, PyObject *arg)
{
    hl_pool *pool;
    hl_sandbox *sb;
    pool_frame f;
    hl_status st;
    if (!PyObject_TypeCheck(arg, &hlpy_SandboxType))
        return PyErr_Format(PyExc_TypeError, "put() needs a Sandbox, not %s", Py_TYPE(arg)->tp_name);
    if (hlpy_sandbox_pool(arg) != (PyObject *)self)
        return PyErr_Format(PyExc_ValueError, "the sandbox was not taken from this pool");
    sb = hlpy_sandbox_take(arg);
    if (!sb) return NULL;
    hlpy_sandbox_forget(arg);
    if (!self->pool) {
        HLPY_NOGIL(hl_sandbox_free(sb)); /* the pool was closed: nothing to give it back to */
        Py_RETURN_NONE;
    }
    pool = self->pool;
    enter_pool(self, &f);
    HLPY_NOGIL(st = hl_pool_put(pool, sb); leave_pool(self, &f));
    if (st != HL_OK) return hlpy_raise_last(NULL, st);
    Py_RETURN_NONE;
}

static PyObject *pool_ready(Pool *self, void *unused)
{
    hl_pool *pool = pool_of(self);
    return pool ? PyLong_FromLong(hl_pool_ready(pool)) : NULL;
}

static PyObject *pool_close(Pool *self, PyObject *unused)
{
    if (inside(self)) /* it would wait for itself */
        return PyErr_Format(hlpy_Busy, "cannot close a pool from inside its own get() or put()");
    close_pool(self);
    Py_RETURN_NONE;
}

static PyMethodDef pool_methods[] = {
    { "get", (PyCFunction)pool_get, METH_NOARGS, "get() -> Sandbox in the snapshot's state" },
    { "put", (PyCFunction)pool_put, METH_O, "put(sandbox): restores it and gives it back" },
    { "close", (PyCFunction)pool_close, METH_NOARGS, "Frees the ready sandboxes; those taken out stay valid." },
    { NULL },
};

static PyGetSetDef pool_getset[] = {
    { "ready", (getter)pool_ready, NULL, "Sandboxes ready now", NULL },
    { NULL },
};

PyTypeObject hlpy_PoolType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "hyperlight._hyperlight.Pool",
    .tp_basicsize = sizeof(Pool),
    .tp_dealloc = (destructor)pool_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)pool_traverse,
    .tp_clear = (inquiry)pool_clear,
    .tp_doc = "Sandboxes made from a snapshot ahead of need (use hyperlight.Pool).",
    .tp_methods = pool_methods,
    .tp_getset = pool_getset,
    .tp_new = pool_new,
};

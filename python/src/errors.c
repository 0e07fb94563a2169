/* errors.c - hyperlight.Error and one subclass per hl_status (include/hyperlight.h), and
 * raising them with the library's message. */
#include <string.h>

#include "hlpy.h"

PyObject *hlpy_Error, *hlpy_SandboxClosed, *hlpy_Busy;

/* Timeout is a Cancelled whose message says the call ran out of time (hl_config_set_timeout:
 * "... timed out after N ms"); the library reports both as HL_ERR_CANCELLED. */
static PyObject *timeout_class;

/* The classes by status: name, an extra built-in base (so that `except OSError` or `except
 * MemoryError` also catch them), and the first line of the docstring. */
static const struct {
    hl_status st;
    const char *name;
    PyObject **extra;
    const char *doc;
} classes[] = {
    { HL_ERR_INVALID_ARG, "InvalidArgument", &PyExc_ValueError, "A bad argument or configuration value." },
    { HL_ERR_NOT_FOUND, "NotFound", &PyExc_LookupError, "No guest or host function of that name." },
    { HL_ERR_TYPE, "SignatureMismatch", &PyExc_TypeError,
      "Argument count or types, or the return type, do not match the signature." },
    { HL_ERR_GUEST, "GuestError", NULL, "The guest function returned an error (.code, .guest_message)." },
    { HL_ERR_ABORTED, "GuestAborted", NULL, "The guest aborted (.code, .guest_message); the sandbox is poisoned." },
    { HL_ERR_FAULT, "GuestFault", NULL, "The guest faulted (bad memory access, stack overflow, ...); poisoned." },
    { HL_ERR_PROTOCOL, "ProtocolError", NULL, "The guest broke the boundary protocol; the sandbox is poisoned." },
    { HL_ERR_STATE, "StateError", NULL, "The sandbox is not ready (poisoned or unrecoverable)." },
    { HL_ERR_NO_MEMORY, "OutOfMemory", &PyExc_MemoryError, "Host memory or address space ran out." },
    { HL_ERR_HYPERVISOR, "HypervisorError", NULL, "/dev/kvm is missing or an operation on KVM failed." },
    { HL_ERR_BAD_GUEST, "BadGuest", NULL, "The guest ELF or snapshot file is malformed or incompatible." },
    { HL_ERR_IO, "FileError", &PyExc_OSError, "Reading or writing a file the caller named failed." },
    { HL_ERR_CANCELLED, "Cancelled", NULL, "The call was interrupted or went beyond a limit; poisoned." },
    { HL_ERR_SYSTEM, "SystemFailure", NULL, "An operating-system facility other than KVM failed." },
    { HL_ERR_TOO_LARGE, "TooLarge", NULL, "A value exceeds a buffer or limit the configuration sets." },
};
#define NCLASSES (sizeof classes / sizeof classes[0])
static PyObject *by_status[HL_ERR_TOO_LARGE + 1];

static PyObject *new_class(PyObject *module, const char *name, PyObject *base, PyObject *extra, const char *doc)
{
    char qual[64];
    PyObject *bases = extra ? PyTuple_Pack(2, base, extra) : PyTuple_Pack(1, base), *cls;
    if (!bases) return NULL;
    snprintf(qual, sizeof qual, "hyperlight.%s", name);
    cls = PyErr_NewExceptionWithDoc(qual, doc, bases, NULL);
    Py_DECREF(bases);
    if (cls && PyModule_AddObjectRef(module, name, cls) < 0) Py_CLEAR(cls);
    return cls;
}

int hlpy_errors_init(PyObject *module)
{
    hlpy_Error = new_class(module, "Error", PyExc_Exception, NULL,
                           "A failure the hyperlight library reported: .status is the name of its hl_status\n"
                           "(\"HL_ERR_GUEST\", ...), the message is the library's.");
    if (!hlpy_Error) return -1;
    /* what an Error without a status (SandboxClosed, Busy) answers */
    PyObject *zero = PyLong_FromLong(0);
    if (!zero || PyObject_SetAttrString(hlpy_Error, "status", Py_None) < 0 ||
        PyObject_SetAttrString(hlpy_Error, "code", zero) < 0 ||
        PyObject_SetAttrString(hlpy_Error, "guest_message", Py_None) < 0) {
        Py_XDECREF(zero);
        return -1;
    }
    Py_DECREF(zero);
    for (size_t i = 0; i < NCLASSES; i++) {
        PyObject *extra = classes[i].extra ? *classes[i].extra : NULL;
        by_status[classes[i].st] = new_class(module, classes[i].name, hlpy_Error, extra, classes[i].doc);
        if (!by_status[classes[i].st]) return -1;
    }
    timeout_class = new_class(module, "Timeout", by_status[HL_ERR_CANCELLED], PyExc_TimeoutError,
                              "The call ran longer than its time limit (a Cancelled); poisoned.");
    hlpy_SandboxClosed = new_class(module, "SandboxClosed", hlpy_Error, PyExc_ValueError,
                                   "The sandbox (or pool) was closed or given back to its pool.");
    hlpy_Busy = new_class(module, "Busy", hlpy_Error, PyExc_RuntimeError,
                          "The sandbox is running a call: one sandbox runs one call at a time.");
    return timeout_class && hlpy_SandboxClosed && hlpy_Busy ? 0 : -1;
}

static int set_str(PyObject *o, const char *attr, const char *s)
{
    PyObject *v = PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
    int rc = v ? PyObject_SetAttrString(o, attr, v) : -1;
    Py_XDECREF(v);
    return rc;
}

PyObject *hlpy_raise(hl_status st, const char *msg, int code, const char *guest_msg)
{
    PyObject *cls = st > HL_OK && st <= HL_ERR_TOO_LARGE ? by_status[st] : hlpy_Error, *text, *exc, *c;
    if (st == HL_ERR_CANCELLED && strstr(msg, "timed out after ")) cls = timeout_class;
    text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
    if (!text) return NULL;
    exc = PyObject_CallOneArg(cls, text);
    Py_DECREF(text);
    if (!exc) return NULL;
    c = PyLong_FromLong(code);
    if (!c || PyObject_SetAttrString(exc, "code", c) < 0 || set_str(exc, "status", hl_status_name(st)) < 0 ||
        set_str(exc, "guest_message", guest_msg ? guest_msg : "") < 0) {
        Py_XDECREF(c);
        Py_DECREF(exc);
        return NULL;
    }
    Py_DECREF(c);
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

PyObject *hlpy_raise_last(const hl_sandbox *sb, hl_status st)
{
    if (!sb) return hlpy_raise(st, hl_last_error(NULL), 0, NULL);
    return hlpy_raise(st, hl_last_error(sb), hl_last_error_code(sb), hl_last_guest_message(sb));
}

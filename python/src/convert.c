/* convert.c - Python objects to hl_value and back, checked against the signature's types
 * before anything reaches the guest. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hlpy.h"

int hlpy_type_from_name(PyObject *name, hl_type *out)
{
    const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (!s) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "a type name must be a str, not %s", Py_TYPE(name)->tp_name);
        return -1;
    }
    for (int t = HL_VOID; t <= HL_TYPE_MAX; t++)
        if (strcmp(s, hl_type_name((hl_type)t)) == 0) return *out = (hl_type)t, 0;
    PyErr_Format(PyExc_ValueError, "unknown type %R (one of: void, i32, u32, i64, u64, f32, f64, bool, string, bytes)",
                 name);
    return -1;
}

static const char *python_name(hl_type t)
{
    switch (t) {
    case HL_F32:
    case HL_F64: return "float";
    case HL_BOOL: return "bool";
    case HL_STRING: return "str";
    case HL_BYTES: return "bytes";
    case HL_VOID: return "None";
    default: return "int";
    }
}

/* "argument 2", or for index 0 (a host function's result) "return value" */
static const char *what(int index, char *buf, size_t len)
{
    if (index == 0) return "return value";
    snprintf(buf, len, "argument %d", index);
    return buf;
}

static int bad_type(PyObject *o, hl_type t, const char *fname, int index)
{
    char w[32];
    PyErr_Format(PyExc_TypeError, "%s() %s must be %s (%s), not %s", fname, what(index, w, sizeof w), python_name(t),
                 hl_type_name(t), Py_TYPE(o)->tp_name);
    return -1;
}

static int out_of_range(PyObject *o, hl_type t, const char *fname, int index)
{
    char w[32];
    PyErr_Clear();
    PyErr_Format(PyExc_OverflowError, "%s() %s: %R is out of range for %s", fname, what(index, w, sizeof w), o,
                 hl_type_name(t));
    return -1;
}

/* ints: any object with __index__ but bool (a bool for an integer is a mistake, not a 1). */
static int to_int(PyObject *o, hl_type t, hl_value *out, const char *fname, int index)
{
    int overflow = 0;
    long long v;
    PyObject *n;
    if (PyBool_Check(o) || !PyIndex_Check(o)) return bad_type(o, t, fname, index);
    n = PyNumber_Index(o);
    if (!n) return -1;
    v = PyLong_AsLongLongAndOverflow(n, &overflow);
    if (v == -1 && PyErr_Occurred()) goto fail;
    out->type = t;
    switch (t) {
    case HL_I32:
        if (overflow || v < INT32_MIN || v > INT32_MAX) goto range;
        out->v.i32 = (int32_t)v;
        break;
    case HL_U32:
        if (overflow || v < 0 || v > UINT32_MAX) goto range;
        out->v.u32 = (uint32_t)v;
        break;
    case HL_I64:
        if (overflow) goto range;
        out->v.i64 = v;
        break;
    default: /* HL_U64 */
        if (overflow < 0 || (!overflow && v < 0)) goto range;
        out->v.u64 = overflow ? PyLong_AsUnsignedLongLong(n) : (uint64_t)v;
        if (overflow && PyErr_Occurred()) goto range;
        break;
    }
    Py_DECREF(n);
    return 0;
range:
    out_of_range(o, t, fname, index);
fail:
    Py_DECREF(n);
    return -1;
}

static int to_float(PyObject *o, hl_type t, hl_value *out, const char *fname, int index)
{
    double d;
    if (PyBool_Check(o) || !(PyFloat_Check(o) || PyLong_Check(o))) return bad_type(o, t, fname, index);
    d = PyFloat_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred()) return out_of_range(o, t, fname, index);
    out->type = t;
    if (t == HL_F64) {
        out->v.f64 = d;
        return 0;
    }
    /* a finite double beyond the float range would become infinity: an overflow, as struct does */
    if (isfinite(d) && fabs(d) > FLT_MAX) return out_of_range(o, t, fname, index);
    out->v.f32 = (float)d;
    return 0;
}

static int to_buffer(PyObject *o, hl_type t, hl_value *out, PyObject **tmp, const char *fname, int index)
{
    const char *p;
    Py_ssize_t n;
    if (t == HL_STRING) {
        if (!PyUnicode_Check(o)) return bad_type(o, t, fname, index);
        p = PyUnicode_AsUTF8AndSize(o, &n);
        if (!p) return -1;
        if (strlen(p) != (size_t)n) {
            char w[32];
            PyErr_Format(PyExc_ValueError, "%s() %s: a string cannot hold a NUL character", fname,
                         what(index, w, sizeof w));
            return -1;
        }
    } else {
        /* The GIL is released during the call: only an immutable bytes object is passed as
         * it is; anything else bytes-like (bytearray, memoryview, ...) is copied first. */
        if (PyUnicode_Check(o) || !PyObject_CheckBuffer(o)) return bad_type(o, t, fname, index);
        if (!PyBytes_Check(o)) {
            *tmp = PyBytes_FromObject(o);
            if (!*tmp) return -1;
            o = *tmp;
        }
        p = PyBytes_AS_STRING(o);
        n = PyBytes_GET_SIZE(o);
    }
    out->type = t;
    out->v.buf.ptr = p;
    out->v.buf.len = (size_t)n;
    return 0;
}

int hlpy_to_value(PyObject *o, hl_type t, hl_value *out, PyObject **tmp, const char *fname, int index)
{
    switch (t) {
    case HL_I32:
    case HL_U32:
    case HL_I64:
    case HL_U64: return to_int(o, t, out, fname, index);
    case HL_F32:
    case HL_F64: return to_float(o, t, out, fname, index);
    case HL_BOOL:
        if (!PyBool_Check(o)) return bad_type(o, t, fname, index);
        *out = hl_bool(o == Py_True);
        return 0;
    case HL_STRING:
    case HL_BYTES: return to_buffer(o, t, out, tmp, fname, index);
    case HL_VOID:
        if (o != Py_None) return bad_type(o, t, fname, index);
        *out = hl_void();
        return 0;
    }
    PyErr_Format(PyExc_SystemError, "%s(): invalid type %d", fname, (int)t);
    return -1;
}

PyObject *hlpy_from_value(const hl_value *v)
{
    switch (v->type) {
    case HL_I32: return PyLong_FromLong(v->v.i32);
    case HL_U32: return PyLong_FromUnsignedLong(v->v.u32);
    case HL_I64: return PyLong_FromLongLong(v->v.i64);
    case HL_U64: return PyLong_FromUnsignedLongLong(v->v.u64);
    case HL_F32: return PyFloat_FromDouble(v->v.f32);
    case HL_F64: return PyFloat_FromDouble(v->v.f64);
    case HL_BOOL: return PyBool_FromLong(v->v.b);
    /* guest strings are untrusted bytes: invalid UTF-8 is kept as surrogate escapes */
    case HL_STRING: return PyUnicode_DecodeUTF8(v->v.buf.ptr, (Py_ssize_t)v->v.buf.len, "surrogateescape");
    case HL_BYTES: return PyBytes_FromStringAndSize(v->v.buf.ptr, (Py_ssize_t)v->v.buf.len);
    case HL_VOID: Py_RETURN_NONE;
    }
    PyErr_Format(PyExc_SystemError, "invalid value type %d", (int)v->type);
    return NULL;
}

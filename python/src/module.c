/* module.c - the extension module hyperlight._hyperlight: its types, error classes and
 * constants. The package hyperlight (python/hyperlight/__init__.py) is its interface. */
#include "hlpy.h"
#include "sigint.h"

static PyObject *status_name(PyObject *self, PyObject *arg)
{
    long st = PyLong_AsLong(arg);
    if (st == -1 && PyErr_Occurred()) return NULL;
    return PyUnicode_FromString(hl_status_name((hl_status)st));
}

static PyMethodDef module_methods[] = {
    { "status_name", status_name, METH_O, "status_name(int) -> \"HL_ERR_TYPE\", ..." },
    { NULL },
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "hyperlight._hyperlight",
    .m_doc = "The hyperlight host library (include/hyperlight.h) for Python.",
    .m_size = -1,
    .m_methods = module_methods,
};

/* The build directory the extension was built against (setup.py): where its guests are when
 * the package is installed elsewhere (a venv) from a checkout. */
#ifndef HLPY_BUILD_DIR
#define HLPY_BUILD_DIR ""
#endif

PyMODINIT_FUNC PyInit__hyperlight(void)
{
    PyObject *m;
    if (PyType_Ready(&hlpy_SandboxType) < 0 || PyType_Ready(&hlpy_SnapshotType) < 0 || PyType_Ready(&hlpy_PoolType) < 0)
        return NULL;
    m = PyModule_Create(&module_def);
    if (!m) return NULL;
    if (hlpy_errors_init(m) < 0 || hlpy_sigint_init() < 0 ||
        PyModule_AddObjectRef(m, "Sandbox", (PyObject *)&hlpy_SandboxType) < 0 ||
        PyModule_AddObjectRef(m, "Snapshot", (PyObject *)&hlpy_SnapshotType) < 0 ||
        PyModule_AddObjectRef(m, "Pool", (PyObject *)&hlpy_PoolType) < 0 ||
        PyModule_AddStringConstant(m, "SNAPSHOT_MAGIC", HL_SNAPSHOT_MAGIC) < 0 ||
        PyModule_AddIntConstant(m, "MAX_ARGS", HL_MAX_ARGS) < 0 ||
        PyModule_AddIntConstant(m, "HOST_FN_ERROR", HL_GUEST_ERR_HOST_FN) < 0 ||
        PyModule_AddStringConstant(m, "BUILD_DIR", HLPY_BUILD_DIR) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

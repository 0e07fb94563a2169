/* sigint.c - Ctrl-C during a guest call. While the main thread runs a call, SIGINT gets a
 * handler that interrupts that call (hl_sandbox_interrupt, which uses only atomics and
 * pthread_kill: src/host/cancel.c) and then runs the handler it replaced, Python's, so that
 * the signal is also Python's: when the call returns, PyErr_CheckSignals runs the Python
 * handler, which raises KeyboardInterrupt by default. Nothing is installed outside calls,
 * and never on other threads (Python runs signal handlers only in the main thread). */
#include <signal.h>
#include <string.h>

#include "hlpy.h"
#include "sigint.h"

static unsigned long main_thread;
/* Written only by the main thread, read by the handler (on any thread). */
static hl_sandbox *volatile sigint_sandbox;
static struct sigaction previous;
static volatile sig_atomic_t fired;
static int depth;

static void on_sigint(int sig, siginfo_t *info, void *uctx)
{
    hl_sandbox *sb = sigint_sandbox;
    fired = 1;
    if (sb) hl_sandbox_interrupt(sb);
    if (previous.sa_flags & SA_SIGINFO) previous.sa_sigaction(sig, info, uctx);
    else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) previous.sa_handler(sig);
}

int hlpy_sigint_init(void)
{
    PyObject *threading = PyImport_ImportModule("threading"), *t = NULL, *id = NULL;
    if (threading) t = PyObject_CallMethod(threading, "main_thread", NULL);
    if (t) id = PyObject_GetAttrString(t, "ident");
    if (id) main_thread = PyLong_AsUnsignedLong(id);
    Py_XDECREF(id);
    Py_XDECREF(t);
    Py_XDECREF(threading);
    return PyErr_Occurred() ? -1 : 0;
}

void hlpy_sigint_enter(hlpy_sigint *s, hl_sandbox *sb)
{
    struct sigaction sa;
    s->active = PyThread_get_thread_ident() == main_thread;
    if (!s->active) return;
    s->installed = 0;
    s->prev_sb = sigint_sandbox;
    sigint_sandbox = sb;
    if (depth++ > 0) return; /* a call from a host function: the handler is in place */
    fired = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigint;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    s->installed = sigaction(SIGINT, &sa, &previous) == 0;
    /* Python does not handle SIGINT (signal.SIG_DFL or SIG_IGN): leave it so. */
    if (s->installed && !(previous.sa_flags & SA_SIGINFO) &&
        (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN)) {
        sigaction(SIGINT, &previous, NULL);
        s->installed = 0;
    }
}

int hlpy_sigint_leave(hlpy_sigint *s)
{
    int was_fired;
    if (!s->active) return 0;
    sigint_sandbox = s->prev_sb;
    was_fired = fired;
    if (--depth > 0) return was_fired;
    if (s->installed) sigaction(SIGINT, &previous, NULL);
    return was_fired;
}

/* confine.h - opt-in seccomp confinement of a sandbox's calls (confine.c). */
#ifndef HL_CONFINE_H
#define HL_CONFINE_H

#include <stdbool.h>

#include "config.h"

typedef struct hl_confine hl_confine;

/* For a (cfg) with confinement on: starts (sb)'s worker thread (after the host functions and
 * print function were taken from cfg). A no-op otherwise. */
hl_status hl_confine_start(hl_sandbox *sb, const hl_config *cfg);
/* Stops and joins the worker; a no-op for a sandbox without one. */
void hl_confine_stop(hl_sandbox *sb);
/* Runs job(sb, arg) on (sb)'s confined worker and waits for it. (fn) names the guest
 * function the job calls in errors (NULL: the guest's initialisation). */
hl_status hl_confine_run(hl_sandbox *sb, const char *fn, hl_status (*job)(hl_sandbox *, void *), void *arg);
/* After host function (hostfn) returned: if a system call was refused since the call began
 * and not yet reported, writes the call's error into sb->err and returns true. */
bool hl_confine_stopped(hl_sandbox *sb, const char *hostfn);
/* Whether (nr) names an x86-64 system call (for the configuration's allowlists). */
bool hl_syscall_valid(int nr);

#endif

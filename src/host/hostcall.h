/* hostcall.h - the guest's calls of host functions (hostcall.c). */
#ifndef HL_HOSTCALL_H
#define HL_HOSTCALL_H

#include "sandbox.h"

/* The context a host function gets (hyperlight.h's hl_host_call_* functions). */
struct hl_host_call {
    void *user;
    hl_sandbox *sb;
    char err[HL_MAX_MESSAGE + 1]; /* for the guest: as much as a message to it can hold */
    int err_code;
    void **allocs;
    int nallocs, capallocs;
};

/* Serves the HOSTCALL record (rec) (hostile input): finds and checks the host function,
 * calls it, and pushes its RESULT for the guest. HL_OK, or an error that poisoned (sb). */
hl_status hl_host_call_serve(hl_sandbox *sb, const hl_rec *rec);

#endif

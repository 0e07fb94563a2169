/* cancel.h - stopping a running guest (cancel.c): interrupts and per-call time limits. */
#ifndef HL_CANCEL_H
#define HL_CANCEL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "hyperlight.h"

#define HL_SIGNAL (SIGRTMIN + 1)
#define HL_CANCEL_INTERRUPT 1
#define HL_CANCEL_TIMEOUT 2
#define HL_CANCEL_CONFINE 3 /* a refused system call (confine.c) */

hl_status hl_cancel_init(hl_sandbox *sb);
void hl_cancel_fini(hl_sandbox *sb);
/* Brackets one call on the thread that runs the vCPU: numbers the call, arms its time limit. */
hl_status hl_cancel_begin(hl_sandbox *sb);
void hl_cancel_end(hl_sandbox *sb);
void hl_cancel_enter_guest(hl_sandbox *sb);
void hl_cancel_leave_guest(hl_sandbox *sb);
/* Marks call (seq) cancelled for reason (why) (HL_CANCEL_*; the first cancel of a call names
 * it) and makes the vCPU's next or current KVM_RUN return. Async-signal-safe. */
void hl_cancel_async(hl_sandbox *sb, uint64_t seq, int why);
/* HL_CANCEL_* if the current call was cancelled, else 0. */
int hl_cancelled(hl_sandbox *sb);
/* After an EINTR: true if nobody cancelled the call (then the vCPU may simply resume). */
bool hl_cancel_spurious(hl_sandbox *sb);

#endif

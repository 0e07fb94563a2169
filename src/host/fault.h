/* fault.h - naming what went wrong in the guest's CPU (fault_x86_64.c). Each function
 * describes the fault in sb->err, writes a core dump if configured, and poisons (sb). */
#ifndef HL_FAULT_H
#define HL_FAULT_H

#include "sandbox.h"

/* KVM_EXIT_SHUTDOWN: a triple fault. */
hl_status hl_fault_shutdown(hl_sandbox *sb);
/* HL_PORT_FAULT: the guest's exception handler reported an exception (hardware KVM). */
hl_status hl_fault_reported(hl_sandbox *sb);
/* KVM could not emulate an instruction the guest ran. */
hl_status hl_fault_emulation(hl_sandbox *sb);
/* The guest's rip now (for messages), or 0 if unreadable. */
uint64_t hl_guest_rip(hl_sandbox *sb);

#endif

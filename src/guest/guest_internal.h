/* guest_internal.h - what the guest SDK's files share (not installed). */
#ifndef HL_GUEST_INTERNAL_H
#define HL_GUEST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hyperlight/abi.h"

/* Buffers bytes for the host's stdout (stream 1) or stderr (stream 2). */
void hl_guest_print_char(int stream, char c);
void hl_guest_print(int stream, const void *p, size_t n);
/* Moves buffered print bytes into a PRINT record on the output stack. */
void hl_guest_print_flush(void);
/* Counts the guest calls the SDK has dispatched (0 during initialisation): what the SDK
 * keeps per call (hostfns.c) compares it. */
extern uint64_t hl_guest_call_seq;
/* Gives malloc the heap [base, base + size). */
void hl_guest_heap_init(void *base, size_t size);
__attribute__((noreturn)) void hl_guest_start(const struct hl_peb *peb);
/* Installs the GDT, IDT and TSS that let the guest report its own CPU exceptions to the host
 * through meta->fault and HL_PORT_FAULT (exceptions.c; hardware KVM only). */
void hl_exc_install(struct hl_meta *meta);
/* Resets the x87 and SSE state at the start of every call, so nothing a previous call (or
 * the user of a sandbox before a restore) left in those registers is visible; the general
 * registers are the host's business (it reloads them on restore). In assembly (fpu.S): the
 * SDK's C code is built with -mgeneral-regs-only, so that it never touches the x87/SSE state
 * its user owns, and runs under CR0.TS or KVM's instruction emulator alike. */
void hl_scrub_fpu(void);

#endif

/* error.h - the one writer of error text and of the Poisoned and Unrecoverable states.
 *
 * Every failure is a status plus one line of text that says what failed and where. Text
 * goes to the sandbox (sb->err) when the operation has one, to a caller's buffer of
 * HL_ERR_LEN bytes for the pure modules (which know no sandbox), and to the calling thread
 * (hl_last_error(NULL)) for creations that produced no sandbox. */
#ifndef HL_ERROR_H
#define HL_ERROR_H

#include <limits.h>

#include "hyperlight.h"

/* An error text holds a whole guest message (HL_MAX_MESSAGE bytes) with what the host says
 * around it: a function name, a guest's file path and a few phrases ("PATH: guest
 * initialisation failed: guest aborted with code N: MESSAGE"). */
#define HL_ERR_LEN (HL_MAX_MESSAGE + HL_MAX_NAME + PATH_MAX + 512)

#define HL_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Formats into (err)[HL_ERR_LEN]; returns (st), so that callers can `return hl_errf(...)`. */
hl_status hl_errf(char *err, hl_status st, const char *fmt, ...) HL_PRINTF(3, 4);
/* Puts "PREFIX: " in front of the text already in (err); returns (st). */
hl_status hl_errprefix(char *err, hl_status st, const char *fmt, ...) HL_PRINTF(3, 4);
/* Appends to the text in (err). */
void hl_errappend(char *err, const char *fmt, ...) HL_PRINTF(2, 3);

/* Sets (sb)'s error text; returns (st). */
hl_status hl_fail(hl_sandbox *sb, hl_status st, const char *fmt, ...) HL_PRINTF(3, 4);
/* Marks (sb) Poisoned (a Ready sandbox only: an Unrecoverable one stays so), keeping its
 * current error text as the reason later refusals name; returns (st). */
hl_status hl_poison(hl_sandbox *sb, hl_status st);
/* Marks (sb) Unrecoverable, keeping the reason likewise; returns (st). */
hl_status hl_unrecoverable(hl_sandbox *sb, hl_status st);
/* The refusal of a call on a sandbox that is not Ready: HL_ERR_STATE naming the reason. */
hl_status hl_refuse(hl_sandbox *sb);
/* A guest fault: sets the text (HL_ERR_FAULT), writes a core dump if sb has a core
 * directory (signal (sig), or 0 to derive it from the exception), and poisons (sb). */
hl_status hl_fault(hl_sandbox *sb, int sig, const char *fmt, ...) HL_PRINTF(3, 4);
/* The same for a fault whose text is already in sb->err with status (st). */
hl_status hl_fault_st(hl_sandbox *sb, hl_status st, int sig);
/* A fault (text in sb->err) whose registers are gone: no core dump, and the text says why
 * (" (no core dump: WHY)") if sb has a core directory. Poisons sb; HL_ERR_FAULT. */
hl_status hl_fault_nocore(hl_sandbox *sb, const char *why);

/* The calling thread's error (creations that produced no sandbox): set with a format, or
 * taken from a sandbox about to be freed; cleared on success. */
hl_status hl_thread_fail(hl_status st, const char *fmt, ...) HL_PRINTF(2, 3);
hl_status hl_thread_prefix(hl_status st, const char *fmt, ...) HL_PRINTF(2, 3);
void hl_thread_take(const hl_sandbox *sb);
void hl_thread_clear(void);

#endif

/* call.h - the call path (call.c): running the guest and reading what it answers. */
#ifndef HL_CALL_H
#define HL_CALL_H

#include "sandbox.h"

/* Runs the guest's initialisation to its first DONE and reads its function table into
 * (sb), confined or not (the executor). */
hl_status hl_call_init(hl_sandbox *sb);
/* Writes (top) as the top word of the stack buffer at (buf) (the input or output buffer),
 * recording host writes a restore must undo (they bypass KVM's dirty log). */
void hl_stack_set_top(hl_sandbox *sb, hl_gpa buf, uint64_t top);
/* Records what a push into the input buffer wrote, even a push that failed. */
void hl_input_note(hl_sandbox *sb, const hl_push *ps);

/* What a run is, in messages: "guest initialisation" or "call to guest function 'NAME'"
 * (formatted only when a message needs it: the call path stays free of printf). */
#define HL_WHAT_FMT "%s%s%s"
#define HL_WHAT_ARGS(fn) (fn) ? "call to guest function '" : "guest initialisation", (fn) ? (fn) : "", (fn) ? "'" : ""

#endif

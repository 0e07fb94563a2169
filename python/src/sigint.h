/* sigint.h - Ctrl-C during a guest call (sigint.c). */
#ifndef HLPY_SIGINT_H
#define HLPY_SIGINT_H

#include "hlpy.h"

typedef struct {
    int active, installed;
    hl_sandbox *prev_sb;
} hlpy_sigint;

int hlpy_sigint_init(void);
/* Around a call on sb, with the GIL held: on the main thread, SIGINT interrupts sb. */
void hlpy_sigint_enter(hlpy_sigint *s, hl_sandbox *sb);
/* Returns 1 if SIGINT came during the call (on the main thread). */
int hlpy_sigint_leave(hlpy_sigint *s);

#endif

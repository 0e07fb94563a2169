/* error.c - status names, error text and the Poisoned/Unrecoverable states (error.h).
 *
 * Nothing else in the library writes a sandbox's error text or its state of failure: the
 * other modules call these functions, which keeps one format for every message and one
 * place that decides when a sandbox can no longer be used. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "coredump.h"
#include "error.h"
#include "sandbox.h"

/* Creation errors: there is no sandbox to hold them. */
static __thread char tls_err[HL_ERR_LEN];

const char *hl_status_name(hl_status st)
{
    static const char *const names[] = {
        "HL_OK",        "HL_ERR_INVALID_ARG", "HL_ERR_NOT_FOUND",  "HL_ERR_TYPE",
        "HL_ERR_GUEST", "HL_ERR_ABORTED",     "HL_ERR_FAULT",      "HL_ERR_PROTOCOL",
        "HL_ERR_STATE", "HL_ERR_NO_MEMORY",   "HL_ERR_HYPERVISOR", "HL_ERR_BAD_GUEST",
        "HL_ERR_IO",    "HL_ERR_CANCELLED",   "HL_ERR_SYSTEM",     "HL_ERR_TOO_LARGE",
    };
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "HL_ERR_?";
}

/* Every printf-style entry point formats through this: (err)[HL_ERR_LEN]. */
#define FORMAT_INTO(err, fmt)                   \
    do {                                        \
        va_list ap_;                            \
        va_start(ap_, fmt);                     \
        vsnprintf((err), HL_ERR_LEN, fmt, ap_); \
        va_end(ap_);                            \
    } while (0)

hl_status hl_errf(char *err, hl_status st, const char *fmt, ...)
{
    FORMAT_INTO(err, fmt);
    return st;
}

hl_status hl_errprefix(char *err, hl_status st, const char *fmt, ...)
{
    char prefix[HL_ERR_LEN / 2];
    size_t pl, ol = strnlen(err, HL_ERR_LEN - 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    pl = strlen(prefix);
    if (pl + 2 + ol > HL_ERR_LEN - 1) ol = HL_ERR_LEN - 1 - pl - 2; /* the end of the old text goes */
    memmove(err + pl + 2, err, ol);
    memcpy(err, prefix, pl);
    memcpy(err + pl, ": ", 2);
    err[pl + 2 + ol] = 0;
    return st;
}

/* The text's end is kept whole (it names a core file, say): if both do not fit, the start
 * is shortened and ends in "...". */
void hl_errappend(char *err, const char *fmt, ...)
{
    char suffix[HL_ERR_LEN];
    size_t sl, el = strnlen(err, HL_ERR_LEN - 1);
    FORMAT_INTO(suffix, fmt);
    sl = strlen(suffix);
    if (el + sl >= HL_ERR_LEN) {
        el = HL_ERR_LEN - 1 - sl;
        if (el >= 3) memcpy(err + el - 3, "...", 3);
    }
    memcpy(err + el, suffix, sl);
    err[el + sl] = 0;
}

hl_status hl_fail(hl_sandbox *sb, hl_status st, const char *fmt, ...)
{
    FORMAT_INTO(sb->err, fmt);
    return st;
}

hl_status hl_poison(hl_sandbox *sb, hl_status st)
{
    if (sb->state != HL_STATE_UNRECOVERABLE) sb->state = HL_STATE_POISONED;
    memcpy(sb->poison_why, sb->err, sizeof sb->poison_why); /* named by later refusals */
    return st;
}

hl_status hl_unrecoverable(hl_sandbox *sb, hl_status st)
{
    sb->state = HL_STATE_UNRECOVERABLE;
    memcpy(sb->poison_why, sb->err, sizeof sb->poison_why);
    return st;
}

hl_status hl_refuse(hl_sandbox *sb)
{
    sb->err_code = 0;
    return hl_fail(sb, HL_ERR_STATE, "sandbox is %s (after: %s)",
                   sb->state == HL_STATE_POISONED ? "poisoned" : "unrecoverable", sb->poison_why);
}

hl_status hl_fault_st(hl_sandbox *sb, hl_status st, int sig)
{
    char note[HL_ERR_LEN];
    if (hl_coredump_write(sb, sig, note, sizeof note)) hl_errappend(sb->err, "%s", note);
    return hl_poison(sb, st);
}

hl_status hl_fault(hl_sandbox *sb, int sig, const char *fmt, ...)
{
    FORMAT_INTO(sb->err, fmt);
    return hl_fault_st(sb, HL_ERR_FAULT, sig);
}

hl_status hl_thread_fail(hl_status st, const char *fmt, ...)
{
    FORMAT_INTO(tls_err, fmt);
    return st;
}

hl_status hl_thread_prefix(hl_status st, const char *fmt, ...)
{
    char prefix[HL_ERR_LEN];
    FORMAT_INTO(prefix, fmt);
    return hl_errprefix(tls_err, st, "%s", prefix);
}

void hl_thread_take(const hl_sandbox *sb) { memcpy(tls_err, sb->err, sizeof tls_err); }
void hl_thread_clear(void) { tls_err[0] = 0; }

const char *hl_last_error(const hl_sandbox *sb) { return sb ? sb->err : tls_err; }
int hl_last_error_code(const hl_sandbox *sb) { return sb ? sb->err_code : 0; }

const char *hl_last_guest_message(const hl_sandbox *sb)
{
    if (!sb || !sb->err_code) return "";
    return sb->err_msg_at < strlen(sb->err) ? sb->err + sb->err_msg_at : "";
}

hl_status hl_fault_nocore(hl_sandbox *sb, const char *why)
{
    if (hl_coredump_enabled(sb)) hl_errappend(sb->err, " (no core dump: %s)", why);
    return hl_poison(sb, HL_ERR_FAULT);
}

/* test_output.c - guest output against real KVM: what the print callback receives (bytes,
 * stream, order, including 1 MiB, four times the output buffer), what the log callback
 * receives (level, message, file, line), how prints, logs and host calls interleave, and
 * the defaults (no log callback, no print callback, the default print to stdout).
 * Guest: tests/guests/calls_guest.c. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define GUEST "calls_guest"

/* ---- an event log: prints (adjacent ones of one stream merged, since how output is cut
 * into records is the library's business), logs and host-function calls, in order ---- */
enum { EV_PRINT, EV_LOG, EV_HOST };
typedef struct event {
    int kind;
    int stream_or_level;
    char *data; /* print bytes or log message (NUL-terminated) */
    size_t len;
    char file[300];
    uint32_t line;
} event;

typedef struct capture {
    event *ev;
    int n, cap;
    long print_calls, log_calls;
    int bad_user; /* callbacks that got the wrong user pointer */
} capture;

static capture cap;

static event *new_event(capture *c)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->ev = realloc(c->ev, (size_t)c->cap * sizeof *c->ev);
        if (!c->ev) exit(2);
    }
    memset(&c->ev[c->n], 0, sizeof c->ev[0]);
    return &c->ev[c->n++];
}

static void reset(capture *c)
{
    for (int i = 0; i < c->n; i++) free(c->ev[i].data);
    c->n = 0;
    c->print_calls = c->log_calls = 0;
    c->bad_user = 0;
}

static void on_print(void *user, int stream, const char *data, size_t len)
{
    capture *c = &cap;
    event *e;
    if (user != &cap) c->bad_user++;
    c->print_calls++;
    if (c->n && c->ev[c->n - 1].kind == EV_PRINT && c->ev[c->n - 1].stream_or_level == stream) {
        e = &c->ev[c->n - 1];
    } else {
        e = new_event(c);
        e->kind = EV_PRINT;
        e->stream_or_level = stream;
    }
    e->data = realloc(e->data, e->len + len + 1);
    if (!e->data) exit(2);
    memcpy(e->data + e->len, data, len);
    e->len += len;
    e->data[e->len] = 0;
}

static void on_log(void *user, int level, const char *msg, const char *file, uint32_t line)
{
    capture *c = &cap;
    event *e = new_event(c);
    if (user != &cap) c->bad_user++;
    c->log_calls++;
    e->kind = EV_LOG;
    e->stream_or_level = level;
    e->data = strdup(msg);
    e->len = strlen(msg);
    snprintf(e->file, sizeof e->file, "%s", file ? file : "(null)");
    e->line = line;
}

static int host_mark(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    event *e = new_event(&cap);
    e->kind = EV_HOST;
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Checks event i is a print on `stream` of exactly `want`. */
#define CHECK_PRINT(i, stream, want)                        \
    do {                                                    \
        CHECK((i) < cap.n);                                 \
        if ((i) < cap.n) {                                  \
            CHECK_INT(cap.ev[i].kind, EV_PRINT);            \
            CHECK_INT(cap.ev[i].stream_or_level, (stream)); \
            CHECK_STR(cap.ev[i].data, (want));              \
        }                                                   \
    } while (0)
#define CHECK_LOG(i, level, want)                              \
    do {                                                       \
        CHECK((i) < cap.n);                                    \
        if ((i) < cap.n) {                                     \
            CHECK_INT(cap.ev[i].kind, EV_LOG);                 \
            CHECK_INT(cap.ev[i].stream_or_level, (level));     \
            CHECK_STR(cap.ev[i].data, (want));                 \
            CHECK(ends_with(cap.ev[i].file, "calls_guest.c")); \
        }                                                      \
    } while (0)

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

/* What PrintMany(lines) prints: lines of exactly 64 bytes. */
static char *many_text(uint32_t lines, size_t *len)
{
    char *s = malloc((size_t)lines * 64 + 1);
    size_t at = 0;
    for (uint32_t i = 0; i < lines; i++)
        at += (size_t)snprintf(s + at, 65, "%08u abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.\n", i);
    *len = at;
    return s;
}

static hl_config *make_config(bool with_print, bool with_log)
{
    hl_config *cfg = hl_config_new();
    if (!cfg) exit(1);
    if (with_print) hl_config_set_print(cfg, on_print, &cap);
    if (with_log) hl_config_set_log(cfg, on_log, &cap);
    if (hl_config_register_host_fn(cfg, "HostMark", HL_VOID, NULL, 0, host_mark, NULL) != HL_OK) exit(1);
    return cfg;
}

static void test_mixed(hl_sandbox *sb)
{
    hl_value r;
    reset(&cap);
    CHECK_INT(hl_call(sb, "PrintMixed", HL_VOID, NULL, 0, &r), HL_OK);
    CHECK_INT(cap.n, 8);
    CHECK_PRINT(0, 1, "out 1 ");
    CHECK_PRINT(1, 2, "err 2\n");
    CHECK_PRINT(2, 1, "puts line\n");
    CHECK_LOG(3, HL_LOG_INFO, "log one");
    CHECK_PRINT(4, 1, "tail!");
    CHECK_LOG(5, HL_LOG_WARN, "log two");
    CHECK_PRINT(6, 2, "E");
    CHECK_PRINT(7, 1, "raw\n");
    if (cap.n == 8) CHECK_INT(cap.ev[5].line, cap.ev[3].line + 3); /* HL_INFO ... fputs, putchar, HL_WARN */
    CHECK_INT(cap.bad_user, 0);

    /* prints and logs around a host call reach the host before the host function runs */
    reset(&cap);
    CHECK_INT(hl_call(sb, "PrintAroundHost", HL_VOID, NULL, 0, &r), HL_OK);
    CHECK_INT(cap.n, 5);
    CHECK_PRINT(0, 1, "before;");
    CHECK_LOG(1, HL_LOG_DEBUG, "log before");
    CHECK_PRINT(2, 2, "err before;");
    if (cap.n > 3) CHECK_INT(cap.ev[3].kind, EV_HOST);
    CHECK_PRINT(4, 1, "after;");
}

static void test_levels(hl_sandbox *sb)
{
    hl_value r;
    int lines[6] = { 0 };
    static const char *const msgs[6] = { "trace 0", "debug 1", "info 2", "warn 3", "error 4", "critical 00005" };
    reset(&cap);
    memset(&r, 0, sizeof r);
    CHECK_INT(hl_call(sb, "LogAll", HL_STRING, NULL, 0, &r), HL_OK);
    CHECK(r.v.buf.ptr && sscanf(hl_value_str(&r), "%d %d %d %d %d %d", &lines[0], &lines[1], &lines[2], &lines[3],
                                &lines[4], &lines[5]) == 6);
    CHECK_INT(cap.n, 6);
    CHECK_INT(cap.log_calls, 6);
    for (int i = 0; i < 6 && i < cap.n; i++) {
        CHECK_LOG(i, i, msgs[i]);
        CHECK_INT(cap.ev[i].line, lines[i]);
        if (i) CHECK(lines[i] > lines[i - 1]);
    }
    CHECK(lines[0] > 0);
    if (cap.n) CHECK_STR(cap.ev[0].file, "tests/guests/calls_guest.c"); /* as the compiler saw it */

    /* messages up to HL_MAX_MESSAGE arrive whole; longer ones are cut there */
    static const uint32_t sizes[] = { 0, 1, 4095, HL_MAX_MESSAGE, HL_MAX_MESSAGE + 1, 10000 };
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        hl_value a = hl_u32(sizes[k]);
        size_t want = sizes[k] < HL_MAX_MESSAGE ? sizes[k] : HL_MAX_MESSAGE;
        bool all_x = true;
        reset(&cap);
        CHECK_INT(hl_call(sb, "LogLong", HL_VOID, &a, 1, &r), HL_OK);
        CHECK_INT(cap.n, 1);
        if (cap.n != 1) continue;
        CHECK_INT(cap.ev[0].stream_or_level, HL_LOG_INFO);
        CHECK_INT(cap.ev[0].len, want);
        for (size_t i = 0; i < cap.ev[0].len; i++) all_x = all_x && cap.ev[0].data[i] == 'x';
        CHECK(all_x);
    }
}

/* n log records interleaved with n prints: more than the output buffer holds */
static void check_many_logs(uint32_t n, bool logs_expected)
{
    bool ok = true;
    int want_events = logs_expected ? (int)(2 * n) : 1;
    CHECK_INT(cap.n, want_events);
    if (cap.n != want_events) return;
    if (logs_expected) {
        for (uint32_t i = 0; i < n && ok; i++) {
            const event *l = &cap.ev[2 * i], *p = &cap.ev[2 * i + 1];
            char m[32], pm[32];
            snprintf(m, sizeof m, "record %u", i);
            snprintf(pm, sizeof pm, "p%u;", i);
            ok = l->kind == EV_LOG && l->stream_or_level == (int)(i % 6) && strcmp(l->data, m) == 0 &&
                 strcmp(l->file, "many.c") == 0 && l->line == i && p->kind == EV_PRINT && p->stream_or_level == 1 &&
                 strcmp(p->data, pm) == 0;
            if (!ok)
                fprintf(stderr, "log/print event %u differs: log '%s' %s:%u, print '%s'\n", i, l->data, l->file,
                        l->line, p->data);
        }
    } else {
        /* no log callback: only the prints, in one stream */
        size_t len = 0;
        char *want = malloc((size_t)n * 16 + 1);
        for (uint32_t i = 0; i < n; i++) len += (size_t)sprintf(want + len, "p%u;", i);
        ok = cap.ev[0].kind == EV_PRINT && cap.ev[0].len == len && memcmp(cap.ev[0].data, want, len) == 0;
        free(want);
    }
    CHECK(ok);
}

static void test_volume(hl_sandbox *sb)
{
    hl_value r, a;
    size_t len;
    const uint32_t lines = 16384; /* 1 MiB */
    char *want = many_text(lines, &len);
    CHECK_INT(len, 1u << 20);

    reset(&cap);
    a = hl_u32(lines);
    memset(&r, 0, sizeof r);
    CHECK_INT(hl_call(sb, "PrintMany", HL_U64, &a, 1, &r), HL_OK);
    CHECK_INT(cap.n, 1);
    if (cap.n == 1) {
        CHECK_INT(cap.ev[0].stream_or_level, 1);
        CHECK_INT(cap.ev[0].len, len);
        CHECK(cap.ev[0].len == len && memcmp(cap.ev[0].data, want, len) == 0);
        CHECK(fnv(FNV_INIT, cap.ev[0].data, cap.ev[0].len) == r.v.u64);
    }
    CHECK(r.v.u64 == fnv(FNV_INIT, want, len));

    reset(&cap);
    a = hl_u32(5000);
    CHECK_INT(hl_call(sb, "LogMany", HL_VOID, &a, 1, &r), HL_OK);
    check_many_logs(5000, true);

    /* prints, then the largest result the output buffer holds: the prints go first */
    {
        size_t out = 0;
        hl_value two[2];
        memset(&r, 0, sizeof r);
        CHECK_INT(hl_call(sb, "PebSizes", HL_STRING, NULL, 0, &r), HL_OK);
        CHECK(r.v.buf.ptr && sscanf(strstr(hl_value_str(&r), "output="), "output=%zu", &out) == 1);
        const uint32_t rmax = (uint32_t)(out - 8 - 16 - 7);
        two[0] = hl_u32(3000);
        two[1] = hl_u32(rmax);
        reset(&cap);
        memset(&r, 0, sizeof r);
        CHECK_INT(hl_call(sb, "PrintThenRet", HL_STRING, two, 2, &r), HL_OK);
        CHECK_INT(r.v.buf.len, rmax);
        CHECK_INT(cap.n, 1);
        if (cap.n == 1) {
            bool dots = cap.ev[0].len == 3000;
            for (size_t i = 0; dots && i < 3000; i++) dots = cap.ev[0].data[i] == '.';
            CHECK(dots);
        }
    }
    free(want);
}

/* Runs f with the process's stdout (fd 1) going to a file; returns what was written. */
static char *capture_stdout(void (*f)(void *), void *arg, size_t *len)
{
    char path[] = "/tmp/hl_test_output_XXXXXX";
    int fd = mkstemp(path), saved;
    char *buf;
    long n;
    FILE *in;
    if (fd < 0) return NULL;
    fflush(stdout);
    saved = dup(1);
    dup2(fd, 1);
    f(arg);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    close(fd);
    in = fopen(path, "rb");
    unlink(path);
    if (!in) return NULL;
    fseek(in, 0, SEEK_END);
    n = ftell(in);
    fseek(in, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, in);
    fclose(in);
    return buf;
}

static hl_status run_status;
static void run_print_mixed(void *sb)
{
    hl_value r;
    run_status = hl_call(sb, "PrintMixed", HL_VOID, NULL, 0, &r);
}
static void run_print_many(void *sb)
{
    hl_value r, a = hl_u32(16384);
    run_status = hl_call(sb, "PrintMany", HL_U64, &a, 1, &r);
}

static void test_defaults(void)
{
    hl_value r, a;
    hl_config *cfg;
    hl_sandbox *sb;
    char *out;
    size_t len = 0;

    /* without a log callback: logs are dropped, prints still arrive in order */
    cfg = make_config(true, false);
    sb = must_sandbox(GUEST, cfg);
    reset(&cap);
    memset(&r, 0, sizeof r);
    CHECK_INT(hl_call(sb, "LogAll", HL_STRING, NULL, 0, &r), HL_OK);
    CHECK(r.v.buf.ptr != NULL);
    CHECK_INT(cap.n, 0);
    a = hl_u32(5000);
    CHECK_INT(hl_call(sb, "LogMany", HL_VOID, &a, 1, &r), HL_OK);
    check_many_logs(5000, false);
    reset(&cap);
    CHECK_INT(hl_call(sb, "PrintMixed", HL_VOID, NULL, 0, &r), HL_OK);
    CHECK_INT(cap.n, 5);
    CHECK_PRINT(2, 1, "puts line\ntail!");
    CHECK_PRINT(3, 2, "E");
    CHECK_PRINT(4, 1, "raw\n");
    a = hl_u32(HL_MAX_MESSAGE + 100);
    CHECK_INT(hl_call(sb, "LogLong", HL_VOID, &a, 1, &r), HL_OK);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    hl_sandbox_free(sb);
    hl_config_free(cfg);

    /* the default print writes both streams to the host's stdout */
    cfg = make_config(false, false);
    sb = must_sandbox(GUEST, cfg);
    out = capture_stdout(run_print_mixed, sb, &len);
    CHECK_INT(run_status, HL_OK);
    CHECK_STR(out, "out 1 err 2\nputs line\ntail!Eraw\n");
    CHECK_INT(len, 32);
    free(out);
    out = capture_stdout(run_print_many, sb, &len);
    CHECK_INT(run_status, HL_OK);
    CHECK_INT(len, 1u << 20);
    free(out);
    hl_sandbox_free(sb);

    /* a NULL print callback drops the output */
    hl_config_set_print(cfg, NULL, NULL);
    sb = must_sandbox(GUEST, cfg);
    out = capture_stdout(run_print_many, sb, &len);
    CHECK_INT(run_status, HL_OK);
    CHECK_INT(len, 0);
    free(out);
    out = capture_stdout(run_print_mixed, sb, &len);
    CHECK_INT(run_status, HL_OK);
    CHECK_INT(len, 0);
    free(out);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* Output is bytes, not text: NUL and 0xff arrive as they were written. */
static void test_binary(hl_sandbox *sb)
{
    static const unsigned char data[] = { 'a', 0, 'b', 0xff, 0x80, '\n', 0 };
    hl_value r, a[2];
    for (int fd = 1; fd <= 2; fd++) {
        a[0] = hl_i32(fd);
        a[1] = hl_bytes(data, sizeof data);
        reset(&cap);
        memset(&r, 0, sizeof r);
        CHECK_INT(hl_call(sb, "WriteOut", HL_I32, a, 2, &r), HL_OK);
        CHECK_INT(r.v.i32, (int)sizeof data);
        CHECK_INT(cap.n, 1);
        if (cap.n == 1) {
            CHECK_INT(cap.ev[0].kind, EV_PRINT);
            CHECK_INT(cap.ev[0].stream_or_level, fd);
            CHECK_INT(cap.ev[0].len, sizeof data);
            CHECK(cap.ev[0].len == sizeof data && memcmp(cap.ev[0].data, data, sizeof data) == 0);
        }
    }
    /* nothing written: nothing delivered; fd 3 does not exist in a guest */
    a[0] = hl_i32(1);
    a[1] = hl_bytes(NULL, 0);
    reset(&cap);
    CHECK_INT(hl_call(sb, "WriteOut", HL_I32, a, 2, &r), HL_OK);
    CHECK_INT(r.v.i32, 0);
    CHECK_INT(cap.n, 0);
    a[0] = hl_i32(3);
    a[1] = hl_bytes(data, sizeof data);
    CHECK_INT(hl_call(sb, "WriteOut", HL_I32, a, 2, &r), HL_OK);
    CHECK_INT(r.v.i32, -1);
    CHECK_INT(cap.n, 0);
}

/* Output before a guest error or abort is delivered before the call returns. */
static void test_failures(hl_sandbox *sb)
{
    hl_value r, a[2];
    a[0] = hl_i32(3);
    a[1] = hl_str("bye");
    reset(&cap);
    CHECK_INT(hl_call(sb, "Abort", HL_VOID, a, 2, &r), HL_ERR_ABORTED);
    CHECK_INT(cap.n, 1);
    CHECK_PRINT(0, 1, "before abort\n");
    CHECK_STR(hl_last_error(sb), "guest aborted with code 3: bye");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
}

int main(void)
{
    hl_config *cfg = make_config(true, true);
    hl_sandbox *sb;

    /* the guest logs once while it initialises: delivered during creation */
    reset(&cap);
    sb = must_sandbox(GUEST, cfg);
    CHECK_INT(cap.n, 1);
    CHECK_LOG(0, HL_LOG_INFO, "calls_guest: 46 functions registered");

    test_mixed(sb);
    test_binary(sb);
    test_levels(sb);
    test_volume(sb);
    test_failures(sb);
    hl_sandbox_free(sb);

    hl_config_free(cfg);

    /* the smallest output buffer: 64 times smaller than what is printed */
    cfg = make_config(true, true);
    CHECK_INT(hl_config_set_output_size(cfg, HL_BUFFER_MIN), HL_OK);
    sb = must_sandbox(GUEST, cfg);
    test_volume(sb);
    test_mixed(sb);
    hl_sandbox_free(sb);
    hl_config_free(cfg);

    test_defaults();
    reset(&cap);
    free(cap.ev);
    return check_exit("test_output");
}

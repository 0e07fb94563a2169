/* insns.c - host instructions per warm Echo("hello") call: the benchmark runs itself under
 * `valgrind --tool=callgrind` in a hidden mode (one sandbox from the demo guest, one warm-up
 * call, then N calls) for N = INSNS_CALLS_FEW and INSNS_CALLS_MANY, and divides the difference
 * of the two totals by the difference of N. The same difference per function (self cost, read
 * from the callgrind files) says where the instructions go. The guest's own instructions run
 * in the VM, outside valgrind: only the host's are counted. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

/* Writes the message into err; returns false. */
static bool fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- the hidden mode, under valgrind ---- */
int insns_child(int argc, char **argv)
{
    static const hl_value arg = { .type = HL_STRING, .v.buf = { "hello", 5 } };
    hl_config *cfg;
    hl_sandbox *sb = NULL;
    hl_value ret;
    long n = argc == 4 ? strtol(argv[2], NULL, 10) : -1;
    if (n < 0) die("usage: %s --insns-child N GUEST", argv[0]);
    if (!(cfg = hl_config_new())) die("out of memory");
    if (hl_sandbox_new_from_file(&sb, argv[3], cfg) != HL_OK)
        die("cannot create a sandbox from %s: %s", argv[3], hl_last_error(NULL));
    for (long i = 0; i <= n; i++) { /* call 0: the warm-up */
        hl_status st = hl_call(sb, "Echo", HL_STRING, &arg, 1, &ret);
        if (st != HL_OK) die("Echo: %s: %s", hl_status_name(st), hl_last_error(sb));
        if (ret.v.buf.len != 5 || memcmp(ret.v.buf.ptr, "hello", 5) != 0) die("Echo returned a wrong string");
    }
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    return 0;
}

/* ---- reading a callgrind file (valgrind's docs: "Callgrind Format Specification") ---- */
typedef struct fcost {
    int ob, fn;    /* name ids of the file */
    uint64_t self; /* Ir */
} fcost;

typedef struct cgfile {
    uint64_t total;  /* "totals:" (or "summary:") */
    uint64_t sum;    /* of the self costs: must equal total */
    char **names[2]; /* id -> name: objects, functions */
    int nnames[2];
    fcost *f;
    int nf, capf;
} cgfile;

/* "(id) name" defines id, "(id)" refers to it; returns the id (-1: malformed). */
static int cg_name(cgfile *g, int space, const char *s)
{
    char *end;
    long id;
    if (*s != '(') return -1;
    id = strtol(s + 1, &end, 10);
    if (*end != ')' || id < 0 || id > 10000000) return -1;
    if (id >= g->nnames[space]) {
        int n = (int)id + 1024;
        if (!(g->names[space] = realloc(g->names[space], (size_t)n * sizeof(char *)))) die("out of memory");
        memset(g->names[space] + g->nnames[space], 0, (size_t)(n - g->nnames[space]) * sizeof(char *));
        g->nnames[space] = n;
    }
    for (end++; *end == ' '; end++)
        ;
    if (*end && !g->names[space][id] && !(g->names[space][id] = strdup(end))) die("out of memory");
    return (int)id;
}

static int cg_entry(cgfile *g, int ob, int fn)
{
    for (int i = g->nf - 1; i >= 0; i--)
        if (g->f[i].ob == ob && g->f[i].fn == fn) return i;
    if (g->nf == g->capf) {
        g->capf = g->capf ? 2 * g->capf : 1024;
        if (!(g->f = realloc(g->f, (size_t)g->capf * sizeof *g->f))) die("out of memory");
    }
    g->f[g->nf] = (fcost){ ob, fn, 0 };
    return g->nf++;
}

/* The Ir column of a cost line, after npos position columns. */
static uint64_t cg_cost(const char *s, int npos, int ir)
{
    char *end;
    for (int k = 0; k < npos + ir; k++) {
        while (*s == ' ') s++;
        while (*s && *s != ' ') s++;
    }
    return strtoull(s, &end, 10);
}

/* Parses path into g; false with why in err. */
static bool cg_read(cgfile *g, const char *path, char *err, size_t errlen)
{
    char line[8192];
    int ob = -1, fn = -1, cur = -1, npos = 1, ir = 0;
    bool call_cost = false, have_total = false;
    FILE *f = fopen(path, "r");
    memset(g, 0, sizeof *g);
    if (!f) return fail(err, errlen, "cannot read %s: %s", path, strerror(errno));
    while (fgets(line, sizeof line, f)) {
        char *s = line;
        s[strcspn(s, "\n")] = 0;
        if ((*s >= '0' && *s <= '9') || *s == '+' || *s == '-' || *s == '*') {
            uint64_t c = cg_cost(s, npos, ir);
            if (call_cost) call_cost = false; /* the inclusive cost of the call before: not self */
            else if (cur >= 0) g->f[cur].self += c, g->sum += c;
        } else if (!strncmp(s, "ob=", 3) || !strncmp(s, "fn=", 3)) {
            int id = cg_name(g, *s == 'f', s + 3);
            if (*s == 'o') ob = id;
            else fn = id;
            cur = fn >= 0 ? cg_entry(g, ob, fn) : -1;
        } else if (!strncmp(s, "cob=", 4) || !strncmp(s, "cfn=", 4)) {
            cg_name(g, s[1] == 'f', s + 4); /* may define a name used later */
        } else if (!strncmp(s, "calls=", 6)) {
            call_cost = true;
        } else if (!strncmp(s, "positions:", 10)) {
            npos = 0;
            for (char *p = strtok(s + 10, " "); p; p = strtok(NULL, " ")) npos++;
        } else if (!strncmp(s, "events:", 7)) {
            int k = 0;
            for (char *p = strtok(s + 7, " "); p; p = strtok(NULL, " "), k++)
                if (!strcmp(p, "Ir")) ir = k;
        } else if (!strncmp(s, "totals:", 7) || (!have_total && !strncmp(s, "summary:", 8))) {
            g->total = cg_cost(strchr(s, ':') + 1, 0, ir);
            have_total = true;
        }
    }
    fclose(f);
    if (!have_total) return fail(err, errlen, "%s has no totals: or summary: line", path);
    return true;
}

static void cg_free(cgfile *g)
{
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < g->nnames[s]; i++) free(g->names[s][i]);
        free(g->names[s]);
    }
    free(g->f);
}

/* "function [object]" of entry i. */
static void cg_label(const cgfile *g, int i, char *buf, size_t len)
{
    const fcost *e = &g->f[i];
    const char *fn = e->fn < g->nnames[1] && g->names[1][e->fn] ? g->names[1][e->fn] : "?";
    const char *ob = e->ob >= 0 && e->ob < g->nnames[0] && g->names[0][e->ob] ? g->names[0][e->ob] : "?";
    const char *slash = strrchr(ob, '/');
    snprintf(buf, len, "%s [%s]", fn, slash ? slash + 1 : ob);
}

/* ---- running valgrind ---- */
/* The first line of file that valgrind's own messages do not start with "==pid==" (the
 * child's error), else the last of valgrind's lines; "" if none. */
static void log_reason(const char *file, char *out, size_t len)
{
    char line[512];
    FILE *f = fopen(file, "r");
    out[0] = 0;
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0]) continue;
        if (strncmp(line, "==", 2) != 0) {
            snprintf(out, len, "%s", line);
            break;
        }
        snprintf(out, len, "%s", line);
    }
    fclose(f);
}

/* Runs `valgrind --tool=callgrind --callgrind-out-file=out exe --insns-child n guest` with its
 * output in log; false with why in err. */
static bool run_callgrind(const char *valgrind, const char *exe, int n, const char *guest, const char *out,
                          const char *log, char *err, size_t errlen)
{
    char opt[PATH_MAX + 32], num[16], why[512];
    char *argv[] = { (char *)valgrind, "--tool=callgrind", opt, (char *)exe, "--insns-child", num, (char *)guest, NULL };
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int e, status;
    if ((size_t)snprintf(opt, sizeof opt, "--callgrind-out-file=%s", out) >= sizeof opt)
        return fail(err, errlen, "path too long: %s", out);
    snprintf(num, sizeof num, "%d", n);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    fflush(NULL);
    e = posix_spawn(&pid, valgrind, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) return fail(err, errlen, "cannot run %s with its output in %s: %s", valgrind, log, strerror(e));
    status = wait_child(pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
    log_reason(log, why, sizeof why);
    return fail(err, errlen, "valgrind (%d calls) %s %d: %s", n, WIFEXITED(status) ? "exited with" : "died of signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), why[0] ? why : "no message");
}

static int cmp_fn(const void *a, const void *b)
{
    double x = ((const insns_fn *)a)->per_call, y = ((const insns_fn *)b)->per_call;
    return x > y ? -1 : x < y;
}

/* The INSNS_TOP functions with the most self instructions per call (many minus few). */
static void top_functions(insns_res *m, const cgfile *few, const cgfile *many)
{
    const double calls = INSNS_CALLS_MANY - INSNS_CALLS_FEW;
    insns_fn *all = calloc((size_t)many->nf + 1, sizeof *all);
    char other[sizeof all->name];
    int n = 0;
    double shown = 0;
    if (!all) die("out of memory");
    for (int i = 0; i < many->nf; i++) {
        uint64_t before = 0;
        cg_label(many, i, all[n].name, sizeof all[n].name);
        for (int j = 0; j < few->nf; j++) {
            cg_label(few, j, other, sizeof other);
            if (!strcmp(other, all[n].name)) before += few->f[j].self;
        }
        all[n].per_call = ((double)many->f[i].self - (double)before) / calls;
        if (all[n].per_call != 0) n++;
    }
    qsort(all, (size_t)n, sizeof *all, cmp_fn);
    m->ntop = n < INSNS_TOP ? n : INSNS_TOP;
    for (int i = 0; i < m->ntop; i++) m->top[i] = all[i], shown += all[i].per_call;
    m->top_other = m->per_call - shown;
    free(all);
}

void insns_measure(bench *b, const char *dir)
{
    insns_res *m = &b->insns;
    static const int calls[2] = { INSNS_CALLS_FEW, INSNS_CALLS_MANY };
    char valgrind[PATH_MAX], exe[PATH_MAX], out[2][PATH_MAX], log[PATH_MAX];
    cgfile g[2];
    ssize_t k;
    m->ok = false;
    if (!find_in_path("valgrind", valgrind, sizeof valgrind)) {
        fail(m->err, sizeof m->err, "valgrind is not installed (not found in PATH; Debian package valgrind)");
        return;
    }
    if (access(m->guest, R_OK) != 0) {
        fail(m->err, sizeof m->err, "cannot read the guest %s: %s", m->guest, strerror(errno));
        return;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fail(m->err, sizeof m->err, "cannot create %s: %s", dir, strerror(errno));
        return;
    }
    if ((k = readlink("/proc/self/exe", exe, sizeof exe - 1)) <= 0)
        die("readlink /proc/self/exe: %s", strerror(errno));
    exe[k] = 0;
    for (int i = 0; i < 2; i++) {
        if ((size_t)snprintf(out[i], sizeof out[i], "%s/callgrind.echo.%d", dir, calls[i]) >= sizeof out[i] ||
            (size_t)snprintf(log, sizeof log, "%s/callgrind.echo.%d.log", dir, calls[i]) >= sizeof log) {
            fail(m->err, sizeof m->err, "path too long: %s", dir);
            return;
        }
        if (!run_callgrind(valgrind, exe, calls[i], m->guest, out[i], log, m->err, sizeof m->err)) return;
    }
    for (int i = 0; i < 2; i++)
        if (!cg_read(&g[i], out[i], m->err, sizeof m->err)) {
            if (i) cg_free(&g[0]);
            return;
        }
    m->total[0] = g[0].total;
    m->total[1] = g[1].total;
    m->per_call = ((double)g[1].total - (double)g[0].total) / (INSNS_CALLS_MANY - INSNS_CALLS_FEW);
    m->ok = true;
    if (g[0].sum != g[0].total || g[1].sum != g[1].total)
        fail(m->top_err, sizeof m->top_err,
             "the self costs in the callgrind files do not add up to their totals (%" PRIu64 " / %" PRIu64 ", %" PRIu64
             " / %" PRIu64 ")",
             g[0].sum, g[0].total, g[1].sum, g[1].total);
    else top_functions(m, &g[0], &g[1]);
    cg_free(&g[0]);
    cg_free(&g[1]);
}

void insns_print(const insns_res *m, bool top)
{
    printf("host instructions per warm Echo(\"hello\") call: ");
    if (!m->ok) {
        printf("not measured: %s\n", m->err);
        return;
    }
    printf("%.1f (valgrind --tool=callgrind, %s: (%" PRIu64 " - %" PRIu64 ") / %d, the totals of %d and %d calls)\n",
           m->per_call, m->guest, m->total[1], m->total[0], INSNS_CALLS_MANY - INSNS_CALLS_FEW, INSNS_CALLS_MANY,
           INSNS_CALLS_FEW);
    if (!top) return;
    if (m->top_err[0]) {
        printf("  (no breakdown: %s)\n", m->top_err);
        return;
    }
    printf("where they go, self instructions per call (the same difference per function):\n");
    for (int i = 0; i < m->ntop; i++)
        printf("  %8.1f %5.1f%%  %s\n", m->top[i].per_call, 100.0 * m->top[i].per_call / m->per_call, m->top[i].name);
    printf("  %8.1f %5.1f%%  (the other functions)\n", m->top_other, 100.0 * m->top_other / m->per_call);
}

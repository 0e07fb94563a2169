/* spawn.c - the process rows, for comparison: fork + execve, posix_spawn, and bwrap
 * --unshare-all of a static binary that returns at once, each waited for; timed in a helper
 * process forked at startup. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

int wait_child(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die("waitpid: %s", strerror(errno));
    return status;
}

static void check_status(const char *what, int status)
{
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("%s: the child %s %d", what, WIFEXITED(status) ? "exited with" : "died of signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/* One sample of process row r, in the helper. */
static uint64_t time_process(bench *b, int r, span *sp)
{
    char *const argv_true[] = { b->static_bin, NULL };
    char *const argv_bwrap[] = { b->bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-all", b->static_bin, NULL };
    pid_t pid;
    int e, status;
    uint64_t t;
    span_begin(sp);
    if (r == R_FORK_EXEC) {
        pid = fork();
        if (pid < 0) die("fork: %s", strerror(errno));
        if (pid == 0) {
            execve(b->static_bin, argv_true, environ);
            _exit(127);
        }
    } else if ((e = posix_spawn(&pid, r == R_BWRAP ? b->bwrap : b->static_bin, NULL, NULL,
                                r == R_BWRAP ? argv_bwrap : argv_true, environ)) != 0) {
        die("posix_spawn %s: %s", r == R_BWRAP ? b->bwrap : b->static_bin, strerror(e));
    }
    status = wait_child(pid);
    t = span_end(sp);
    check_status(rows[r].label, status);
    return t;
}

/* The process rows run in a helper process forked at startup, before any VM exists: forking
 * the benchmark itself would write-protect every guest page of every sandbox for copy-on-
 * write (KVM then re-faults them all: the rows after it would pay), and would time the
 * copying of the benchmark's page tables rather than the start of a process. The helper is
 * a small single-threaded process; it times each sample itself and sends the time back. */
typedef struct spawner {
    pid_t pid;
    int req, resp; /* requests to the helper (row numbers), times from it */
} spawner;

static spawner helper = { -1, -1, -1 };

static bool io_full(int fd, void *buf, size_t len, bool wr)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t k = wr ? write(fd, p, len) : read(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k, len -= (size_t)k;
    }
    return true;
}

static void spawner_start(bench *b)
{
    int q[2], r[2];
    if (pipe2(q, O_CLOEXEC) < 0 || pipe2(r, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
    fflush(NULL);
    helper.pid = fork();
    if (helper.pid < 0) die("fork: %s", strerror(errno));
    if (helper.pid == 0) {
        int rr;
        close(q[1]), close(r[0]);
        while (io_full(q[0], &rr, sizeof rr, false)) {
            span sp = { 0 };
            uint64_t t = time_process(b, rr, &sp);
            if (!io_full(r[1], &t, sizeof t, true)) break;
        }
        _exit(0);
    }
    close(q[0]), close(r[1]);
    helper.req = q[1];
    helper.resp = r[0];
}

/* One sample of process row r, timed in the helper (its counters are not read). */
uint64_t sample_process(bench *b, int r, span *sp)
{
    uint64_t t;
    if (!io_full(helper.req, &r, sizeof r, true) || !io_full(helper.resp, &t, sizeof t, false))
        die("the process helper died (see its message above)");
    return t;
}

static void spawner_stop(void)
{
    if (helper.pid <= 0) return;
    close(helper.req), close(helper.resp);
    wait_child(helper.pid);
    helper.pid = -1;
}

/* Runs bwrap once with its output captured: NULL if it works, else why not. */
static char *bwrap_check(bench *b)
{
    char *const argv[] = { b->bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-all", b->static_bin, NULL };
    char out[1024], *msg;
    posix_spawn_file_actions_t fa;
    int p[2], e, status;
    size_t n = 0;
    ssize_t k;
    pid_t pid;
    if (pipe2(p, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    e = posix_spawn(&pid, b->bwrap, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (e != 0) {
        close(p[0]);
        if (asprintf(&msg, "error: cannot run %s: %s", b->bwrap, strerror(e)) < 0) die("out of memory");
        return msg;
    }
    while (n < sizeof out - 1 && (k = read(p[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)k;
    out[n] = 0;
    close(p[0]);
    status = wait_child(pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return NULL;
    out[strcspn(out, "\n")] = 0;
    if (asprintf(&msg, "error: bwrap %s %d: %s", WIFEXITED(status) ? "exited with" : "died of signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), out) < 0)
        die("out of memory");
    return msg;
}

/* Builds the static binary the process rows start: a C program returning 0 at once, linked
 * with `gcc -static -O2` into the benchmark's temporary directory. NULL, or why it failed. */
static char *build_static_binary(bench *b)
{
    char src[PATH_MAX], cmd[4 * PATH_MAX], log[PATH_MAX], line[256] = "", *msg;
    FILE *f;
    int rc;
    snprintf(src, sizeof src, "%s/true.c", b->tmpdir);
    snprintf(b->static_bin, sizeof b->static_bin, "%s/true", b->tmpdir);
    snprintf(log, sizeof log, "%s/gcc.log", b->tmpdir);
    if (!(f = fopen(src, "w"))) die("cannot write %s: %s", src, strerror(errno));
    fputs("int main(void) { return 0; }\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "gcc -static -O2 -o '%s' '%s' >'%s' 2>&1", b->static_bin, src, log);
    rc = system(cmd);
    b->static_how = "gcc -static -O2 of `int main(void) { return 0; }` (glibc, static)";
    if (rc == 0 && access(b->static_bin, X_OK) == 0) return NULL;
    if ((f = fopen(log, "r"))) {
        if (!fgets(line, sizeof line, f)) line[0] = 0;
        fclose(f);
    }
    line[strcspn(line, "\n")] = 0;
    if (asprintf(&msg, "error: no static binary (gcc -static failed: %s)", line[0] ? line : "no output") < 0)
        die("out of memory");
    return msg;
}

/* The static binary, bwrap, and the helper process: first, while this process is small. */
void spawn_setup(bench *b)
{
    char *why = build_static_binary(b);
    if (why) rows[R_FORK_EXEC].err = rows[R_SPAWN].err = rows[R_BWRAP].err = why;
    else if (!find_in_path("bwrap", b->bwrap, sizeof b->bwrap))
        rows[R_BWRAP].err = "error: bwrap not found in PATH (scripts/setup.sh installs bubblewrap)";
    else rows[R_BWRAP].err = bwrap_check(b);
    if (!why) spawner_start(b);
}

void spawn_teardown(bench *b) { spawner_stop(); }

/* test_python_suite.c - MicroPython's own tests (tests/basics, float, micropython, extmod of
 * the unpacked source) run in the Python guest, each in a fresh sandbox (one sandbox
 * restored from one snapshot per test), and by the same interpreter built natively
 * (build/native/micropython, one process per test). Each output is compared with the
 * test's .exp file or, without one, with CPython's output (Debian python3, cached under
 * build/obj/lang/python/cpython-exp), as MicroPython's run-tests.py does. Prints pass/skip/fail
 * counts side by side and fails if a test passes natively but not in the sandbox, unless
 * lang/python/suite-differences.txt lists it with the reason.
 * HL_PY_SUITE_VERBOSE=1 prints every test's result; HL_PY_SUITE_ONLY=dir/name.py runs one. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"
#include "hyperlight/lang.h"

#define TEST_TIMEOUT_S 30
static const char *const dirs[] = { "basics", "float", "micropython", "extmod" };

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_add(buf *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        b->cap = (b->len + len + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = 0;
}
static void buf_str(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static bool read_file(const char *path, buf *b)
{
    FILE *f = fopen(path, "rb");
    char tmp[65536];
    size_t n;
    b->len = 0;
    buf_add(b, "", 0);
    if (!f) return false;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) buf_add(b, tmp, n);
    fclose(f);
    return true;
}

/* Runs argv in directory cwd with stdout and stderr into out; returns the exit status (or
 * -1 if killed, e.g. by the time limit). */
static int run_process(char *const argv[], const char *cwd, buf *out)
{
    int fds[2];
    out->len = 0;
    buf_add(out, "", 0);
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        if (chdir(cwd) != 0) _exit(127);
        alarm(TEST_TIMEOUT_S);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    char tmp[65536];
    ssize_t n;
    while ((n = read(fds[0], tmp, sizeof tmp)) > 0) buf_add(out, tmp, (size_t)n);
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- the guest ---- */
static buf guest_out;
static void on_print(void *user, int stream, const char *data, size_t len) { buf_add(&guest_out, data, len); }

/* The traceback field of LastError's JSON, unescaped enough to compare with a native run
 * (both only count as a CRASH anyway). */
static void append_traceback(hl_sandbox *sb)
{
    hl_value r;
    if (hl_call(sb, HL_LANG_FN_LAST_ERROR, HL_STRING, NULL, 0, &r) != HL_OK) return;
    const char *s = strstr(hl_value_str(&r), "\"traceback\": \"");
    if (!s) return;
    for (s += 14; *s && *s != '"'; s++) {
        char c = *s;
        if (c == '\\' && s[1]) c = *++s == 'n' ? '\n' : *s;
        buf_add(&guest_out, &c, 1);
    }
    buf_str(&guest_out, "\n");
}

static void run_guest(hl_sandbox *sb, hl_snapshot *snap, const char *name, const buf *code)
{
    guest_out.len = 0;
    buf_add(&guest_out, "", 0);
    if (hl_sandbox_restore(sb, snap) != HL_OK) {
        buf_str(&guest_out, "RESTORE FAILED");
        return;
    }
    hl_value args[3] = { hl_str(code->p), hl_str(name), hl_str("[]") }, r;
    hl_status st = hl_call(sb, HL_LANG_FN_RUN, HL_VOID, args, 3, &r);
    if (st == HL_ERR_GUEST && hl_last_error_code(sb) == HL_LANG_ERR_EXIT) {
        if (strcmp(hl_last_guest_message(sb), "exit 0") != 0) buf_str(&guest_out, "CRASH");
    } else if (st == HL_ERR_GUEST) {
        append_traceback(sb);
        buf_str(&guest_out, "CRASH");
    } else if (st == HL_ERR_CANCELLED) {
        buf_str(&guest_out, "TIMEOUT");
    } else if (st != HL_OK) {
        buf_str(&guest_out, hl_last_error(sb));
        buf_str(&guest_out, "CRASH");
    }
}

/* ---- expected output ---- */
static void mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
}

static void expected(const char *bdir, const char *tdir, const char *dir, const char *name, buf *exp)
{
    char path[1024], cache[1024];
    snprintf(path, sizeof path, "%s/%s/%s.exp", tdir, dir, name);
    if (read_file(path, exp)) return;
    snprintf(cache, sizeof cache, "%s/obj/lang/python/cpython-exp/%s/%s.exp", bdir, dir, name);
    if (read_file(cache, exp)) return;
    char where[1024];
    snprintf(where, sizeof where, "%s/%s", tdir, dir);
    char *argv[] = { "python3", "-BS", (char *)name, NULL };
    if (run_process(argv, where, exp) != 0) {
        buf crash = { 0 };
        buf_str(&crash, "CPYTHON3 CRASH:\n");
        buf_add(&crash, exp->p, exp->len);
        free(exp->p);
        *exp = crash;
    }
    mkdirs(cache);
    FILE *f = fopen(cache, "wb");
    if (f) fwrite(exp->p, 1, exp->len, f), fclose(f);
}

/* The native build's output for dir/name, written to build/obj/lang/python/native-out/ as
 * well. With HL_PY_SUITE_NATIVE_CACHE set (scripts/test-hwkvm.sh sets it: under emulation the
 * 700 native processes take minutes, and their output does not depend on the KVM the
 * sandbox runs on), an output saved after the native binary was last built is used as is. */
static void run_native(const char *bdir, const char *native, const char *tdir, const char *dir, const char *name,
                       buf *out)
{
    char cache[1024], where[1024];
    struct stat bin, saved;
    char *argv[] = { (char *)native, (char *)name, NULL };
    snprintf(cache, sizeof cache, "%s/obj/lang/python/native-out/%s/%s.out", bdir, dir, name);
    if (getenv("HL_PY_SUITE_NATIVE_CACHE") && stat(native, &bin) == 0 && stat(cache, &saved) == 0 &&
        saved.st_mtime >= bin.st_mtime && read_file(cache, out))
        return;
    snprintf(where, sizeof where, "%s/%s", tdir, dir);
    out->len = 0;
    if (run_process(argv, where, out) != 0) buf_str(out, "CRASH");
    mkdirs(cache);
    FILE *f = fopen(cache, "wb");
    if (f) fwrite(out->p, 1, out->len, f), fclose(f);
}

enum { PASS, SKIP, FAIL };
static int verdict(const buf *out, const buf *exp)
{
    if (strcmp(out->p, "SKIP\n") == 0) return SKIP;
    return out->len == exp->len && memcmp(out->p, exp->p, out->len) == 0 ? PASS : FAIL;
}

/* Whether lang/python/suite-differences.txt lists test ("dir/name.py" at a line's start). */
static bool listed(const buf *list, const char *test)
{
    size_t n = strlen(test);
    for (const char *p = list->p; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, test, n) == 0 && (p[n] == ' ' || p[n] == '\t' || p[n] == '\n' || p[n] == 0)) return true;
    return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void)
{
    const char *bdir = getenv("HL_BUILD") ? getenv("HL_BUILD") : "build";
    const char *only = getenv("HL_PY_SUITE_ONLY");
    bool verbose = getenv("HL_PY_SUITE_VERBOSE") != NULL;
    char tdir[512], native[512], guest[512];
    snprintf(tdir, sizeof tdir, "%s/third_party/micropython-1.25.0/tests", bdir);
    snprintf(native, sizeof native, "%s/native/micropython", bdir);
    snprintf(guest, sizeof guest, "%s/guests/python.elf", bdir);
    char *native_abs = realpath(native, NULL);
    if (!native_abs || access(tdir, R_OK) != 0) {
        fprintf(stderr, "test_python_suite: needs %s and %s (make native-python; scripts/setup.sh)\n", native, tdir);
        return 1;
    }
    buf differences = { 0 };
    if (!read_file("lang/python/suite-differences.txt", &differences)) {
        fprintf(stderr,
                "test_python_suite: cannot read lang/python/suite-differences.txt (run from the repository root)\n");
        return 1;
    }

    hl_config *cfg = hl_config_new();
    hl_config_set_heap_size(cfg, 48u << 20); /* the guest's default: a 42 MiB GC heap, the native one's */
    hl_config_set_scratch_size(cfg, 1u << 20);
    hl_config_set_timeout(cfg, TEST_TIMEOUT_S * 1000);
    hl_config_set_print(cfg, on_print, NULL);
    hl_sandbox *sb;
    hl_snapshot *snap;
    if (hl_sandbox_new_from_file(&sb, guest, cfg) != HL_OK || hl_snapshot_take(sb, &snap) != HL_OK) {
        fprintf(stderr, "test_python_suite: cannot create the Python sandbox: %s\n", hl_last_error(NULL));
        return 1;
    }

    int count[4][2][3] = { { { 0 } } }, guest_only = 0, stale = 0;
    double t_native = 0, t_guest = 0;
    buf code = { 0 }, exp = { 0 }, nat = { 0 };
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", tdir, dirs[d]);
        DIR *dp = opendir(path);
        struct dirent *e;
        char *names[2048];
        int n = 0;
        while (dp && (e = readdir(dp)) && n < 2048) {
            size_t l = strlen(e->d_name);
            if (l > 3 && strcmp(e->d_name + l - 3, ".py") == 0) names[n++] = strdup(e->d_name);
        }
        if (dp) closedir(dp);
        qsort(names, n, sizeof names[0], cmp_str);
        for (int i = 0; i < n; i++) {
            char test[300];
            snprintf(test, sizeof test, "%s/%s", dirs[d], names[i]);
            if (only && strcmp(only, test) != 0) continue;
            snprintf(path, sizeof path, "%s/%s", tdir, test);
            read_file(path, &code);
            expected(bdir, tdir, dirs[d], names[i], &exp);

            double t0 = test_now_ms();
            run_native(bdir, native_abs, tdir, dirs[d], names[i], &nat);
            double t1 = test_now_ms();
            run_guest(sb, snap, names[i], &code);
            double t2 = test_now_ms();
            t_native += t1 - t0, t_guest += t2 - t1;

            int vn = verdict(&nat, &exp), vg = verdict(&guest_out, &exp);
            count[d][0][vn]++, count[d][1][vg]++;
            bool known = listed(&differences, test);
            if (vn == PASS && vg != PASS && !known) {
                guest_only++;
                fprintf(stderr, "GUEST-ONLY FAILURE %s: expected\n%s\n--- sandbox output\n%s\n---\n", test, exp.p,
                        guest_out.p);
            } else if (known && !(vn == PASS && vg != PASS)) {
                stale++;
                printf("note: %s is listed in lang/python/suite-differences.txt but passes (or fails natively too)\n",
                       test);
            }
            if (verbose)
                printf("%-44s native %-4s sandbox %s\n", test, (const char *[]){ "pass", "skip", "FAIL" }[vn],
                       (const char *[]){ "pass", "skip", "FAIL" }[vg]);
            free(names[i]);
        }
    }
    printf("MicroPython tests            native (pass/skip/fail)   sandbox (pass/skip/fail)\n");
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++)
        printf("  %-26s %5d %5d %5d         %5d %5d %5d\n", dirs[d], count[d][0][0], count[d][0][1], count[d][0][2],
               count[d][1][0], count[d][1][1], count[d][1][2]);
    printf("time: native %.1f s (a process per test), sandbox %.1f s (a restore per test)\n", t_native / 1000,
           t_guest / 1000);
    printf("%d test(s) pass natively but fail in the sandbox without a listed reason; %d stale listing(s)\n",
           guest_only, stale);
    CHECK_INT(guest_only, 0);
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    free(native_abs);
    free(code.p), free(exp.p), free(nat.p), free(differences.p), free(guest_out.p);
    return check_exit("test_python_suite");
}

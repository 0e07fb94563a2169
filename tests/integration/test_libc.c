/* test_libc.c - the C library a guest gets: printf of doubles and strtod/strtof/strtold
 * compared digit for digit with the host's glibc for a table of cases (plus literal
 * strings), SSIZE_MAX, the macros hyperlight-cc defines, every POSIX leaf of
 * src/guest/posix.c (result and errno), and hyperlight-cc itself (no host header, no host
 * library, the hint for an undefined symbol). Guest: tests/guests/libc_guest.c. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define GUEST "libc_guest"

/* The guest's result of name(args), or "(failed)". The string lives in sb until its next call. */
static const char *call_str(hl_sandbox *sb, const char *name, const hl_value *args, int nargs)
{
    hl_value r;
    hl_status st = hl_call(sb, name, HL_STRING, args, nargs, &r);
    if (st != HL_OK) {
        fprintf(stderr, "%s: %s: %s\n", name, hl_status_name(st), hl_last_error(sb));
        return "(failed)";
    }
    return hl_value_str(&r);
}

static const char *guest_format(hl_sandbox *sb, const char *fmt, double x)
{
    hl_value a[2] = { hl_str(fmt), hl_f64(x) };
    return call_str(sb, "Format", a, 2);
}

/* ---- printf: every format of the table with every value, against glibc ---- */
static void test_printf_table(hl_sandbox *sb)
{
    static const char *const fmts[] = {
        "%.17g", "%.20f", "%.18g", "%.30e", "%g",    "%e",     "%f",     "%.0f",    "%.1f",   "%.2f",
        "%.3e",  "%.0e",  "%#.0f", "%.15g", "%.14g", "%.40g",  "%.60f",  "%.25e",   "%10.3f", "%-14.4e|",
        "%+.5g", "%#g",   "%#.3g", "%.1g",  "%.0g",  "%.760e", "%.330f", "%.1074f", "%G",     "%E",
    };
    const double vals[] = {
        0.1,
        1.0 / 3,
        0x1p-1074,
        DBL_MAX,
        DBL_MIN,
        1e23,
        0.5,
        2.5,
        1.5,
        0.125,
        0.25,
        0.15,
        1e21,
        1e300,
        -0.0,
        0.0,
        1e-5,
        9.5367431640625e-07,
        123456789.125,
        0.999999,
        9.999999,
        99.5,
        -2.675,
        1e-320,
        0x1p1023,
        1.0,
        INFINITY,
        -INFINITY,
        0x1.fffffffffffffp-1,
        0.005,
        1.005,
        0.045,
        5e-5,
        0.0005,
        1000000000000000.5,
        4503599627370495.5,
        0x1p-1022,
        0x1.8p-1070,
        123.456,
        1e15,
        1e16,
        9007199254740993.0,
    };
    char want[1200];
    int bad = 0;
    for (size_t f = 0; f < sizeof fmts / sizeof *fmts; f++)
        for (size_t v = 0; v < sizeof vals / sizeof *vals; v++) {
            /* %.1074f of a big value does not fit the guest's 1200 bytes: only small ones */
            if (strcmp(fmts[f], "%.1074f") == 0 && fabs(vals[v]) > 1) continue;
            snprintf(want, sizeof want, fmts[f], vals[v]);
            const char *got = guest_format(sb, fmts[f], vals[v]);
            check_count++;
            if (strcmp(got, want) != 0) {
                check_failures++;
                if (bad++ < 20)
                    fprintf(stderr, "printf(\"%s\", %a):\n    guest \"%.200s\"\n    glibc \"%.200s\"\n", fmts[f],
                            vals[v], got, want);
            }
        }
}

/* The cases the SDK's picolibc got wrong before scripts/picolibc-patches/0003, literally. */
static void test_printf_literal(hl_sandbox *sb)
{
    CHECK_STR(guest_format(sb, "%.17g", 0.1), "0.10000000000000001");
    CHECK_STR(guest_format(sb, "%.20f", 0.1), "0.10000000000000000555");
    CHECK_STR(guest_format(sb, "%.18g", 0x1p-1074), "4.94065645841246544e-324");
    CHECK_STR(guest_format(sb, "%.30e", 0.1), "1.000000000000000055511151231258e-01");
    CHECK_STR(guest_format(sb, "%.0f", 2.5), "2");
    CHECK_STR(guest_format(sb, "%.0f", 3.5), "4");
    CHECK_STR(guest_format(sb, "%.2f", 0.125), "0.12");
    CHECK_STR(guest_format(sb, "%.14g", 0.1), "0.1");
    CHECK_STR(guest_format(sb, "%.3f", 1e-9), "0.000");
    CHECK_STR(guest_format(sb, "%.0f", 0.6), "1");
    CHECK_STR(guest_format(sb, "%.0f", 1e22), "10000000000000000000000");
    CHECK_STR(guest_format(sb, "%.0f", 1e23), "99999999999999991611392");
}

/* Repeat formats n times in one call: the guest's printf state does not drift. */
static void test_printf_repeat(hl_sandbox *sb)
{
    char want[64];
    hl_value a[3] = { hl_str("%.17g"), hl_f64(0.1), hl_i32(1000) }, r;
    CHECK_INT(hl_call(sb, "Repeat", HL_I64, a, 3, &r), HL_OK);
    CHECK_INT(r.v.i64, 1000 * snprintf(want, sizeof want, "%.17g", 0.1));
}

/* Random doubles (every exponent, fixed seed) in the formats around the 15-digit boundary
 * where printf changes engines (scripts/picolibc-patches/0003), against glibc. */
static void test_printf_random(hl_sandbox *sb)
{
    static const char *const fmts[] = { "%.14g", "%.15g", "%.16g", "%.17g", "%.3e", "%.10f", "%g", "%.15e" };
    uint64_t state = 0x9e3779b97f4a7c15ull;
    char want[1200];
    int bad = 0;
    for (int i = 0; i < 1500; i++) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        uint64_t bits = state & ~(1ull << 63);
        double x;
        memcpy(&x, &bits, sizeof x);
        if (!isfinite(x)) continue;
        for (size_t f = 0; f < sizeof fmts / sizeof *fmts; f++) {
            snprintf(want, sizeof want, fmts[f], x);
            const char *got = guest_format(sb, fmts[f], x);
            check_count++;
            if (strcmp(got, want) != 0) {
                check_failures++;
                if (bad++ < 10)
                    fprintf(stderr, "printf(\"%s\", %a): guest \"%.100s\", glibc \"%.100s\"\n", fmts[f], x, got, want);
            }
        }
    }
}

/* ---- sscanf shares strtod's parser: its results against glibc ---- */
static void test_sscanf(hl_sandbox *sb)
{
    static const char *const inputs[] = { "1.5", "0x10", "0x1p3", "-2.5e-3x", "00x1", "0x1.8p1", ".5", "abc", "inf" };
    char want[64];
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        double d = 0;
        int n = -1;
        if (sscanf(inputs[i], "%lf%n", &d, &n) != 1) snprintf(want, sizeof want, "none");
        else snprintf(want, sizeof want, "%a %d", d, n);
        hl_value a = hl_str(inputs[i]);
        const char *got = call_str(sb, "Sscanf", &a, 1);
        check_count++;
        if (strcmp(got, want) != 0) {
            check_failures++;
            fprintf(stderr, "sscanf(\"%s\"): guest \"%s\", glibc \"%s\"\n", inputs[i], got, want);
        }
    }
    /* glibc's sscanf reads the 'e' of "1e" (it does not give back what it read); picolibc
     * stops after the 1, as strtod does */
    hl_value a = hl_str("1e");
    CHECK_STR(call_str(sb, "Sscanf", &a, 1), "0x1p+0 1");
}

/* ---- strtod, strtof, strtold: the bits and the end pointer, against glibc ---- */
static void test_strto(hl_sandbox *sb)
{
    static const char *const inputs[] = {
        "0x",
        "0X",
        "0xg",
        "-0x",
        " 0x",
        "0x1p",
        "0x1p-",
        "0x.p1",
        "0x.",
        "00x1",
        "0.x1",
        "0x1.8p1",
        "0x10",
        "0xAbC",
        "1e",
        "1e+",
        ".5",
        ".",
        "",
        "-",
        "inf",
        "-Infinity",
        "nan",
        "0.1",
        "1e400",
        "4.9e-324",
        "2.2250738585072011e-308",
        "-0",
        "123456789012345678901234567890",
        "0x1.fffffffffffffp1023",
        "3.14abc",
        "  +7e-1x",
        "0x.8p1",
        "0xp1",
        "0x1.",
        "0x.8",
        "0x1P+",
        "1.5e-400",
        "0x1p-1080",
        "-0x",
    };
    static const char kinds[] = { 'd', 'f', 'l' };
    char want[64];
    for (size_t k = 0; k < sizeof kinds; k++)
        for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
            const char *s = inputs[i];
            char *end;
            if (kinds[k] == 'f') {
                float f = strtof(s, &end);
                uint32_t u;
                memcpy(&u, &f, sizeof u);
                snprintf(want, sizeof want, "%08x %d", u, (int)(end - s));
            } else {
                double d = kinds[k] == 'l' ? (double)strtold(s, &end) : strtod(s, &end);
                uint64_t u;
                memcpy(&u, &d, sizeof u);
                snprintf(want, sizeof want, "%016llx %d", (unsigned long long)u, (int)(end - s));
            }
            char kind[2] = { kinds[k], 0 };
            hl_value a[2] = { hl_str(kind), hl_str(s) };
            const char *got = call_str(sb, "Strtod", a, 2);
            check_count++;
            if (strcmp(got, want) != 0) {
                check_failures++;
                fprintf(stderr, "strto%c(\"%s\"): guest \"%s\", glibc \"%s\"\n", kinds[k], s, got, want);
            }
        }
    hl_value a[2] = { hl_str("d"), hl_str("0x") };
    CHECK_STR(call_str(sb, "Strtod", a, 2), "0000000000000000 1");
    a[1] = hl_str("0x1p");
    CHECK_STR(call_str(sb, "Strtod", a, 2), "3ff0000000000000 3");
}

/* ---- limits.h and the macros of hyperlight-cc ---- */
static void test_headers(hl_sandbox *sb)
{
    hl_value r;
    CHECK_INT(hl_call(sb, "Limits", HL_I64, NULL, 0, &r), HL_OK);
    CHECK_INT(r.v.i64, SSIZE_MAX);
    CHECK_STR(call_str(sb, "Macros", NULL, 0), "__hyperlight__");
}

/* ---- every POSIX leaf: "RESULT ERRNO" ---- */
static void test_posix(hl_sandbox *sb)
{
    static const char *const enosys[] = {
        "rename",   "link",   "symlink", "readlink", "mkdir",     "rmdir",       "chdir",  "chmod",  "utimes",
        "unlink",   "remove", "dup",     "dup2",     "pipe",      "select",      "fork",   "execve", "execv",
        "execvp",   "wait",   "waitpid", "kill",     "sigaction", "sigprocmask", "system", "chown",  "lchown",
        "truncate", "mkfifo", "mknod",   "vfork",    "execl",     "execle",      "execlp",
    };
    static const struct {
        const char *name, *want;
    } other[] = {
        { "getcwd", "0 ENOSYS" }, /* NULL */
        { "realpath", "0 ENOSYS" },
        { "mkdtemp", "0 ENOSYS" }, /* NULL */
        { "ttyname", "0 ENOTTY" }, /* NULL */
        { "umask", "18063 0" },    /* 022 (18) * 1000, then the 077 (63) just set */
        { "ids", "0 0" },
        /* getuid, geteuid, getgid, getegid */ /* NULL */
        { "isatty0", "0 ENOTTY" },
        { "isatty1", "0 ENOTTY" },
        { "getpid", "1 0" },
        { "getppid", "0 0" },
        { "systemnull", "0 0" }, /* no command processor */
        { "pagesize", "4096 0" },
        { "nprocs", "1 0" },
        { "sysconf", "-1 EINVAL" },
        { "nosuch", "unknown" },
    };
    for (size_t i = 0; i < sizeof enosys / sizeof *enosys; i++) {
        hl_value a = hl_str(enosys[i]);
        const char *got = call_str(sb, "Leaf", &a, 1);
        check_count++;
        if (strcmp(got, "-1 ENOSYS") != 0) {
            check_failures++;
            fprintf(stderr, "%s: \"%s\", want \"-1 ENOSYS\"\n", enosys[i], got);
        }
    }
    for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
        hl_value a = hl_str(other[i].name);
        CHECK_STR(call_str(sb, "Leaf", &a, 1), other[i].want);
    }
}

/* ---- hyperlight-cc: runs it on a small file, returns its exit status and output ---- */
static int run_cc(const char *src, const char *args, char *out, size_t outsz)
{
    const char *b = getenv("HL_BUILD");
    char dir[] = "/tmp/hl-test-libc.XXXXXX", cmd[1024], cwd[512];
    if (!b) b = "build";
    if (!getcwd(cwd, sizeof cwd) || !mkdtemp(dir)) return -1;
    snprintf(cmd, sizeof cmd, "%s/t.c", dir);
    FILE *f = fopen(cmd, "w");
    if (!f) return -1;
    fputs(src, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cd %s && %s%s%s/bin/hyperlight-cc %s 2>&1; echo \"rc=$?\"", dir, b[0] == '/' ? "" : cwd,
             b[0] == '/' ? "" : "/", b, args);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, outsz - 1, p) : 0;
    out[n] = 0;
    if (p) pclose(p);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return -1;
    const char *rc = strstr(out, "rc=");
    return rc ? atoi(rc + 3) : -1;
}

static void test_hyperlight_cc(void)
{
    static char out[1 << 16];
    /* a host header is not there, not glibc's */
    CHECK(run_cc("#include <pthread.h>\n", "-c t.c", out, sizeof out) != 0);
    CHECK_HAS(out, "pthread.h: No such file or directory");
    CHECK(!strstr(out, "/usr/include"));
    CHECK(run_cc("#include <sys/mman.h>\n", "-c t.c", out, sizeof out) != 0);
    CHECK_HAS(out, "sys/mman.h: No such file or directory");
    /* the compiler's own headers are */
    CHECK_INT(run_cc("#include <stddef.h>\n#include <stdarg.h>\n#include <float.h>\n#include <x86intrin.h>\n",
                     "-c t.c", out, sizeof out),
              0);
    /* -lm is picolibc's and no library outside the SDK's and the compiler's is opened */
    const char *math = "#include <math.h>\n#include \"hyperlight_guest.h\"\nvolatile double x = 2, y;\n"
                       "void hl_guest_main(void) { y = sqrt(x) + sin(x); }\n";
    CHECK_INT(run_cc(math, "-o t.elf t.c -lm -Wl,-t", out, sizeof out), 0);
    CHECK_HAS(out, "/lib/hyperlight/picolibc/lib/libm.a");
    CHECK(!strstr(out, "/usr/lib/x86_64-linux-gnu"));
    CHECK(!strstr(out, "libm-2."));
    CHECK_INT(run_cc(math, "-o t.elf t.c -lm -Wl,--verbose", out, sizeof out), 0);
    CHECK(!strstr(out, "SEARCH_DIR"));
    /* glibc's other libraries are not reachable either */
    CHECK(run_cc(math, "-o t.elf t.c -lpthread", out, sizeof out) != 0);
    CHECK_HAS(out, "cannot find -lpthread");
    /* an undefined symbol: ld's message, then the hint */
    const char *undef = "#include \"hyperlight_guest.h\"\nint nosuch(void);\nvoid hl_guest_main(void) { nosuch(); }\n";
    CHECK_INT(run_cc(undef, "-o t.elf t.c", out, sizeof out), 1);
    CHECK_HAS(out, "undefined reference to `nosuch'");
    CHECK_HAS(out, "hyperlight-cc: a guest has only the functions of the guest SDK and picolibc; docs/guest.md, "
                   "section \"hyperlight-cc and the C library\", lists them");
    CHECK(strstr(out, "nosuch'") < strstr(out, "hyperlight-cc:"));
}

int main(void)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb = must_sandbox(GUEST, cfg);
    test_printf_literal(sb);
    test_printf_table(sb);
    test_printf_repeat(sb);
    test_printf_random(sb);
    test_sscanf(sb);
    test_strto(sb);
    test_headers(sb);
    test_posix(sb);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    test_hyperlight_cc();
    return check_exit("test_libc");
}

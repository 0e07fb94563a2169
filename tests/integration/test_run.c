/* test_run.c - `hyperlight run` and `hyperlight repl` as processes: a real CLI running real
 * language guests, its stdout, stderr and exit status compared exactly; the snapshot cache
 * (made, reused, a damaged entry replaced), for each language. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char cli[512], guests[512], cache[64] = "/tmp/hl_test_run_XXXXXX";

typedef struct out {
    char out[65536], err[65536];
    int status; /* exit status, or 128 + signal */
} out;

/* Reads fd to its end into buf[cap] (NUL-terminated, the rest dropped). */
static void drain(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t got;
    char sink[4096];
    while ((got = read(fd, n + 1 < cap ? buf + n : sink, n + 1 < cap ? cap - 1 - n : sizeof sink)) != 0) {
        if (got < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (n + 1 < cap) n += (size_t)got;
    }
    buf[n] = 0;
}

/* Runs the CLI with argv (NULL-terminated, without the program) and input on stdin. */
static void run(out *o, const char *input, const char *const *argv)
{
    int in[2], po[2], pe[2], status;
    const char *args[32] = { cli };
    pid_t pid;
    int n = 1;
    while (*argv && n < 31) args[n++] = *argv++;
    args[n] = NULL;
    if (pipe(in) || pipe(po) || pipe(pe)) exit(1);
    pid = fork();
    if (pid == 0) {
        dup2(in[0], 0), dup2(po[1], 1), dup2(pe[1], 2);
        close(in[1]), close(po[0]), close(pe[0]);
        setenv("HYPERLIGHT_CACHE_DIR", cache, 1);
        setenv("HYPERLIGHT_GUEST_DIR", guests, 1);
        alarm(120);
        execv(cli, (char *const *)args);
        _exit(127);
    }
    close(in[0]), close(po[1]), close(pe[1]);
    if (input && write(in[1], input, strlen(input)) < 0) CHECK(!"stdin written");
    close(in[1]);
    /* stderr is small in every case here; read stdout first, then stderr */
    drain(po[0], o->out, sizeof o->out);
    drain(pe[0], o->err, sizeof o->err);
    close(po[0]), close(pe[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    o->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define RUN(o, input, ...) run(o, input, (const char *const[]){ __VA_ARGS__, NULL })

static const char *script(const char *name, const char *text)
{
    static char path[8][256];
    static int next;
    char *p = path[next++ % 8];
    FILE *f;
    snprintf(p, sizeof path[0], "%s/%s", cache, name);
    f = fopen(p, "w");
    if (!f) exit(1);
    fputs(text, f);
    fclose(f);
    return p;
}

static int cache_entries(const char *lang)
{
    DIR *d = opendir(cache);
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, lang, strlen(lang)) && strstr(e->d_name, ".snap")) n++;
    closedir(d);
    return n;
}

/* The first cache entry of lang, overwritten with garbage. */
static void damage_cache(const char *lang)
{
    DIR *d = opendir(cache);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, lang, strlen(lang)) && strstr(e->d_name, ".snap")) {
            int fd;
            snprintf(p, sizeof p, "%s/%s", cache, e->d_name);
            fd = open(p, O_WRONLY);
            if (fd >= 0 && pwrite(fd, "garbage!", 8, 64) != 8) CHECK(!"damaged");
            close(fd);
            break;
        }
    if (d) closedir(d);
}

static void test_usage(void)
{
    out o;
    RUN(&o, NULL, "run");
    CHECK_INT(o.status, 2);
    CHECK(strstr(o.err, "hyperlight: run: missing FILE (or -e CODE)\n") == o.err);
    RUN(&o, NULL, "run", "x.txt");
    CHECK_INT(o.status, 2);
    CHECK(strstr(o.err, "hyperlight: cannot tell the language of 'x.txt': use --lang lua|javascript|python\n") == o.err);
    RUN(&o, NULL, "run", "-e", "1");
    CHECK_INT(o.status, 2);
    CHECK(strstr(o.err, "hyperlight: run -e needs --lang lua|javascript|python\n") == o.err);
    RUN(&o, NULL, "run", "--lang", "cobol", "x");
    CHECK_INT(o.status, 2);
    CHECK(strstr(o.err, "hyperlight: unknown language 'cobol'\n") == o.err);
    RUN(&o, NULL, "run", "--timeout", "0", "x.lua");
    CHECK_INT(o.status, 2);
    CHECK(strstr(o.err, "hyperlight: --timeout: bad value '0': must be at least 1\n") == o.err);
    RUN(&o, NULL, "run", "--map", "nolabel", "x.lua");
    CHECK_INT(o.status, 2);
    CHECK(strstr(o.err, "hyperlight: --map wants LABEL=PATH, not 'nolabel'\n") == o.err);
    RUN(&o, NULL, "run", "/nonexistent/x.lua");
    CHECK_INT(o.status, 1);
    CHECK_STR(o.err, "hyperlight: cannot read /nonexistent/x.lua: No such file or directory\n");
    RUN(&o, NULL, "repl");
    CHECK_INT(o.status, 2);
    CHECK(strstr(o.err, "hyperlight: repl: give one language (lua, js, python)\n") == o.err);
    RUN(&o, NULL, "run", "--help");
    CHECK_INT(o.status, 0);
    CHECK(strstr(o.out, "usage: hyperlight run [OPTIONS] FILE [ARG...]") == o.out);
}

/* One language's cases: its spelling of each script, and what it prints. */
typedef struct lang_case {
    const char *lang, *ext;
    const char *hello, *hello_out;      /* prints its arguments */
    const char *raise, *raise_err;      /* raises; the whole stderr (%s: the script's path) */
    const char *exit3;                  /* exits with status 3 */
    const char *spin;                   /* loops forever */
    const char *stdin_code, *stdin_out; /* run from stdin with --lang */
    const char *repl_in, *repl_out;     /* a session: state persists, incomplete lines continue */
    const char *map_label, *map_text;   /* a file mapped into the guest under map_label */
    const char *map_code, *map_out;     /* reads it */
} lang_case;

static void test_lang(const lang_case *c)
{
    char name[64];
    out o;
    const char *p;
    snprintf(name, sizeof name, "hello.%s", c->ext);
    p = script(name, c->hello);
    RUN(&o, NULL, "run", p, "one", "two words");
    CHECK_INT(o.status, 0);
    CHECK_STR(o.out, c->hello_out);
    CHECK_STR(o.err, "");
    CHECK_INT(cache_entries(c->lang), 1);
    /* again, from the cache */
    RUN(&o, NULL, "run", p, "one", "two words");
    CHECK_INT(o.status, 0);
    CHECK_STR(o.out, c->hello_out);
    CHECK_INT(cache_entries(c->lang), 1);
    /* a damaged cache entry is replaced, and the run is still right */
    damage_cache(c->lang);
    RUN(&o, NULL, "run", p, "one", "two words");
    CHECK_INT(o.status, 0);
    CHECK_STR(o.out, c->hello_out);
    CHECK_STR(o.err, "");
    RUN(&o, NULL, "run", "--no-cache", p, "one", "two words");
    CHECK_STR(o.out, c->hello_out);

    snprintf(name, sizeof name, "raise.%s", c->ext);
    p = script(name, c->raise);
    RUN(&o, NULL, "run", p);
    CHECK_INT(o.status, 1);
    {
        char want[2048];
        snprintf(want, sizeof want, c->raise_err, p, p, p);
        CHECK_STR(o.err, want);
        CHECK_STR(o.out, "");
    }

    RUN(&o, NULL, "run", "--lang", c->lang, "-e", c->exit3);
    CHECK_INT(o.status, 3);
    CHECK_STR(o.err, "");

    RUN(&o, NULL, "run", "--timeout", "300", "--lang", c->lang, "-e", c->spin);
    CHECK_INT(o.status, 1);
    CHECK_STR(o.err, "hyperlight: call to guest function 'Run' timed out after 300 ms\n");

    RUN(&o, c->stdin_code, "run", "--lang", c->lang, "-");
    CHECK_INT(o.status, 0);
    CHECK_STR(o.out, c->stdin_out);

    RUN(&o, c->repl_in, "repl", c->lang);
    CHECK_INT(o.status, 0);
    CHECK_STR(o.out, c->repl_out);

    {
        char map[512];
        snprintf(map, sizeof map, "%s=%s", c->map_label, script("mapped", c->map_text));
        RUN(&o, NULL, "run", "--map", map, "--lang", c->lang, "-e", c->map_code);
        CHECK_INT(o.status, 0);
        CHECK_STR(o.out, c->map_out);
        CHECK_STR(o.err, "");
    }
}

static const lang_case lua = {
    .lang = "lua",
    .ext = "lua",
    .hello = "print('hello', #arg, arg[1], arg[2])\n",
    .hello_out = "hello\t2\tone\ttwo words\n",
    .raise = "local function f() error('boom') end\nf()\n",
    .raise_err = "%s:1: boom\nstack traceback:\n\t[C]: in function 'error'\n\t%s:1: in local 'f'\n\t%s:2: in main "
                 "chunk\n\t[C]: in ?\n",
    .exit3 = "os.exit(3)",
    .spin = "while true do end",
    .stdin_code = "print(1 + 1)",
    .stdin_out = "2\n",
    .repl_in = "x = 20\nfunction f(a)\n  return a * 2 + x\nend\nf(11)\nx, 'y'\n",
    .repl_out = "42\n20\ty\n",
    .map_label = "data.txt",
    .map_text = "line one\nline two\n",
    .map_code = "local f = assert(io.open('data.txt')); print('[' .. f:read('l') .. ']')",
    .map_out = "[line one]\n",
};

static const lang_case js = {
    .lang = "javascript",
    .ext = "js",
    .hello = "console.log('hello', scriptArgs.length, scriptArgs[1], scriptArgs[2])\n",
    .hello_out = "hello 3 one two words\n",
    .raise = "function f() { throw new TypeError('boom'); }\nf();\n",
    .raise_err = "TypeError: boom\n    at f (%s:1:35)\n    at <eval> (%s:2:2)\n",
    .exit3 = "import * as std from 'std'; std.exit(3)",
    .spin = "for (;;) {}",
    .stdin_code = "console.log(1 + 1)",
    .stdin_out = "2\n",
    .repl_in = "var x = 20\nfunction f(a) {\n  return a * 2 + x\n}\nf(11)\n[x, 'y']\n",
    .repl_out = "42\n[ 20, \"y\" ]\n",
    .map_label = "mod.js",
    .map_text = "export const v = 6 * 7;\n",
    .map_code = "import { v } from 'mod.js'; console.log(v)",
    .map_out = "42\n",
};

static const lang_case py = {
    .lang = "python",
    .ext = "py",
    .hello = "import sys\nprint('hello', len(sys.argv), sys.argv[1], sys.argv[2])\n",
    .hello_out = "hello 3 one two words\n",
    .raise = "def f():\n    raise ValueError('boom')\nf()\n",
    .raise_err = "Traceback (most recent call last):\n  File \"%s\", line 3, in <module>\n  File \"%s\", line 2, in "
                 "f\nValueError: boom\n",
    .exit3 = "import sys; sys.exit(3)",
    .spin = "while True: pass",
    .stdin_code = "print(1 + 1)",
    .stdin_out = "2\n",
    .repl_in = "x = 20\ndef f(a):\n    return a * 2 + x\n\nf(11)\n[x, 'y']\n",
    .repl_out = "42\n[20, 'y']\n",
    .map_label = "mod.py",
    .map_text = "v = 6 * 7\n",
    .map_code = "import mod; print(mod.v)",
    .map_out = "42\n",
};

int main(void)
{
    const char *b = getenv("HL_BUILD");
    snprintf(cli, sizeof cli, "%s/bin/hyperlight", b ? b : "build");
    snprintf(guests, sizeof guests, "%s/guests", b ? b : "build");
    if (!mkdtemp(cache)) return 1;
    test_usage();
    test_lang(&lua);
    test_lang(&js);
    test_lang(&py);
    {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", cache);
        if (system(cmd) != 0) CHECK(!"cache removed");
    }
    return check_exit("test_run");
}

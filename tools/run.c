/* run.c - `hyperlight run` and `hyperlight repl`: scripts in the language guests (Lua,
 * JavaScript, Python; docs/languages.md). A sandbox starts from a snapshot of the initialised
 * interpreter, kept in a cache directory keyed by the guest's content and sizes, so a new
 * process pays for a restore, not an interpreter boot. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "hyperlight.h"
#include "hyperlight/lang.h"

static const char run_usage[] =
    "usage: hyperlight run [OPTIONS] FILE [ARG...]      run a script (language from the extension)\n"
    "       hyperlight run [OPTIONS] -e CODE [ARG...]   run CODE (needs --lang)\n"
    "       hyperlight run [OPTIONS] - [ARG...]         run the script on stdin (needs --lang)\n"
    "       hyperlight repl [OPTIONS] LANG              an interactive session\n"
    "\n"
    "Languages: lua (.lua), javascript or js (.js, .mjs), python or py (.py).\n"
    "The script's stdout and stderr are the command's. Exit status: 0 success, 1 the script\n"
    "raised an error (the language's message and traceback on stderr) or the sandbox failed,\n"
    "2 usage error.\n"
    "\n"
    "options:\n"
    "  --lang LANG        the language (default: from FILE's extension)\n"
    "  --timeout MS       stop a script that runs longer than MS milliseconds\n"
    "  --heap SIZE        interpreter heap (default: what the guest declares)\n"
    "  --stack SIZE       interpreter stack (default: what the guest declares)\n"
    "  --map LABEL=PATH   map host file PATH read-only into the guest as LABEL (repeatable)\n"
    "  --no-cache         do not use or write the snapshot cache\n"
    "The snapshot cache is $HYPERLIGHT_CACHE_DIR, else $XDG_CACHE_HOME/hyperlight, else\n"
    "~/.cache/hyperlight. The guests are found in $HYPERLIGHT_GUEST_DIR, else next to this\n"
    "program (../guests, ../lib/hyperlight/guests).\n";

struct lang {
    const char *name, *alias, *ext1, *ext2, *guest, *prompt, *more;
};
static const struct lang langs[] = {
    { "lua", NULL, ".lua", NULL, "lua.elf", "> ", ">> " },
    { "javascript", "js", ".js", ".mjs", "javascript.elf", "> ", "... " },
    { "python", "py", ".py", NULL, "python.elf", ">>> ", "... " },
};
#define NLANGS (int)(sizeof langs / sizeof *langs)

struct opts {
    const struct lang *lang;
    hl_config *cfg;
    bool no_cache, mapped;
    unsigned long long heap, stack;
};

static int run_usage_error(const char *fmt, const char *detail)
{
    fprintf(stderr, "hyperlight: ");
    fprintf(stderr, fmt, detail);
    fprintf(stderr, "\n\n%s", run_usage);
    return EXIT_USAGE;
}

static const struct lang *lang_by_name(const char *s)
{
    for (int i = 0; i < NLANGS; i++)
        if (!strcmp(s, langs[i].name) || (langs[i].alias && !strcmp(s, langs[i].alias))) return &langs[i];
    return NULL;
}

static const struct lang *lang_by_path(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/')) return NULL;
    for (int i = 0; i < NLANGS; i++)
        if (!strcmp(dot, langs[i].ext1) || (langs[i].ext2 && !strcmp(dot, langs[i].ext2))) return &langs[i];
    return NULL;
}

/* Prints the guest's stdout and stderr as they are. */
static void print_raw(void *user, int stream, const char *data, size_t len)
{
    int fd = stream == 2 ? 2 : 1;
    (void)user;
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        data += n;
        len -= (size_t)n;
    }
}

/* Reads all of fd into a NUL-terminated buffer (free it). NULL on a read error, or (text) a
 * NUL byte in what was read. */
static char *read_all(int fd, size_t *len, bool text)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap), *nb;
    ssize_t got;
    while (buf) {
        if (n + 1 >= cap) {
            if (!(nb = realloc(buf, cap *= 2))) break;
            buf = nb;
        }
        got = read(fd, buf + n, cap - n - 1);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) break;
        if (got == 0) {
            buf[n] = 0;
            if (text && memchr(buf, 0, n)) break;
            if (len) *len = n;
            return buf;
        }
        n += (size_t)got;
    }
    free(buf);
    return NULL;
}

static char *read_path(const char *path, size_t *len, bool text)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *s;
    if (fd < 0) return NULL;
    s = read_all(fd, len, text);
    close(fd);
    return s;
}

/* The directory of the language guests: $HYPERLIGHT_GUEST_DIR, or next to this program. */
static bool guest_path(const struct lang *l, char *out, size_t len)
{
    static const char *const rel[] = { "../guests", "../lib/hyperlight/guests" };
    const char *env = getenv("HYPERLIGHT_GUEST_DIR");
    char exe[PATH_MAX];
    ssize_t n;
    char *slash;
    if (env && *env) return (size_t)snprintf(out, len, "%s/%s", env, l->guest) < len;
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return false;
    exe[n] = 0;
    if (!(slash = strrchr(exe, '/'))) return false;
    *slash = 0;
    for (size_t i = sizeof rel / sizeof *rel; i-- > 0;) /* ends with the first candidate: its error is reported */
        if ((size_t)snprintf(out, len, "%s/%s/%s", exe, rel[i], l->guest) < len && access(out, R_OK) == 0) return true;
    return true;
}

static bool cache_dir(char *out, size_t len)
{
    const char *env = getenv("HYPERLIGHT_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (env && *env) snprintf(out, len, "%s", env);
    else if (xdg && *xdg) snprintf(out, len, "%s/hyperlight", xdg);
    else if (home && *home) snprintf(out, len, "%s/.cache/hyperlight", home);
    else return false;
    if (mkdir(out, 0700) != 0 && errno == EEXIST) return true;
    if (errno == ENOENT && !env && home && !xdg) { /* ~/.cache itself may be missing */
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s/.cache", home);
        mkdir(parent, 0700);
        return mkdir(out, 0700) == 0 || errno == EEXIST;
    }
    return access(out, W_OK) == 0;
}

/* A hash of the guest's bytes and the sizes the sandbox is made with: four independent
 * multiply-rotate lanes over 8-byte words (a guest of 1 MiB hashes in about 50 us), then
 * FNV-1a over the tail and the sizes. Not cryptographic: the cache is the user's own. */
static uint64_t cache_key(const unsigned char *elf, size_t len, const struct opts *o)
{
    static const uint64_t k = 0x9e3779b97f4a7c15ull;
    uint64_t lane[4] = { 1, 2, 3, 4 }, w, h = 0xcbf29ce484222325ull;
    char sizes[96];
    size_t i = 0;
    int n = snprintf(sizes, sizeof sizes, "abi=%u heap=%llu stack=%llu len=%zu", (unsigned)HL_ABI_VERSION, o->heap,
                     o->stack, len);
    for (; i + 32 <= len; i += 32)
        for (int j = 0; j < 4; j++) {
            memcpy(&w, elf + i + 8 * j, 8);
            lane[j] = (lane[j] ^ w) * k;
            lane[j] ^= lane[j] >> 29;
        }
    for (int j = 0; j < 4; j++) h = (h ^ lane[j]) * 0x100000001b3ull;
    for (; i < len; i++) h = (h ^ elf[i]) * 0x100000001b3ull;
    for (int j = 0; j < n; j++) h = (h ^ (unsigned char)sizes[j]) * 0x100000001b3ull;
    return h;
}

/* Maps the guest file read-only (no copy); NULL with errno on failure. */
static unsigned char *map_guest(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    void *p = MAP_FAILED;
    if (fd < 0) return NULL;
    if (fstat(fd, &st) == 0 && st.st_size > 0) p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    else if (st.st_size == 0) errno = ENOEXEC;
    close(fd);
    if (p == MAP_FAILED) return NULL;
    *len = (size_t)st.st_size;
    return p;
}

/* Saves sb's state as the cache entry path (written under a temporary name, then renamed,
 * so a concurrent reader never sees half a file). Failure only costs the next start. */
static void cache_save(hl_sandbox *sb, const char *path)
{
    hl_snapshot *snap;
    char tmp[PATH_MAX + 32];
    if (hl_snapshot_take(sb, &snap) != HL_OK) return;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) < sizeof tmp &&
        hl_snapshot_save(snap, tmp) == HL_OK && rename(tmp, path) != 0)
        unlink(tmp);
    hl_snapshot_free(snap);
}

/* A sandbox of the language's guest, ready to run a script. Returns 0 or an exit status. */
static int open_lang(hl_sandbox **sb, const struct opts *o)
{
    char path[PATH_MAX], dir[PATH_MAX], entry[PATH_MAX + 64];
    size_t len = 0;
    unsigned char *elf;
    hl_snapshot *snap;
    bool cached;
    hl_status st;
    if (!guest_path(o->lang, path, sizeof path) || !(elf = map_guest(path, &len))) {
        fprintf(stderr, "hyperlight: cannot read the %s guest %s: %s (build it with make)\n", o->lang->name, path,
                strerror(errno));
        return EXIT_FAIL;
    }
    cached = !o->no_cache && !o->mapped && cache_dir(dir, sizeof dir);
    if (cached && (size_t)snprintf(entry, sizeof entry, "%s/%s-%016llx.snap", dir, o->lang->name,
                                   (unsigned long long)cache_key(elf, len, o)) >= sizeof entry)
        cached = false;
    if (cached) {
        if (hl_snapshot_load(&snap, entry) == HL_OK) {
            st = hl_sandbox_new_from_snapshot(sb, snap, o->cfg);
            hl_snapshot_free(snap);
            if (st == HL_OK) {
                munmap(elf, len);
                return 0;
            }
        }
        unlink(entry); /* missing, stale or damaged: made again below */
    }
    st = hl_sandbox_new_from_memory(sb, elf, len, o->cfg);
    munmap(elf, len);
    if (st != HL_OK) {
        fprintf(stderr, "hyperlight: %s: %s\n", path, hl_last_error(NULL));
        return EXIT_FAIL;
    }
    if (cached) cache_save(*sb, entry);
    return 0;
}

/* Appends s as a JSON string to out[*n..cap). */
static void json_str(char *out, size_t cap, size_t *n, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (*n < cap) out[(*n)++] = '"';
    for (; *s && *n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[(*n)++] = '\\';
            out[(*n)++] = (char)c;
        } else if (c < 0x20) {
            memcpy(out + *n, "\\u00", 4);
            out[*n + 4] = hex[c >> 4];
            out[*n + 5] = hex[c & 15];
            *n += 6;
        } else {
            out[(*n)++] = (char)c;
        }
    }
    if (*n < cap) out[(*n)++] = '"';
}

static char *argv_json(int argc, char **argv)
{
    size_t cap = 3, n = 0;
    char *out;
    for (int i = 0; i < argc; i++) cap += strlen(argv[i]) * 6 + 3;
    if (!(out = malloc(cap))) return NULL;
    out[n++] = '[';
    for (int i = 0; i < argc; i++) {
        if (i) out[n++] = ',';
        json_str(out, cap, &n, argv[i]);
    }
    out[n++] = ']';
    out[n] = 0;
    return out;
}

/* Reports a failed language call: the script's own error as the language prints it, or the
 * sandbox's failure. */
static void report(hl_sandbox *sb, hl_status st)
{
    const char *msg = hl_last_guest_message(sb);
    if (st == HL_ERR_GUEST && hl_last_error_code(sb) > 0) {
        size_t n = strlen(msg);
        fprintf(stderr, "%s%s", msg, n && msg[n - 1] == '\n' ? "" : "\n");
        return;
    }
    fprintf(stderr, "hyperlight: %s\n", hl_last_error(sb));
}

/* The status a script asked to exit with (HL_LANG_ERR_EXIT, "exit N"), or -1. */
static int exit_status(hl_sandbox *sb, hl_status st)
{
    int n;
    char end;
    if (st != HL_ERR_GUEST || hl_last_error_code(sb) != HL_LANG_ERR_EXIT) return -1;
    if (sscanf(hl_last_guest_message(sb), "exit %d%c", &n, &end) != 1) return EXIT_FAIL;
    return n & 0xff;
}

/* Parses the options shared by run and repl into o; returns the index of the first operand,
 * or -(exit status). */
static int parse_opts(int argc, char **argv, struct opts *o, const char **code)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL, *why = NULL;
        unsigned long long n = 0;
        hl_status st = HL_OK;
        if (!strcmp(opt, "--")) return i + 1;
        if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
            fputs(run_usage, stdout);
            return -0x100;
        }
        if (!strcmp(opt, "--no-cache")) {
            o->no_cache = true;
            continue;
        }
        if (!val) return -run_usage_error("option %s needs a value", opt);
        i++;
        if (!strcmp(opt, "--lang")) {
            if (!(o->lang = lang_by_name(val))) return -run_usage_error("unknown language '%s'", val);
        } else if (!strcmp(opt, "-e") && code) {
            *code = val;
        } else if (!strcmp(opt, "--map")) {
            const char *eq = strchr(val, '=');
            char label[128];
            if (!eq || eq == val || !eq[1]) return -run_usage_error("--map wants LABEL=PATH, not '%s'", val);
            snprintf(label, sizeof label, "%.*s", (int)(eq - val), val);
            if (hl_config_map_file(o->cfg, eq + 1, label) != HL_OK) {
                fprintf(stderr, "hyperlight: --map %s: %s\n", val, hl_config_error(o->cfg));
                return -EXIT_FAIL;
            }
            o->mapped = true;
        } else if (!strcmp(opt, "--timeout")) {
            if (!(why = parse_count(val, false, UINT64_MAX, &n)) && n == 0) why = "must be at least 1";
            if (!why) st = hl_config_set_timeout(o->cfg, n);
        } else if (!strcmp(opt, "--heap") || !strcmp(opt, "--stack")) {
            if (!(why = parse_count(val, true, SIZE_MAX, &n))) {
                bool heap = !strcmp(opt, "--heap");
                st = heap ? hl_config_set_heap_size(o->cfg, n) : hl_config_set_scratch_size(o->cfg, n);
                *(heap ? &o->heap : &o->stack) = n;
            }
        } else {
            return -run_usage_error("unknown option %s", opt);
        }
        if (why) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s: bad value '%.64s': %s", opt, val, why);
            return -run_usage_error("%s", msg);
        }
        if (st != HL_OK) return -run_usage_error("%s", hl_config_error(o->cfg));
    }
    return i;
}

static int do_run(int argc, char **argv, struct opts *o)
{
    const char *code = NULL, *name;
    char *text = NULL, *args = NULL;
    hl_sandbox *sb = NULL;
    hl_value a[3], r;
    hl_status st;
    int i = parse_opts(argc, argv, o, &code), rc;
    if (i < 0) return i == -0x100 ? 0 : -i;
    if (!code && i >= argc) return run_usage_error("run: missing FILE (or -e CODE)%s", "");
    name = code ? "-e" : argv[i++];
    if (!o->lang && !code && strcmp(name, "-")) o->lang = lang_by_path(name);
    if (!o->lang && (code || !strcmp(name, "-")))
        return run_usage_error("run %s needs --lang lua|javascript|python", name);
    if (!o->lang) return run_usage_error("cannot tell the language of '%s': use --lang lua|javascript|python", name);
    if (!code) {
        errno = 0;
        text = !strcmp(name, "-") ? read_all(0, NULL, true) : read_path(name, NULL, true);
        if (!text) {
            fprintf(stderr, "hyperlight: cannot read %s: %s\n", name, errno ? strerror(errno) : "holds a NUL byte");
            return EXIT_FAIL;
        }
        code = text;
        if (!strcmp(name, "-")) name = "stdin";
    }
    if (!(args = argv_json(argc - i, argv + i))) {
        free(text);
        return EXIT_FAIL;
    }
    hl_config_set_print(o->cfg, print_raw, NULL);
    if ((rc = open_lang(&sb, o)) == 0) {
        a[0] = hl_str(code), a[1] = hl_str(name), a[2] = hl_str(args);
        if ((st = hl_call(sb, HL_LANG_FN_RUN, HL_VOID, a, 3, &r)) != HL_OK) {
            rc = exit_status(sb, st);
            if (rc < 0) report(sb, st);
            rc = rc < 0 ? EXIT_FAIL : rc;
        }
    }
    hl_sandbox_free(sb);
    free(args);
    free(text);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    struct opts o = { 0 };
    int rc;
    if (!(o.cfg = hl_config_new())) return EXIT_FAIL;
    rc = do_run(argc, argv, &o);
    hl_config_free(o.cfg);
    return rc;
}

/* ---- repl ---- */
static hl_sandbox *volatile repl_sb;

static void on_sigint(int sig)
{
    (void)sig;
    if (repl_sb) hl_sandbox_interrupt(repl_sb);
}

/* Reads one line from stdin into *buf (grown as needed); false at end of input. */
static bool read_line(char **buf, size_t *cap, size_t at)
{
    size_t n = at;
    int c;
    while ((c = getchar()) != EOF && c != '\n') {
        if (n + 2 >= *cap) {
            char *nb = realloc(*buf, *cap *= 2);
            if (!nb) return false;
            *buf = nb;
        }
        (*buf)[n++] = (char)c;
    }
    (*buf)[n] = 0;
    return c != EOF || n > at;
}

/* One entry of the session: sends line, prints the result. Returns false when the input is
 * incomplete (the caller reads another line onto it). The state after every line that did
 * not break the sandbox is kept as a snapshot, so an interrupted line (Ctrl-C) or a timeout
 * goes back to it. */
static bool repl_line(hl_sandbox *sb, const char *line, hl_snapshot **last)
{
    hl_value a = hl_str(line), r;
    hl_status st = hl_call(sb, HL_LANG_FN_REPL, HL_STRING, &a, 1, &r);
    if (st == HL_ERR_GUEST && hl_last_error_code(sb) == HL_LANG_ERR_INCOMPLETE) return false;
    if (st == HL_OK) {
        if (r.v.buf.len) printf("%s\n", hl_value_str(&r));
    } else {
        if (st == HL_ERR_CANCELLED) fprintf(stderr, "interrupted\n");
        else report(sb, st);
    }
    fflush(stdout);
    if (hl_sandbox_state(sb) != HL_STATE_READY || st == HL_ERR_CANCELLED) {
        if (*last && hl_sandbox_restore(sb, *last) == HL_OK) return true;
        fprintf(stderr, "hyperlight: the sandbox cannot go on: %s\n", hl_last_error(sb));
        exit(EXIT_FAIL);
    }
    hl_snapshot_free(*last);
    *last = NULL;
    if (hl_snapshot_take(sb, last) != HL_OK) *last = NULL;
    return true;
}

int cmd_repl(int argc, char **argv)
{
    struct opts o = { 0 };
    hl_sandbox *sb = NULL;
    hl_snapshot *last = NULL;
    size_t cap = 4096, at = 0;
    char *buf = NULL;
    bool tty = isatty(0);
    int i, rc = 0;
    if (!(o.cfg = hl_config_new()) || !(buf = malloc(cap))) return EXIT_FAIL;
    i = parse_opts(argc, argv, &o, NULL);
    if (i < 0) {
        rc = i == -0x100 ? 0 : -i;
        goto out;
    }
    if (i != argc - 1 || !(o.lang = lang_by_name(argv[i]))) {
        rc = run_usage_error("repl: give one language (lua, js, python)%s", "");
        goto out;
    }
    hl_config_set_print(o.cfg, print_raw, NULL);
    if ((rc = open_lang(&sb, &o)) != 0) goto out;
    hl_snapshot_take(sb, &last);
    repl_sb = sb;
    signal(SIGINT, on_sigint);
    for (;;) {
        if (tty) fputs(at ? o.lang->more : o.lang->prompt, stdout), fflush(stdout);
        if (!read_line(&buf, &cap, at)) break;
        if (repl_line(sb, buf, &last)) {
            at = 0;
        } else {
            at = strlen(buf);
            buf[at++] = '\n';
        }
    }
    if (tty) putchar('\n');
out:
    repl_sb = NULL;
    hl_snapshot_free(last);
    hl_sandbox_free(sb);
    hl_config_free(o.cfg);
    free(buf);
    return rc;
}

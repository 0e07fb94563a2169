/* hyperlight.c - the command-line tool: call a function in a fresh sandbox, list a guest's
 * functions, save a sandbox's state as a snapshot file. A snapshot file may stand wherever a
 * guest ELF may (recognised by its magic). Exit status: 0 success, 1 the sandbox, the call or
 * the snapshot failed, 2 usage error. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hyperlight.h"

static const char usage[] =
    "usage: hyperlight run [OPTIONS] FILE.lua|FILE.js|FILE.py|- [ARG...]   (run --help for more)\n"
    "       hyperlight repl [OPTIONS] lua|js|python\n"
    "       hyperlight serve [OPTIONS]                run code over HTTP (serve --help for more)\n"
    "       hyperlight call [OPTIONS] GUEST FUNCTION [ARG...]\n"
    "       hyperlight info [OPTIONS] GUEST\n"
    "       hyperlight snapshot [OPTIONS] GUEST OUT.snap [FUNCTION [ARG...]]\n"
    "\n"
    "GUEST is a guest ELF or a snapshot file. `snapshot` creates a sandbox, makes one call if\n"
    "FUNCTION is given (its return value is printed; if it fails, nothing is saved), and saves\n"
    "the sandbox's state to OUT.snap; `call` and `info` on a snapshot file start from that state.\n"
    "\n"
    "ARG is TYPE:VALUE with TYPE one of i32 u32 i64 u64 f32 f64 bool str bytes (bytes in hex),\n"
    "or a bare value, read as the type the function's signature expects.\n"
    "The return value is printed on stdout (bytes in hex).\n"
    "\n"
    "options:\n"
    "  --heap SIZE          guest heap (default: what the guest declares, else 4M)\n"
    "  --scratch SIZE       guest stack (default: what the guest declares, else 256K)\n"
    "  --input-size SIZE    input buffer (default 256K)\n"
    "  --output-size SIZE   output buffer (default 256K)\n"
    "  --timeout MS         stop a call that runs longer than MS milliseconds (exit status 1)\n"
    "  --init-timeout MS    stop a guest initialisation that runs longer (default 10000)\n"
    "  --map LABEL=PATH     map the host file PATH read-only into the guest as LABEL (its\n"
    "                       path there; repeatable, up to 32 files)\n"
    "  --clock MODE         the guest's clock: real (default), frozen (2000-01-01 00:00:00 UTC\n"
    "                       in every read) or off (clock functions fail with ENOSYS)\n"
    "  --                   end of the options (for a GUEST whose name starts with --)\n"
    "SIZE is a byte count with an optional K, M or G suffix. Sizes and --map do not apply to\n"
    "a snapshot file, whose sizes are fixed. `info` lists the functions, then the stack and heap.\n"
    "Host functions available to the guest: GetWeekday() -> string.\n";

static int usage_error(const char *fmt, const char *detail)
{
    fprintf(stderr, "hyperlight: ");
    fprintf(stderr, fmt, detail);
    fprintf(stderr, "\n\n%s", usage);
    return EXIT_USAGE;
}

/* --clock MODE: 0, or the usage error's exit status. */
static int set_clock(hl_config *cfg, const char *mode)
{
    if (!strcmp(mode, "real")) hl_config_set_clock(cfg, HL_CLOCK_REAL);
    else if (!strcmp(mode, "frozen")) hl_config_set_clock(cfg, HL_CLOCK_FROZEN);
    else if (!strcmp(mode, "off")) hl_config_set_clock(cfg, HL_CLOCK_OFF);
    else return usage_error("--clock: bad mode '%.64s': real, frozen or off", mode);
    return 0;
}

/* GetWeekday() -> string: the host's current weekday, for the demo guest's SayHello. */
static int get_weekday(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    static const char *const days[] = { "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday" };
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm)) return hl_host_call_error(call, 1, "localtime failed");
    *ret = hl_str(days[tm.tm_wday]);
    return 0;
}

const char *parse_count(const char *s, bool sizes, unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;
    if (!s[0]) return "empty";
    if (s[0] == '-') return "negative";
    if (!isdigit((unsigned char)s[0])) goto bad; /* strtoull would skip blanks and take a + */
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == ERANGE) return "too large";
    switch (sizes ? *end : 0) {
    case 'K':
    case 'k':
        shift = 10;
        end++;
        break;
    case 'M':
    case 'm':
        shift = 20;
        end++;
        break;
    case 'G':
    case 'g':
        shift = 30;
        end++;
        break;
    default: break;
    }
    if (*end) goto bad;
    if (v > max >> shift) return "too large"; /* before the shift: it must not wrap */
    *out = v << shift;
    return NULL;
bad:
    return sizes ? "not a byte count with an optional K, M or G suffix" : "not a number of milliseconds";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parses text as a value of type t into *v (bytes are written to *mem, which the caller
 * frees). Returns NULL or a description of what is wrong. */
static const char *parse_value(const char *text, hl_type t, hl_value *v, unsigned char **mem)
{
    char *end;
    errno = 0;
    switch (t) {
    case HL_I32:
    case HL_I64: {
        long long x = strtoll(text, &end, 0);
        if (!*text || *end || errno) return "not an integer";
        if (t == HL_I32 && (x < INT32_MIN || x > INT32_MAX)) return "out of range for i32";
        *v = t == HL_I32 ? hl_i32((int32_t)x) : hl_i64(x);
        return NULL;
    }
    case HL_U32:
    case HL_U64: {
        unsigned long long x;
        if (text[0] == '-') return "negative value for an unsigned type";
        x = strtoull(text, &end, 0);
        if (!*text || *end || errno) return "not an unsigned integer";
        if (t == HL_U32 && x > UINT32_MAX) return "out of range for u32";
        *v = t == HL_U32 ? hl_u32((uint32_t)x) : hl_u64(x);
        return NULL;
    }
    case HL_F32:
    case HL_F64: {
        double x = strtod(text, &end);
        if (!*text || *end || (errno && errno != ERANGE)) return "not a number";
        *v = t == HL_F32 ? hl_f32((float)x) : hl_f64(x);
        return NULL;
    }
    case HL_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "1")) *v = hl_bool(true);
        else if (!strcmp(text, "false") || !strcmp(text, "0")) *v = hl_bool(false);
        else return "not a bool (true, false, 1, 0)";
        return NULL;
    case HL_STRING: *v = hl_str(text); return NULL;
    case HL_BYTES: {
        size_t n = strlen(text);
        if (n % 2) return "odd number of hex digits";
        *mem = malloc(n / 2 + 1);
        if (!*mem) return "out of memory";
        for (size_t i = 0; i < n / 2; i++) {
            int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
            if (hi < 0 || lo < 0) return "not hex";
            (*mem)[i] = (unsigned char)(hi << 4 | lo);
        }
        *v = hl_bytes(*mem, n / 2);
        return NULL;
    }
    default: return "unsupported type";
    }
}

static const struct {
    const char *prefix;
    hl_type type;
} prefixes[] = {
    { "i32:", HL_I32 }, { "u32:", HL_U32 },   { "i64:", HL_I64 },    { "u64:", HL_U64 },     { "f32:", HL_F32 },
    { "f64:", HL_F64 }, { "bool:", HL_BOOL }, { "str:", HL_STRING }, { "bytes:", HL_BYTES },
};

static void print_float(double x, int digits)
{
    if (isnan(x)) printf("%snan\n", signbit(x) ? "-" : "");
    else if (isinf(x)) printf("%sinf\n", x < 0 ? "-" : "");
    else printf("%.*g\n", digits, x);
}

static void print_value(const hl_value *v)
{
    switch (v->type) {
    case HL_VOID: break;
    case HL_I32: printf("%d\n", v->v.i32); break;
    case HL_U32: printf("%u\n", v->v.u32); break;
    case HL_I64: printf("%lld\n", (long long)v->v.i64); break;
    case HL_U64: printf("%llu\n", (unsigned long long)v->v.u64); break;
    case HL_F32: print_float(v->v.f32, 9); break;
    case HL_F64: print_float(v->v.f64, 17); break;
    case HL_BOOL: printf("%s\n", v->v.b ? "true" : "false"); break;
    case HL_STRING: printf("%s\n", hl_value_str(v)); break;
    case HL_BYTES:
        for (size_t i = 0; i < v->v.buf.len; i++) printf("%02x", ((const unsigned char *)v->v.buf.ptr)[i]);
        printf("\n");
        break;
    }
}

/* The guest's functions, one signature a line, then its stack and heap sizes (the guest's
 * declared defaults unless options set them; a snapshot file's own). */
static int cmd_info(hl_sandbox *sb)
{
    uint64_t stack = 0, heap = 0;
    for (int i = 0; i < hl_sandbox_fn_count(sb); i++) {
        const char *name;
        hl_type ret;
        const hl_type *params;
        int n;
        char sig[1024];
        hl_sandbox_fn_info(sb, i, &name, &ret, &params, &n);
        printf("%s\n", hl_signature_format(sig, sizeof sig, name, ret, params, n));
    }
    hl_sandbox_sizes(sb, &stack, &heap);
    printf("stack %llu bytes\nheap %llu bytes\n", (unsigned long long)stack, (unsigned long long)heap);
    return 0;
}

static int cmd_call(hl_sandbox *sb, const char *fname, int argc, char **argv)
{
    hl_value args[HL_MAX_ARGS], ret;
    unsigned char *mem[HL_MAX_ARGS] = { 0 };
    const hl_type *params = NULL;
    hl_type rtype = HL_VOID;
    int nparams = -1, rc = 0;
    const char *name;

    if (argc > HL_MAX_ARGS) {
        fprintf(stderr, "hyperlight: at most %d arguments\n", HL_MAX_ARGS);
        return EXIT_USAGE;
    }
    for (int i = 0; i < hl_sandbox_fn_count(sb); i++) {
        hl_type r;
        const hl_type *p;
        int n;
        hl_sandbox_fn_info(sb, i, &name, &r, &p, &n);
        if (!strcmp(name, fname)) {
            rtype = r;
            params = p;
            nparams = n;
        }
    }
    for (int i = 0; i < argc && !rc; i++) {
        const char *text = argv[i], *err;
        hl_type t = HL_STRING;
        bool typed = false;
        for (size_t k = 0; k < sizeof prefixes / sizeof prefixes[0]; k++)
            if (!strncmp(text, prefixes[k].prefix, strlen(prefixes[k].prefix))) {
                t = prefixes[k].type;
                text += strlen(prefixes[k].prefix);
                typed = true;
                break;
            }
        if (!typed && params && i < nparams) t = params[i];
        if ((err = parse_value(text, t, &args[i], &mem[i]))) {
            fprintf(stderr, "hyperlight: argument %d (\"%s\"): %s for %s\n", i + 1, argv[i], err, hl_type_name(t));
            rc = EXIT_USAGE;
        }
    }
    if (!rc) {
        /* An unknown function still goes to the library, which says so precisely. */
        hl_status st = hl_call(sb, fname, rtype, args, argc, &ret);
        if (st == HL_OK) {
            print_value(&ret);
        } else {
            fprintf(stderr, "hyperlight: %s\n", hl_last_error(sb));
            rc = EXIT_FAIL;
        }
    }
    for (int i = 0; i < argc; i++) free(mem[i]);
    return rc;
}

/* Whether path is a snapshot file (by its magic; any failure to read says no, and the ELF
 * loader then reports the problem). */
static bool is_snapshot_file(const char *path)
{
    char magic[sizeof HL_SNAPSHOT_MAGIC - 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    bool yes;
    if (fd < 0) return false;
    yes = read(fd, magic, sizeof magic) == (ssize_t)sizeof magic && !memcmp(magic, HL_SNAPSHOT_MAGIC, sizeof magic);
    close(fd);
    return yes;
}

/* Creates the sandbox for GUEST (an ELF or a snapshot file). Returns 0 or an exit status. */
static int open_sandbox(hl_sandbox **sb, const char *path, const hl_config *cfg, const char *size_opt)
{
    hl_snapshot *snap = NULL;
    hl_status st;
    if (!is_snapshot_file(path)) {
        if (hl_sandbox_new_from_file(sb, path, cfg) == HL_OK) return 0;
        fprintf(stderr, "hyperlight: %s\n", hl_last_error(NULL));
        return EXIT_FAIL;
    }
    if (size_opt && !strcmp(size_opt, "--map"))
        return usage_error("%s does not apply to a snapshot file (snapshot files hold no mapped files)", size_opt);
    if (size_opt) return usage_error("%s does not apply to a snapshot file (its sizes are fixed)", size_opt);
    if (hl_snapshot_load(&snap, path) != HL_OK) {
        fprintf(stderr, "hyperlight: %s\n", hl_last_error(NULL));
        return EXIT_FAIL;
    }
    st = hl_sandbox_new_from_snapshot(sb, snap, cfg);
    hl_snapshot_free(snap); /* the sandbox keeps what it needs */
    if (st == HL_OK) return 0;
    fprintf(stderr, "hyperlight: %s: %s\n", path, hl_last_error(NULL));
    return EXIT_FAIL;
}

/* Saves sb's state to path. */
static int cmd_snapshot(hl_sandbox *sb, const char *path)
{
    hl_snapshot *snap = NULL;
    int rc = 0;
    if (hl_snapshot_take(sb, &snap) != HL_OK) {
        fprintf(stderr, "hyperlight: taking the snapshot: %s\n", hl_last_error(sb));
        return EXIT_FAIL;
    }
    if (hl_snapshot_save(snap, path) != HL_OK) {
        fprintf(stderr, "hyperlight: %s\n", hl_last_error(NULL));
        rc = EXIT_FAIL;
    }
    hl_snapshot_free(snap);
    return rc;
}

/* --map LABEL=PATH: maps the host file PATH into the guest as LABEL. */
static int map_option(hl_config *cfg, const char *val)
{
    const char *eq = strchr(val, '=');
    char label[HL_FILE_LABEL_MAX + 1], msg[512];
    if (!eq || eq == val || !eq[1]) {
        snprintf(msg, sizeof msg, "--map: '%.200s' is not LABEL=PATH", val);
        return usage_error("%s", msg);
    }
    if ((size_t)(eq - val) > HL_FILE_LABEL_MAX) {
        snprintf(msg, sizeof msg, "--map: label '%.*s' is longer than %d bytes", (int)(eq - val), val,
                 HL_FILE_LABEL_MAX);
        return usage_error("%s", msg);
    }
    memcpy(label, val, (size_t)(eq - val));
    label[eq - val] = 0;
    switch (hl_config_map_file(cfg, eq + 1, label)) {
    case HL_OK: return 0;
    case HL_ERR_INVALID_ARG: return usage_error("--map: %s", hl_config_error(cfg)); /* duplicate, too many */
    default: fprintf(stderr, "hyperlight: --map: %s\n", hl_config_error(cfg)); return EXIT_FAIL;
    }
}

/* Applies option opt with value val (NULL if missing) to cfg; remembers in *size_opt a size
 * option and in *map_opt a --map (neither applies to a snapshot file). Returns 0 or an exit
 * status. */
static int apply_option(hl_config *cfg, const char *opt, const char *val, const char **size_opt, const char **map_opt)
{
    bool init_timeout = !strcmp(opt, "--init-timeout");
    bool timeout = init_timeout || !strcmp(opt, "--timeout");
    unsigned long long n;
    hl_status st = HL_OK;
    const char *why;
    char msg[256];
    if (!timeout && strcmp(opt, "--heap") && strcmp(opt, "--scratch") && strcmp(opt, "--input-size") &&
        strcmp(opt, "--output-size") && strcmp(opt, "--map") && strcmp(opt, "--clock"))
        return usage_error("unknown option %s", opt);
    if (!val) return usage_error("option %s needs a value", opt);
    if (!strcmp(opt, "--clock")) return set_clock(cfg, val);
    if (!strcmp(opt, "--map")) {
        *map_opt = opt;
        return map_option(cfg, val);
    }
    why = parse_count(val, !timeout, timeout ? UINT64_MAX : SIZE_MAX, &n);
    if (!why && timeout && n == 0) why = "must be at least 1";
    if (why) {
        snprintf(msg, sizeof msg, "%s: bad %s '%.64s': %s", opt, timeout ? "time limit" : "size", val, why);
        return usage_error("%s", msg);
    }
    if (timeout) {
        if (init_timeout) hl_config_set_init_timeout(cfg, n);
        else hl_config_set_timeout(cfg, n);
        return 0;
    }
    if (!strcmp(opt, "--heap")) st = hl_config_set_heap_size(cfg, (size_t)n);
    else if (!strcmp(opt, "--scratch")) st = hl_config_set_scratch_size(cfg, (size_t)n);
    else if (!strcmp(opt, "--input-size")) st = hl_config_set_input_size(cfg, (size_t)n);
    else st = hl_config_set_output_size(cfg, (size_t)n);
    if (st != HL_OK) return usage_error("%s", hl_config_error(cfg));
    *size_opt = opt;
    return 0;
}

int main(int argc, char **argv)
{
    hl_config *cfg;
    hl_sandbox *sb = NULL;
    const char *cmd, *size_opt = NULL, *map_opt = NULL;
    int i = 2, rc;

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    cmd = argv[1];
    if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "repl")) return cmd_repl(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "call") && strcmp(cmd, "info") && strcmp(cmd, "snapshot"))
        return usage_error("unknown command '%s'", cmd);
    if (!(cfg = hl_config_new())) {
        fprintf(stderr, "hyperlight: out of memory\n");
        return EXIT_FAIL;
    }
    for (; i < argc && !strncmp(argv[i], "--", 2); i += 2) {
        if (!strcmp(argv[i], "--")) { /* the end of the options: GUEST follows */
            i++;
            break;
        }
        if ((rc = apply_option(cfg, argv[i], i + 1 < argc ? argv[i + 1] : NULL, &size_opt, &map_opt)) != 0) goto out;
    }
    if (i >= argc) {
        rc = usage_error("%s: missing GUEST", cmd);
        goto out;
    }
    if (!strcmp(cmd, "call") && i + 1 >= argc) {
        rc = usage_error("call: missing FUNCTION%s", "");
        goto out;
    }
    if (!strcmp(cmd, "info") && i + 1 < argc) {
        rc = usage_error("info: unexpected argument '%s'", argv[i + 1]);
        goto out;
    }
    if (!strcmp(cmd, "snapshot") && i + 1 >= argc) {
        rc = usage_error("snapshot: missing OUT.snap%s", "");
        goto out;
    }
    hl_config_register_host_fn(cfg, "GetWeekday", HL_STRING, NULL, 0, get_weekday, NULL);
    if ((rc = open_sandbox(&sb, argv[i], cfg, size_opt ? size_opt : map_opt)) != 0) goto out;
    if (!strcmp(cmd, "info")) {
        rc = cmd_info(sb);
    } else if (!strcmp(cmd, "call")) {
        rc = cmd_call(sb, argv[i + 1], argc - i - 2, argv + i + 2);
    } else {
        if (i + 2 < argc) rc = cmd_call(sb, argv[i + 2], argc - i - 3, argv + i + 3);
        if (!rc) rc = cmd_snapshot(sb, argv[i + 1]);
    }
out:
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    return rc;
}

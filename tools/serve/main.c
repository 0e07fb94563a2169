/* main.c - `hyperlight serve`: run code over HTTP from pools of warm sandboxes
 * (docs/serve.md). Options, start-up (pools, handlers, guests, the listener), and the
 * signals: SIGTERM or SIGINT drain and exit 0, SIGHUP reloads the handlers. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <microhttpd.h>
#include <netdb.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli.h"
#include "serve.h"

static const char serve_usage[] =
    "usage: hyperlight serve [OPTIONS]\n"
    "\n"
    "Serves POST /v1/run, /v1/handlers/NAME, /v1/call/GUEST/FUNCTION, GET /metrics, /healthz,\n"
    "/readyz (docs/serve.md). Every request runs in a sandbox taken from a warm pool and\n"
    "restored afterwards.\n"
    "\n"
    "options:\n"
    "  --listen HOST:PORT     address to listen on (default 127.0.0.1:8080; port 0: any free one)\n"
    "  --token-file FILE      bearer tokens, one a line (required unless --no-auth)\n"
    "  --no-auth              no authentication (only on a loopback address)\n"
    "  --lang LIST            languages to serve, e.g. lua,js (default: every guest found)\n"
    "  --handler NAME=FILE    load FILE (.lua, .js, .py) as handler NAME (repeatable)\n"
    "  --guest NAME=PATH      serve a C guest (.elf or snapshot file) for /v1/call (repeatable)\n"
    "  --pool NAME=N          sandboxes kept warm for a language, handler or guest (default:\n"
    "                         --threads; a handler without one takes its language's)\n"
    "  --threads N            guest calls running at once (default: the cores this process may\n"
    "                         use: its CPU affinity, or its cgroup's CPU limit if lower)\n"
    "  --queue N              requests waiting for a free slot beyond that (default 64; more: 429)\n"
    "  --queue-timeout MS     longest wait in the queue (default 10000; then 503)\n"
    "  --timeout MS           time limit of a call (default 5000); a request may ask for less\n"
    "                         or more with timeout_ms, up to --max-timeout (default 60000)\n"
    "  --max-body SIZE        largest request body (default 1M; larger: 413)\n"
    "  --max-output SIZE      most a call may print (default 1M)\n"
    "  --heap SIZE            heap of the language guests (default: what they declare)\n"
    "  --access-log FILE      access log, JSON lines (default: stderr; '-' for none)\n"
    "  --grace MS             on SIGTERM, longest wait for open connections (default 30000)\n"
    "  --guest-dir DIR        where lua.elf, javascript.elf, python.elf are (default: as `run`)\n";

static int serve_usage_error(const char *fmt, const char *detail)
{
    fprintf(stderr, "hyperlight serve: ");
    fprintf(stderr, fmt, detail);
    fprintf(stderr, "\n\n%s", serve_usage);
    return EXIT_USAGE;
}

static const char *parse_pool(struct server *s, const char *val)
{
    const char *eq = strchr(val, '=');
    unsigned long long n;
    if (!eq || eq == val || (size_t)(eq - val) >= SERVE_NAME_MAX || s->nsizes == 64) return "wants NAME=N";
    if (parse_count(eq + 1, false, 1024, &n)) return "wants NAME=N, N from 0 to 1024";
    snprintf(s->sizes[s->nsizes].name, SERVE_NAME_MAX, "%.*s", (int)(eq - val), val);
    const struct lang *l = serve_lang_by_name(s->sizes[s->nsizes].name); /* js: javascript */
    if (l) snprintf(s->sizes[s->nsizes].name, SERVE_NAME_MAX, "%s", l->name);
    s->sizes[s->nsizes++].size = (int)n;
    return NULL;
}

/* --lang LIST: names or aliases of languages, separated by commas. */
static const char *parse_langs(struct server *s, const char *val)
{
    char copy[sizeof s->lang_list], *save = NULL;
    if (strlen(val) >= sizeof copy) return "too long";
    snprintf(copy, sizeof copy, "%s", val);
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (!serve_lang_by_name(t)) return "not a list of lua, javascript (js), python (py)";
    snprintf(s->lang_list, sizeof s->lang_list, "%s", val);
    return NULL;
}

/* One option with its value; NULL or what is wrong with it. */
static const char *option(struct server *s, const char *opt, const char *val)
{
    unsigned long long n;
    const char *why = NULL;
    if (!strcmp(opt, "--listen")) s->listen = val;
    else if (!strcmp(opt, "--token-file")) s->token_file = val;
    else if (!strcmp(opt, "--access-log")) s->access_log = val;
    else if (!strcmp(opt, "--guest-dir")) s->guest_dir = val;
    else if (!strcmp(opt, "--lang")) why = parse_langs(s, val);
    else if (!strcmp(opt, "--pool")) why = parse_pool(s, val);
    else if (!strcmp(opt, "--handler"))
        why = s->nhandler_specs == 64 ? "too many" : (s->handler_specs[s->nhandler_specs++] = val, NULL);
    else if (!strcmp(opt, "--guest"))
        why = s->nguest_specs == 64 ? "too many" : (s->guest_specs[s->nguest_specs++] = val, NULL);
    else if (!strcmp(opt, "--threads") || !strcmp(opt, "--queue")) {
        if (!(why = parse_count(val, false, 4096, &n))) *(!strcmp(opt, "--queue") ? &s->queue : &s->threads) = (int)n;
        if (!why && n == 0 && !strcmp(opt, "--threads")) why = "must be at least 1";
    } else if (!strcmp(opt, "--queue-timeout") || !strcmp(opt, "--grace")) {
        if (!(why = parse_count(val, false, 3600000, &n)))
            *(!strcmp(opt, "--grace") ? &s->grace_ms : &s->queue_timeout_ms) = (int)n;
    } else if (!strcmp(opt, "--timeout") || !strcmp(opt, "--max-timeout")) {
        if (!(why = parse_count(val, false, 86400000, &n)) && n == 0) why = "must be at least 1";
        if (!why) *(!strcmp(opt, "--timeout") ? &s->timeout_ms : &s->max_timeout_ms) = n;
    } else if (!strcmp(opt, "--max-body") || !strcmp(opt, "--max-output")) {
        if (!(why = parse_count(val, true, 1ull << 30, &n)) && n == 0) why = "must be at least 1";
        if (!why) *(!strcmp(opt, "--max-body") ? &s->max_body : &s->max_output) = n;
    } else if (!strcmp(opt, "--heap")) {
        if (!(why = parse_count(val, true, SIZE_MAX, &n)) && hl_config_set_heap_size(s->cfg, n) != HL_OK)
            why = hl_config_error(s->cfg);
    } else {
        why = "unknown option";
    }
    return why;
}

static int parse_args(struct server *s, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *why;
        char msg[512];
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(serve_usage, stdout);
            return -1;
        }
        if (!strcmp(argv[i], "--no-auth")) {
            s->no_auth = true;
            continue;
        }
        if (strncmp(argv[i], "--", 2)) return serve_usage_error("unexpected argument '%s'", argv[i]);
        if (i + 1 >= argc) return serve_usage_error("option %s needs a value", argv[i]);
        if ((why = option(s, argv[i], argv[i + 1]))) {
            snprintf(msg, sizeof msg, "%s %.200s: %s", argv[i], argv[i + 1], why);
            return serve_usage_error("%s", msg);
        }
        i++;
    }
    if (s->timeout_ms > s->max_timeout_ms) return serve_usage_error("--timeout is above --max-timeout%s", "");
    return 0;
}

/* True if HOST of --listen HOST:PORT is a loopback address (127.0.0.0/8, ::1). */
static bool loopback(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    char host[256];
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
    bool lo;
    if (!colon || (size_t)(colon - listen) >= sizeof host) return false;
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    if (host[0] == '[' && strlen(host) > 2) memmove(host, host + 1, strlen(host)), host[strlen(host) - 1] = 0;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0) return false;
    if (ai->ai_family == AF_INET) lo = (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127;
    else lo = ai->ai_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
    freeaddrinfo(ai);
    return lo;
}

static bool read_tokens(struct server *s)
{
    char *text = read_file(s->token_file, NULL), *save = NULL;
    if (!text) {
        fprintf(stderr, "hyperlight serve: cannot read the token file %s\n", s->token_file);
        return false;
    }
    for (char *line = strtok_r(text, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        while (*line == ' ' || *line == '\t') line++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\t')) line[--n] = 0;
        if (!n || line[0] == '#') continue;
        char **nt = realloc(s->tokens, (size_t)(s->ntokens + 1) * sizeof *nt);
        if (!nt) break;
        s->tokens = nt;
        s->tokens[s->ntokens++] = strdup(line);
    }
    free(text);
    if (!s->ntokens) fprintf(stderr, "hyperlight serve: the token file %s holds no token\n", s->token_file);
    return s->ntokens > 0;
}

/* Everything before the listener: auth, log, pools, handlers, guests. */
static int start(struct server *s)
{
    if (!s->no_auth && !s->token_file)
        return serve_usage_error("give --token-file FILE, or --no-auth on a loopback address%s", "");
    if (s->no_auth && !loopback(s->listen))
        return serve_usage_error("--no-auth is only allowed on a loopback address, not %s", s->listen);
    if (s->token_file && !read_tokens(s)) return EXIT_FAIL;
    if (!s->access_log) s->log = stderr;
    else if (strcmp(s->access_log, "-") && !(s->log = fopen(s->access_log, "a"))) {
        fprintf(stderr, "hyperlight serve: cannot open the access log %s\n", s->access_log);
        return EXIT_FAIL;
    }
    hl_config_set_print(s->cfg, print_capture, NULL);
    hl_config_set_limits(s->cfg, HL_MAX_HOST_CALLS_DEFAULT, s->max_output);
    if (!langs_open(s)) return EXIT_FAIL;
    for (int i = 0; i < s->nguest_specs; i++)
        if (!guest_open(s, s->guest_specs[i])) return EXIT_FAIL;
    if (!(s->handlers = handlers_load(s))) return EXIT_FAIL;
    return 0;
}

static void reload(struct server *s)
{
    struct handler_set *hs = handlers_load(s), *old;
    if (!hs) {
        fprintf(stderr, "hyperlight serve: SIGHUP: reloading the handlers failed; the old ones stay\n");
        return;
    }
    pthread_mutex_lock(&s->lock);
    old = s->handlers;
    s->handlers = hs;
    pthread_mutex_unlock(&s->lock);
    handler_set_unref(s, old);
    fprintf(stderr, "hyperlight serve: SIGHUP: reloaded %d handler%s\n", hs->n, hs->n == 1 ? "" : "s");
}

static void stop(struct server *s)
{
    handler_set_unref(s, s->handlers);
    for (int i = 0; i < SERVE_NLANGS; i++)
        if (s->have_lang[i]) pool_close(&s->langs[i]);
    for (int i = 0; i < s->nguests; i++) {
        pool_close(&s->guests[i].p);
        for (int k = 0; k < s->guests[i].nfns; k++) free(s->guests[i].fns[k].name);
        free(s->guests[i].fns);
    }
    for (int i = 0; i < s->ntokens; i++) free(s->tokens[i]);
    free(s->tokens);
    if (s->log && s->log != stderr) fclose(s->log);
    metrics_free(s->m);
    hl_config_free(s->cfg);
}

static int serve(struct server *s)
{
    sigset_t set;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    int rc, sig;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread starts: they all inherit it */
    signal(SIGPIPE, SIG_IGN);
    if ((rc = start(s)) != 0) return rc;
    if (!(d = http_start(s))) return EXIT_FAIL;
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    fprintf(stderr, "hyperlight serve: listening on %.*s:%u\n", (int)(strrchr(s->listen, ':') - s->listen), s->listen,
            info ? info->port : 0);
    for (;;) {
        if (sigwait(&set, &sig) != 0) continue;
        if (sig != SIGHUP) break;
        reload(s);
    }
    fprintf(stderr, "hyperlight serve: %s: draining\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_drain(s, d);
    fprintf(stderr, "hyperlight serve: stopped\n");
    return 0;
}

/* A cgroup v2 directory's CPU limit (cpu.max "QUOTA PERIOD") in whole cores, rounded up;
 * 0 for none ("max", or no such file). */
static int cgroup_cores(const char *dir)
{
    char path[PATH_MAX], line[64];
    long long quota, period;
    int n = 0;
    FILE *f;
    if (snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", dir) >= (int)sizeof path || !(f = fopen(path, "r")))
        return 0;
    if (fgets(line, sizeof line, f) && sscanf(line, "%lld %lld", &quota, &period) == 2 && quota > 0 && period > 0)
        n = (int)((quota + period - 1) / period);
    fclose(f);
    return n;
}

/* The cores this process may use: the CPUs it may run on (its affinity), fewer if its
 * cgroup or one above it has a lower CPU limit (a container's limits.cpu). At least 1. */
static int usable_cores(void)
{
    cpu_set_t set;
    char line[PATH_MAX + 8], *dir = NULL, *slash;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    FILE *f = fopen("/proc/self/cgroup", "r");
    while (f && !dir && fgets(line, sizeof line, f))
        if (!strncmp(line, "0::", 3)) dir = line + 3; /* the v2 hierarchy: "0::/PATH" */
    if (f) fclose(f);
    if (dir) {
        dir[strcspn(dir, "\n")] = 0;
        for (;;) { /* this cgroup, then each parent up to the root */
            int c = cgroup_cores(strcmp(dir, "/") ? dir : "");
            if (c > 0 && c < n) n = c;
            if (!(slash = strrchr(dir, '/')) || slash == dir) break;
            *slash = 0;
        }
    }
    return n < 1 ? 1 : n;
}

int cmd_serve(int argc, char **argv)
{
    struct server s = {
        .listen = "127.0.0.1:8080",
        .threads = usable_cores(),
        .queue = 64,
        .queue_timeout_ms = 10000,
        .grace_ms = 30000,
        .timeout_ms = 5000,
        .max_timeout_ms = 60000,
        .max_body = 1 << 20,
        .max_output = 1 << 20,
    };
    int rc;
    if (!(s.cfg = hl_config_new()) || !(s.m = metrics_new())) return EXIT_FAIL;
    pthread_mutex_init(&s.lock, NULL);
    pthread_mutex_init(&s.log_lock, NULL);
    rc = parse_args(&s, argc, argv);
    s.default_size = s.threads; /* a warm sandbox for every call that may run at once */
    if (rc == 0) rc = serve(&s);
    stop(&s);
    return rc < 0 ? 0 : rc;
}

/* handlers.c - the handlers of `hyperlight serve` (--handler NAME=FILE): each file is
 * Load'ed once into a sandbox of its language, snapshotted, and served from a pool of that
 * snapshot. SIGHUP loads the files again into a new set that replaces the old one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hyperlight/lang.h"
#include "serve.h"

static const struct lang *lang_by_ext(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (int i = 0; dot && i < SERVE_NLANGS; i++)
        if (!strcmp(dot, serve_langs[i].ext)) return &serve_langs[i];
    return NULL;
}

/* Loads the file of h into a sandbox of its language and snapshots that. */
static bool handler_open(struct server *s, struct handler *h)
{
    int li = (int)(h->lang - serve_langs);
    hl_sandbox *sb;
    hl_snapshot *snap;
    hl_value a[2], r;
    char *code = read_file(h->path, NULL);
    bool ok = false;
    if (!code) {
        fprintf(stderr, "hyperlight serve: handler %s: cannot read %s\n", h->name, h->path);
        return false;
    }
    if (!s->have_lang[li]) {
        fprintf(stderr, "hyperlight serve: handler %s: language %s is not served\n", h->name, h->lang->name);
        free(code);
        return false;
    }
    if (hl_sandbox_new_from_snapshot(&sb, s->langs[li].snap, s->cfg) != HL_OK) {
        fprintf(stderr, "hyperlight serve: handler %s: %s\n", h->name, hl_last_error(NULL));
        free(code);
        return false;
    }
    a[0] = hl_str(code), a[1] = hl_str(h->path);
    if (hl_call(sb, HL_LANG_FN_LOAD, HL_VOID, a, 2, &r) != HL_OK)
        fprintf(stderr, "hyperlight serve: handler %s: loading %s failed: %s\n", h->name, h->path, hl_last_error(sb));
    else if (hl_snapshot_take(sb, &snap) != HL_OK)
        fprintf(stderr, "hyperlight serve: handler %s: %s\n", h->name, hl_last_error(sb));
    else ok = pool_open(&h->p, h->name, h->lang->name, snap, s->cfg, pool_size_for(s, h->name, h->lang->name));
    hl_sandbox_free(sb);
    free(code);
    return ok;
}

static void set_free(struct handler_set *hs)
{
    for (int i = 0; i < hs->n; i++) {
        if (hs->h[i].p.pool) pool_close(&hs->h[i].p);
        free(hs->h[i].path);
    }
    free(hs->h);
    free(hs);
}

/* A new set from the --handler options; NULL (and a message on stderr) if any fails. */
struct handler_set *handlers_load(struct server *s)
{
    struct handler_set *hs = calloc(1, sizeof *hs);
    if (!hs || !(hs->h = calloc((size_t)s->nhandler_specs + 1, sizeof *hs->h))) {
        free(hs);
        return NULL;
    }
    hs->refs = 1;
    for (int i = 0; i < s->nhandler_specs; i++) {
        const char *spec = s->handler_specs[i], *eq = strchr(spec, '=');
        struct handler *h = &hs->h[hs->n];
        if (!eq || !name_ok(spec, (size_t)(eq - spec)) || !eq[1]) {
            fprintf(stderr,
                    "hyperlight serve: --handler wants NAME=FILE.js|.py|.lua (NAME of A-Z a-z 0-9 _ . -), not '%s'\n",
                    spec);
            goto fail;
        }
        snprintf(h->name, sizeof h->name, "%.*s", (int)(eq - spec), spec);
        h->path = strdup(eq + 1);
        hs->n++;
        if (!(h->lang = lang_by_ext(eq + 1))) {
            fprintf(stderr, "hyperlight serve: handler %s: %s is not .js, .py or .lua\n", h->name, eq + 1);
            goto fail;
        }
        if (!handler_open(s, h)) goto fail;
    }
    return hs;
fail:
    set_free(hs);
    return NULL;
}

struct handler_set *handler_set_ref(struct server *s)
{
    struct handler_set *hs;
    pthread_mutex_lock(&s->lock);
    if ((hs = s->handlers)) hs->refs++;
    pthread_mutex_unlock(&s->lock);
    return hs;
}

void handler_set_unref(struct server *s, struct handler_set *hs)
{
    bool last;
    if (!hs) return;
    pthread_mutex_lock(&s->lock);
    last = --hs->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) set_free(hs);
}

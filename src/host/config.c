/* config.c - configuration objects: every hl_config_* entry point. Feature modules check
 * their own values (coredump.c the core directory, confine.c system call numbers). */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "confine.h"
#include "coredump.h"
#include "error.h"
#include "functions.h"

void hl_default_print(void *user, int stream, const char *data, size_t len)
{
    (void)user;
    (void)stream;
    fwrite(data, 1, len, stdout);
    fflush(stdout);
}

hl_config *hl_config_new(void)
{
    hl_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) return NULL;
    cfg->sizes.heap = HL_HEAP_DEFAULT;
    cfg->sizes.scratch = HL_SCRATCH_DEFAULT;
    cfg->sizes.input = HL_BUFFER_DEFAULT;
    cfg->sizes.output = HL_BUFFER_DEFAULT;
    cfg->print = hl_default_print;
    cfg->init_timeout_ms = HL_INIT_TIMEOUT_DEFAULT;
    cfg->max_host_calls = HL_MAX_HOST_CALLS_DEFAULT;
    cfg->max_output = HL_MAX_OUTPUT_DEFAULT;
    return cfg;
}

void hl_config_free(hl_config *cfg)
{
    if (!cfg) return;
    free(cfg->hostfns);
    free(cfg->init_data);
    hl_files_close(cfg->files, cfg->sizes.nfiles);
    free(cfg);
}

bool hl_files_dup(hl_file *dst, const hl_file *src, int n)
{
    for (int i = 0; i < n; i++) {
        dst[i] = src[i];
        if ((dst[i].fd = fcntl(src[i].fd, F_DUPFD_CLOEXEC, 0)) < 0) {
            hl_files_close(dst, i);
            return false;
        }
    }
    return true;
}

void hl_files_close(hl_file *files, int n)
{
    for (int i = 0; i < n; i++)
        if (files[i].fd >= 0) close(files[i].fd);
}

hl_config *hl_config_clone(const hl_config *cfg)
{
    hl_config *c = malloc(sizeof *c);
    if (!c) return NULL;
    *c = *cfg;
    c->hostfns = NULL;
    c->init_data = NULL;
    c->sizes.nfiles = 0;
    if (cfg->nhostfns && !(c->hostfns = malloc((size_t)cfg->nhostfns * sizeof *c->hostfns))) goto fail;
    if (cfg->nhostfns) memcpy(c->hostfns, cfg->hostfns, (size_t)cfg->nhostfns * sizeof *c->hostfns);
    c->caphostfns = c->nhostfns;
    if (cfg->sizes.init) {
        if (!(c->init_data = malloc(cfg->sizes.init))) goto fail;
        memcpy(c->init_data, cfg->init_data, cfg->sizes.init);
    }
    if (!hl_files_dup(c->files, cfg->files, cfg->sizes.nfiles)) goto fail;
    c->sizes.nfiles = cfg->sizes.nfiles;
    return c;
fail:
    hl_config_free(c);
    return NULL;
}

hl_status hl_config_set_init_data(hl_config *cfg, const void *data, size_t len)
{
    void *copy = NULL;
    if (!cfg) return HL_ERR_INVALID_ARG;
    if (len > HL_INIT_DATA_MAX)
        return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "init data of %zu bytes is above the maximum %u", len,
                       HL_INIT_DATA_MAX);
    if (len && !data) return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "init data is NULL");
    if (len && !(copy = malloc(len))) return hl_errf(cfg->err, HL_ERR_NO_MEMORY, "out of memory");
    if (len) memcpy(copy, data, len);
    free(cfg->init_data);
    cfg->init_data = copy;
    cfg->sizes.init = len;
    cfg->err[0] = 0;
    return HL_OK;
}

hl_status hl_config_map_file(hl_config *cfg, const char *path, const char *label)
{
    struct stat st;
    size_t llen = label ? strlen(label) : 0;
    int fd, n;
    if (!cfg) return HL_ERR_INVALID_ARG;
    n = cfg->sizes.nfiles;
    if (!path || llen == 0 || llen > HL_FILE_LABEL_MAX)
        return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "map file: a path and a label of 1..%d bytes are required",
                       HL_FILE_LABEL_MAX);
    if (n == HL_MAX_FILES)
        return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "map file '%s': at most %d files per sandbox", path, HL_MAX_FILES);
    for (int i = 0; i < n; i++)
        if (strcmp(cfg->sizes.file_label[i], label) == 0)
            return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "map file '%s': label '%s' is already used", path, label);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return hl_errf(cfg->err, HL_ERR_IO, "map file '%s': %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > HL_FILE_MAX) {
        close(fd);
        return hl_errf(cfg->err, HL_ERR_IO, "map file '%s': not a regular file of at most %u bytes", path, HL_FILE_MAX);
    }
    cfg->files[n] = (hl_file){ .fd = fd, .size = (uint64_t)st.st_size };
    memcpy(cfg->sizes.file_label[n], label, llen + 1);
    cfg->sizes.file_size[n] = (uint64_t)st.st_size;
    cfg->sizes.nfiles = n + 1;
    cfg->err[0] = 0;
    return HL_OK;
}

const char *hl_config_error(const hl_config *cfg) { return cfg ? cfg->err : "no configuration"; }

/* Sets the size at (field) bytes into cfg->sizes to (bytes), rounded up to pages, if it lies
 * in [min, max]. */
static hl_status set_size(hl_config *cfg, size_t field, const char *what, size_t bytes, uint64_t min, uint64_t max)
{
    if (!cfg) return HL_ERR_INVALID_ARG;
    if (bytes < min)
        return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "%s %zu is below the minimum %llu", what, bytes,
                       (unsigned long long)min);
    if (bytes > max)
        return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "%s %zu is above the maximum %llu", what, bytes,
                       (unsigned long long)max);
    *(uint64_t *)((char *)&cfg->sizes + field) = HL_ALIGN_UP((uint64_t)bytes, HL_PAGE);
    cfg->err[0] = 0;
    return HL_OK;
}

#define SIZE_SETTER(name, field, what, min, max) \
    hl_status name(hl_config *cfg, size_t b) { return set_size(cfg, offsetof(hl_sizes, field), what, b, min, max); }

/* The heap and stack setters also remember that the embedder chose the size. */
hl_status hl_config_set_heap_size(hl_config *cfg, size_t b)
{
    hl_status st = set_size(cfg, offsetof(hl_sizes, heap), "heap size", b, HL_HEAP_MIN, HL_HEAP_MAX);
    if (st == HL_OK) cfg->heap_set = true;
    return st;
}
hl_status hl_config_set_scratch_size(hl_config *cfg, size_t b)
{
    hl_status st = set_size(cfg, offsetof(hl_sizes, scratch), "scratch size", b, HL_SCRATCH_MIN, HL_SCRATCH_MAX);
    if (st == HL_OK) cfg->scratch_set = true;
    return st;
}

void hl_config_sizes_for(const hl_config *cfg, const hl_elf *elf, hl_sizes *out)
{
    *out = cfg->sizes;
    if (!cfg->scratch_set && elf->stack_default) out->scratch = HL_ALIGN_UP(elf->stack_default, HL_PAGE);
    if (!cfg->heap_set && elf->heap_default) out->heap = HL_ALIGN_UP(elf->heap_default, HL_PAGE);
}
SIZE_SETTER(hl_config_set_input_size, input, "input buffer size", HL_BUFFER_MIN, HL_BUFFER_MAX)
SIZE_SETTER(hl_config_set_output_size, output, "output buffer size", HL_BUFFER_MIN, HL_BUFFER_MAX)

hl_status hl_config_register_host_fn(hl_config *cfg, const char *name, hl_type ret, const hl_type *params, int nparams,
                                     hl_host_fn fn, void *user)
{
    hl_hostfn *slot;
    int bad = 0;
    if (!cfg) return HL_ERR_INVALID_ARG;
    if (!name || !fn) return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "host function: name and callback are required");
    switch (hl_sig_check(name, ret, params, nparams, &bad)) { /* the wire codec's rules */
    case HL_SIG_OK: break;
    case HL_SIG_NAME:
        return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "host function name must be 1..%d bytes", HL_MAX_NAME);
    case HL_SIG_NPARAMS:
        return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "host function '%s': %d parameters (0..%d allowed)", name,
                       nparams, HL_MAX_ARGS);
    case HL_SIG_RET:
        return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "host function '%s': invalid return type %d", name, (int)ret);
    case HL_SIG_PARAM:
        return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "host function '%s': invalid type %d for parameter %d", name,
                       (int)params[bad], bad);
    }
    if (hl_sig_reserved(name))
        return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "host function '%s': names starting with '%s' are reserved", name,
                       HL_RESERVED_PREFIX);
    slot = (hl_hostfn *)hl_hostfn_find(cfg->hostfns, cfg->nhostfns, name);
    if (!slot) {
        if (cfg->nhostfns == cfg->caphostfns) {
            int cap = cfg->caphostfns ? cfg->caphostfns * 2 : 8;
            hl_hostfn *n = realloc(cfg->hostfns, (size_t)cap * sizeof *n);
            if (!n) return hl_errf(cfg->err, HL_ERR_NO_MEMORY, "out of memory");
            cfg->hostfns = n;
            cfg->caphostfns = cap;
        }
        slot = &cfg->hostfns[cfg->nhostfns++];
    }
    memset(slot, 0, sizeof *slot);
    memcpy(slot->name, name, strlen(name) + 1);
    slot->ret = ret;
    slot->nparams = nparams;
    if (nparams) memcpy(slot->params, params, (size_t)nparams * sizeof *params);
    slot->fn = fn;
    slot->user = user;
    cfg->err[0] = 0;
    return HL_OK;
}

hl_status hl_config_set_limits(hl_config *cfg, uint64_t max_host_calls, uint64_t max_output_bytes)
{
    if (!cfg) return HL_ERR_INVALID_ARG;
    if (max_host_calls == 0 || max_output_bytes == 0)
        return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "limits must be at least 1");
    cfg->max_host_calls = max_host_calls;
    cfg->max_output = max_output_bytes;
    cfg->err[0] = 0;
    return HL_OK;
}

hl_status hl_config_set_timeout(hl_config *cfg, uint64_t ms)
{
    if (!cfg) return HL_ERR_INVALID_ARG;
    cfg->timeout_ms = ms;
    cfg->err[0] = 0;
    return HL_OK;
}

hl_status hl_config_set_init_timeout(hl_config *cfg, uint64_t ms)
{
    if (!cfg) return HL_ERR_INVALID_ARG;
    cfg->init_timeout_ms = ms;
    cfg->err[0] = 0;
    return HL_OK;
}

uint64_t hl_config_init_timeout(const hl_config *cfg) { return cfg ? cfg->init_timeout_ms : 0; }

hl_status hl_config_set_clock(hl_config *cfg, hl_clock_mode mode)
{
    if (!cfg) return HL_ERR_INVALID_ARG;
    if (mode != HL_CLOCK_REAL && mode != HL_CLOCK_FROZEN && mode != HL_CLOCK_OFF)
        return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "clock mode %d is none of HL_CLOCK_REAL, _FROZEN, _OFF", (int)mode);
    cfg->clock = mode;
    cfg->err[0] = 0;
    return HL_OK;
}

hl_status hl_config_set_print(hl_config *cfg, hl_print_fn fn, void *user)
{
    if (!cfg) return HL_ERR_INVALID_ARG;
    cfg->print = fn;
    cfg->print_user = user;
    cfg->err[0] = 0;
    return HL_OK;
}

hl_status hl_config_set_log(hl_config *cfg, hl_log_fn fn, void *user)
{
    if (!cfg) return HL_ERR_INVALID_ARG;
    cfg->log = fn;
    cfg->log_user = user;
    cfg->err[0] = 0;
    return HL_OK;
}

hl_status hl_config_set_core_dir(hl_config *cfg, const char *dir)
{
    char abs[HL_CORE_DIR_MAX + 1];
    hl_status st;
    if (!cfg) return HL_ERR_INVALID_ARG;
    if ((st = hl_coredump_dir_check(dir, abs, cfg->err)) != HL_OK) return st;
    memcpy(cfg->core_dir, abs, sizeof abs);
    cfg->err[0] = 0;
    return HL_OK;
}

/* ---- confinement (confine.c) ---- */
hl_status hl_config_set_confinement(hl_config *cfg, bool on)
{
    if (!cfg) return HL_ERR_INVALID_ARG;
    cfg->confine = on;
    cfg->err[0] = 0;
    return HL_OK;
}

/* Adds nrs[0..n) to *set (after emptying it if replace); on an invalid number *set is unchanged. */
static hl_status add_syscalls(hl_config *cfg, hl_syscall_set *set, bool replace, const char *what, const int *nrs, int n)
{
    hl_syscall_set s = *set;
    if (replace) memset(&s, 0, sizeof s);
    if (n < 0 || (n && !nrs))
        return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "%s: %d system calls (nrs is required when n > 0)", what, n);
    for (int i = 0; i < n; i++) {
        if (!hl_syscall_valid(nrs[i]))
            return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "%s: %d is not an x86-64 system call number", what, nrs[i]);
        s.bits[nrs[i] / 64] |= 1ull << (nrs[i] % 64);
    }
    *set = s;
    cfg->err[0] = 0;
    return HL_OK;
}

hl_status hl_config_set_host_fn_syscalls(hl_config *cfg, const char *name, const int *nrs, int n)
{
    hl_hostfn *fn;
    char what[HL_MAX_NAME + 32];
    if (!cfg) return HL_ERR_INVALID_ARG;
    if (!name) return hl_errf(cfg->err, HL_ERR_INVALID_ARG, "hl_config_set_host_fn_syscalls: name is required");
    if (!(fn = (hl_hostfn *)hl_hostfn_find(cfg->hostfns, cfg->nhostfns, name)))
        return hl_errf(cfg->err, HL_ERR_NOT_FOUND, "host function '%s' is not registered", name);
    snprintf(what, sizeof what, "host function '%s'", name);
    return add_syscalls(cfg, &fn->syscalls, true, what, nrs, n);
}

hl_status hl_config_allow_syscalls(hl_config *cfg, const int *nrs, int n)
{
    if (!cfg) return HL_ERR_INVALID_ARG;
    return add_syscalls(cfg, &cfg->allow, false, "hl_config_allow_syscalls", nrs, n);
}

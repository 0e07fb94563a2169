/* config.h - configuration objects (config.c): what sandboxes are made with. */
#ifndef HL_CONFIG_H
#define HL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "functions.h"
#include "layout.h"

/* A host file mapped read-only into guests: kept open by configurations, snapshots and
 * sandboxes (each holds its own descriptor). */
typedef struct hl_file {
    int fd;
    uint64_t size;
} hl_file;

struct hl_config {
    hl_sizes sizes;
    bool heap_set, scratch_set;  /* set by the embedder: a size the guest declares does not apply */
    void *init_data;             /* copied at hl_config_set_init_data; sizes.init bytes */
    hl_file files[HL_MAX_FILES]; /* sizes.nfiles of them; labels in sizes */
    uint64_t timeout_ms;
    uint64_t init_timeout_ms; /* for the guest's initialisation */
    uint64_t max_host_calls;  /* per guest call */
    uint64_t max_output;      /* bytes of prints and log messages per guest call */
    hl_clock_mode clock;      /* hl_config_set_clock */
    int nhostfns, caphostfns;
    hl_hostfn *hostfns;
    hl_print_fn print;
    void *print_user;
    hl_log_fn log;
    void *log_user;
    char core_dir[HL_CORE_DIR_MAX + 1]; /* crash dumps go here; "" = off (coredump.c) */
    bool confine;                       /* hl_config_set_confinement */
    hl_syscall_set allow;               /* hl_config_allow_syscalls */
    char err[HL_ERR_LEN];
};

/* Copies (cfg) (host functions, init data, file descriptors): for pools. NULL if out of memory. */
hl_config *hl_config_clone(const hl_config *cfg);
/* dup()s the descriptors of (n) files into (dst); false (nothing kept) on failure. */
bool hl_files_dup(hl_file *dst, const hl_file *src, int n);
void hl_files_close(hl_file *files, int n);
/* The sizes a sandbox of elf made with cfg gets: the configuration's, but the stack and heap
 * the guest declares (HL_GUEST_DEFAULTS) where the embedder did not set them. */
void hl_config_sizes_for(const hl_config *cfg, const hl_elf *elf, hl_sizes *out);
/* The default print function: the guest's output to the host's stdout. */
void hl_default_print(void *user, int stream, const char *data, size_t len);

#endif

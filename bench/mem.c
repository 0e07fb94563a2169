/* mem.c - resident memory per extra idle sandbox: the growth of /proc/self/status,
 * /proc/self/smaps_rollup and /proc/meminfo figures over MEM_SANDBOXES new sandboxes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const struct {
    const char *file, *key, *json;
} mem_src[NMEM] = {
    { "/proc/self/status", "RssAnon:", "rss_anon_kib" },
    { "/proc/self/status", "RssFile:", "rss_file_kib" },
    { "/proc/self/status", "RssShmem:", "rss_shmem_kib" },
    { "/proc/self/status", "VmRSS:", "vm_rss_kib" },
    { "/proc/self/smaps_rollup", "Pss:", "pss_kib" },
    { "/proc/self/smaps_rollup", "Pss_Anon:", "pss_anon_kib" },
    { "/proc/self/smaps_rollup", "Pss_File:", "pss_file_kib" },
    { "/proc/self/smaps_rollup", "Pss_Shmem:", "pss_shmem_kib" },
    { "/proc/meminfo", "Slab:", "kernel_slab_kib" },
    { "/proc/meminfo", "SUnreclaim:", "kernel_slab_unreclaimable_kib" },
    { "/proc/meminfo", "PageTables:", "kernel_page_tables_kib" },
    { "/proc/meminfo", "SecPageTables:", "kernel_secondary_page_tables_kib" },
    { "/proc/meminfo", "KernelStack:", "kernel_stack_kib" },
};

const char *mem_json_name(int i) { return mem_src[i].json; }

/* kB values of mem_src; -1 where absent. */
static void mem_read(double v[NMEM])
{
    char line[256];
    for (int i = 0; i < NMEM; i++) v[i] = -1;
    for (int i = 0; i < NMEM; i++) {
        FILE *f;
        if (v[i] >= 0 || !(f = fopen(mem_src[i].file, "r"))) continue;
        while (fgets(line, sizeof line, f))
            for (int j = i; j < NMEM; j++)
                if (strcmp(mem_src[j].file, mem_src[i].file) == 0 &&
                    strncmp(line, mem_src[j].key, strlen(mem_src[j].key)) == 0)
                    v[j] = strtod(line + strlen(mem_src[j].key), NULL);
        fclose(f);
    }
}

/* Creates one sandbox from snap and makes one call (warm: shared pages and allocations),
 * then MEM_SANDBOXES more, one call each, and divides the growth by MEM_SANDBOXES. The
 * /proc/meminfo figures are system-wide (other tenants add noise). */
void measure_memory(bench *b, memres *m)
{
    hl_sandbox *sb[MEM_SANDBOXES + 1];
    double a[NMEM], z[NMEM];
    hl_value ret;
    for (int i = 0; i <= MEM_SANDBOXES; i++) {
        if (i == 1) mem_read(a);
        if (hl_sandbox_new_from_snapshot(&sb[i], b->snap, b->cfg) != HL_OK)
            die("memory: hl_sandbox_new_from_snapshot: %s", hl_last_error(NULL));
        call_on(sb[i], "Empty", NULL, 0, &ret);
    }
    mem_read(z);
    m->n = MEM_SANDBOXES;
    for (int i = 0; i < NMEM; i++) m->per[i] = a[i] >= 0 && z[i] >= 0 ? (z[i] - a[i]) / MEM_SANDBOXES : -1e9;
    for (int i = 0; i <= MEM_SANDBOXES; i++) hl_sandbox_free(sb[i]);
}

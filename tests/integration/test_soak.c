/* test_soak.c - 10,000 rounds of create / call / restore / call / free: nothing may leak
 * (LeakSanitizer checks this binary in `make test-asan`), and the process's descriptor count
 * and resident memory stay flat. HL_SOAK_ROUNDS overrides the count. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"


static long rss_kib(void)
{
    char line[256];
    long anon = -1, file = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "RssAnon: %ld", &anon);
        sscanf(line, "RssFile: %ld", &file);
    }
    if (f) fclose(f);
    return anon + file;
}

int main(void)
{
    int rounds = getenv("HL_SOAK_ROUNDS") ? atoi(getenv("HL_SOAK_ROUNDS")) : 10000;
    hl_config *cfg = hl_config_new();
    hl_sandbox *base = must_sandbox("snap_guest", cfg);
    hl_snapshot *snap;
    hl_value r, a[2];
    int fds_warm = 0, bad = 0;
    long rss_warm = 0;
    CHECK_INT(hl_snapshot_take(base, &snap), HL_OK);
    for (int i = 0; i < rounds; i++) {
        hl_sandbox *sb = NULL;
        hl_status st = i % 100 == 0 ? hl_sandbox_new_from_file(&sb, guest_path("snap_guest"), cfg)
                                    : hl_sandbox_new_from_snapshot(&sb, snap, cfg);
        if (st != HL_OK) {
            bad++;
            continue;
        }
        a[0] = hl_u32(8);
        a[1] = hl_u32((uint32_t)i);
        if (hl_call(sb, "Fill", HL_U32, a, 2, &r) != HL_OK || r.v.u32 != 8) bad++;
        if (hl_call(sb, "Incr", HL_U64, NULL, 0, &r) != HL_OK || r.v.u64 != 1) bad++;
        if (i % 100 != 0) {
            if (hl_sandbox_restore(sb, snap) != HL_OK) bad++;
            if (hl_call(sb, "Incr", HL_U64, NULL, 0, &r) != HL_OK || r.v.u64 != 1) bad++;
        }
        if (i % 1000 == 999) { /* a poisoned sandbox is freed just as cleanly */
            if (hl_call(sb, "Abort", HL_VOID, NULL, 0, &r) != HL_ERR_ABORTED) bad++;
        }
        hl_sandbox_free(sb);
        if (i == rounds / 10) {
            fds_warm = test_count_fds();
            rss_warm = rss_kib();
        }
    }
    long rss_end = rss_kib();
    printf("     %d rounds: descriptors %d -> %d, resident %ld -> %ld KiB\n", rounds, fds_warm, test_count_fds(),
           rss_warm, rss_end);
    CHECK_INT(bad, 0);
    CHECK_INT(test_count_fds(), fds_warm);
    CHECK(rss_end - rss_warm < 8192); /* flat: no growth with the number of rounds */
    hl_snapshot_free(snap);
    hl_sandbox_free(base);
    hl_config_free(cfg);
    return check_exit("soak");
}

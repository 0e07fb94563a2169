/* test_snapshot.c - snapshots on real KVM: take, restore, chains, new sandboxes from a
 * snapshot, incompatible restores, host-function coverage, the snapshot never written. */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "harness.h"
#include "snap_helpers.h"
#include "internal.h" /* hl_checksum and the snapshot's view, to prove it is never written */

#define ARENA_PAGES 1024

int main(void)
{
    hl_config *cfg = hl_config_new();
    hl_type i32 = HL_I32;
    hl_config_register_host_fn(cfg, "Twice", HL_I32, &i32, 1, twice, NULL);
    hl_sandbox *sb = must_sandbox("snap_guest", cfg), *b1, *b2, *c1;
    hl_snapshot *a, *c, *d;
    hl_value v;

    /* state rollback: counter, bss arena, heap string, generation */
    CHECK_INT(fill(sb, ARENA_PAGES, 7), ARENA_PAGES);
    CHECK_INT(call_u64(sb, "Incr"), 1);
    CHECK_INT(call_u64(sb, "Incr"), 2);
    v = hl_str("before");
    CHECK_INT(hl_call(sb, "SetStr", HL_VOID, &v, 1, &v), HL_OK);
    CHECK_INT(call_u64(sb, "Generation"), 0);
    CHECK_INT(hl_snapshot_take(sb, &a), HL_OK);
    CHECK_INT(hl_snapshot_generation(a), 1);
    uint64_t sum_a = hl_checksum(a->view, a->lo.total);
    CHECK_INT(call_u64(sb, "Generation"), 0); /* not restored yet */
    CHECK_INT(call_u64(sb, "Incr"), 3);
    v = hl_str("after, and longer than before");
    CHECK_INT(hl_call(sb, "SetStr", HL_VOID, &v, 1, &v), HL_OK);
    CHECK_INT(fill(sb, 16, 9), 16);
    CHECK_INT(bad_pages(sb, 7), 16);
    CHECK_INT(hl_sandbox_restore(sb, a), HL_OK);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    CHECK_INT(call_u64(sb, "Get"), 2);
    CHECK_INT(call_u64(sb, "Generation"), 1);
    CHECK_INT(hl_call(sb, "GetStr", HL_STRING, NULL, 0, &v), HL_OK);
    CHECK_STR(hl_value_str(&v), "before");
    CHECK_INT(bad_pages(sb, 7), 0);

    /* x87/SSE state never carries from one call, or one restore, to the next */
    v = hl_u64(0x1234567887654321ull);
    CHECK_INT(hl_call(sb, "SetFpu", HL_VOID, &v, 1, &v), HL_OK);
    CHECK_INT(hl_call(sb, "GetFpu", HL_STRING, NULL, 0, &v), HL_OK);
    CHECK_STR(hl_value_str(&v), "xmm7=0 mxcsr=1f80 fcw=37f");
    v = hl_u64(0x1234567887654321ull);
    CHECK_INT(hl_call(sb, "SetFpu", HL_VOID, &v, 1, &v), HL_OK);
    CHECK_INT(hl_sandbox_restore(sb, a), HL_OK);
    CHECK_INT(hl_call(sb, "GetFpu", HL_STRING, NULL, 0, &v), HL_OK);
    CHECK_STR(hl_value_str(&v), "xmm7=0 mxcsr=1f80 fcw=37f");
    CHECK_INT(hl_sandbox_restore(sb, a), HL_OK);
    /* nor into a snapshot, which may be saved or shared: a pooled sandbox holds its previous
     * user's x87/SSE registers until its next call resets them, and a snapshot of it must not */
    {
        const uint64_t secret = 0x1234567887654321ull;
        hl_pool *pool = NULL;
        hl_sandbox *p = NULL;
        hl_snapshot *s2 = NULL;
        CHECK_INT(hl_pool_new(&pool, a, cfg, 1, false), HL_OK);
        if (pool && hl_pool_get(pool, &p) == HL_OK) {
            v = hl_u64(secret);
            CHECK_INT(hl_call(p, "SetFpu", HL_VOID, &v, 1, &v), HL_OK);
            CHECK_INT(hl_pool_put(pool, p), HL_OK);
            CHECK_INT(hl_pool_get(pool, &p), HL_OK);
            CHECK_INT(hl_snapshot_take(p, &s2), HL_OK);
            CHECK(s2 && !memmem(s2->cpu.fpu, sizeof s2->cpu.fpu, &secret, sizeof secret));
            hl_snapshot_free(s2);
            CHECK_INT(hl_call(p, "GetFpu", HL_STRING, NULL, 0, &v), HL_OK);
            CHECK_STR(hl_value_str(&v), "xmm7=0 mxcsr=1f80 fcw=37f");
            hl_sandbox_free(p);
        }
        hl_pool_free(pool);
    }

    /* restore after dirtying 1, 16, 256 and all pages, checked from inside the guest */
    uint32_t counts[] = { 1, 16, 256, ARENA_PAGES };
    for (int i = 0; i < 4; i++) {
        CHECK_INT(fill(sb, counts[i], 100 + i), counts[i]);
        CHECK_INT(bad_pages(sb, 7), counts[i]);
        CHECK_INT(hl_sandbox_restore(sb, a), HL_OK);
        CHECK_INT(bad_pages(sb, 7), 0);
        CHECK_INT(call_u64(sb, "Get"), 2);
        CHECK_INT(hl_sandbox_restore(sb, a), HL_OK);
    }

    /* two sandboxes from one snapshot diverge independently */
    CHECK_INT(hl_sandbox_new_from_snapshot(&b1, a, cfg), HL_OK);
    CHECK_INT(hl_sandbox_new_from_snapshot(&b2, a, cfg), HL_OK);
    CHECK_INT(call_u64(b1, "Generation"), 1);
    CHECK_INT(call_u64(b1, "Incr"), 3);
    CHECK_INT(call_u64(b1, "Incr"), 4);
    CHECK_INT(call_u64(b2, "Incr"), 3);
    CHECK_INT(fill(b1, 8, 11), 8);
    CHECK_INT(bad_pages(b2, 7), 0);
    CHECK_INT(bad_pages(b1, 7), 8);
    CHECK_INT(call_u64(b2, "Get"), 3);
    v = hl_i32(21);
    CHECK_INT(hl_call(b2, "CallTwice", HL_I32, &v, 1, &v), HL_OK);
    CHECK_INT(v.v.i32, 42);

    /* a chain of three snapshots: a -> c (from b1) -> d (from a sandbox made from c) */
    CHECK_INT(hl_snapshot_take(b1, &c), HL_OK);
    CHECK_INT(hl_snapshot_generation(c), 2);
    {
        /* c owns only the pages b1 changed; every other page is shared with a's files */
        hl_memfile *own = NULL;
        uint64_t owned = 0, total = 0;
        for (int i = 0; i < c->img.n; i++) {
            total += c->img.ext[i].count;
            int in_a = 0;
            for (int j = 0; j < a->img.n; j++) in_a |= a->img.ext[j].file == c->img.ext[i].file;
            if (!in_a) own = c->img.ext[i].file, owned += c->img.ext[i].count;
        }
        CHECK(own != NULL);
        CHECK_INT(total, c->lo.total / 4096);
        CHECK(owned >= 8 && owned < 32); /* 8 arena pages + counter, stack, buffers, meta */
        printf("     chain: c has %d extents, owns %llu of %llu pages\n", c->img.n, (unsigned long long)owned,
               (unsigned long long)total);
    }
    CHECK_INT(hl_sandbox_new_from_snapshot(&c1, c, cfg), HL_OK);
    CHECK_INT(call_u64(c1, "Get"), 4);
    CHECK_INT(call_u64(c1, "Generation"), 2);
    CHECK_INT(bad_pages(c1, 7), 8);
    CHECK_INT(fill(c1, ARENA_PAGES, 12), ARENA_PAGES);
    CHECK_INT(call_u64(c1, "Incr"), 5);
    CHECK_INT(hl_snapshot_take(c1, &d), HL_OK);
    CHECK_INT(hl_snapshot_generation(d), 3);
    CHECK_INT(call_u64(c1, "Incr"), 6);
    CHECK_INT(hl_sandbox_restore(c1, d), HL_OK);
    CHECK_INT(call_u64(c1, "Get"), 5);
    CHECK_INT(bad_pages(c1, 12), 0);
    /* back up the chain: restore c1 to a (a different image than its base) */
    CHECK_INT(hl_sandbox_restore(c1, a), HL_OK);
    CHECK_INT(call_u64(c1, "Get"), 2);
    CHECK_INT(bad_pages(c1, 7), 0);
    CHECK_INT(call_u64(c1, "Generation"), 1);
    CHECK_INT(hl_sandbox_restore(c1, c), HL_OK);
    CHECK_INT(call_u64(c1, "Get"), 4);
    CHECK_INT(bad_pages(c1, 7), 8);

    /* generations follow the restored snapshot: restoring an older one and taking a snapshot
     * gives one more than the restored one, not one more than the highest taken */
    {
        hl_sandbox *g;
        hl_snapshot *s1, *s2, *s3, *s4;
        CHECK_INT(hl_sandbox_new_from_snapshot(&g, a, cfg), HL_OK); /* a: generation 1 */
        CHECK_INT(call_u64(g, "Incr"), 3);
        CHECK_INT(hl_snapshot_take(g, &s1), HL_OK);
        CHECK_INT(hl_snapshot_generation(s1), 2);
        CHECK_INT(call_u64(g, "Incr"), 4);
        CHECK_INT(hl_snapshot_take(g, &s2), HL_OK);
        CHECK_INT(hl_snapshot_generation(s2), 3);
        CHECK_INT(hl_sandbox_restore(g, s1), HL_OK);
        CHECK_INT(call_u64(g, "Generation"), 2);
        CHECK_INT(hl_snapshot_take(g, &s3), HL_OK);
        CHECK_INT(hl_snapshot_generation(s3), 3); /* s1's + 1, like s2 */
        CHECK_INT(hl_sandbox_restore(g, s3), HL_OK);
        CHECK_INT(call_u64(g, "Generation"), 3);
        CHECK_INT(call_u64(g, "Get"), 3);
        CHECK_INT(hl_sandbox_restore(g, a), HL_OK); /* back to the sandbox's own origin */
        CHECK_INT(hl_snapshot_take(g, &s4), HL_OK);
        CHECK_INT(hl_snapshot_generation(s4), 2);
        hl_snapshot_free(s1);
        hl_snapshot_free(s2);
        hl_snapshot_free(s3);
        hl_snapshot_free(s4);
        hl_sandbox_free(g);
    }

    /* restore of a poisoned sandbox: abort, and a guest fault */
    CHECK_INT(hl_call(b2, "Abort", HL_VOID, NULL, 0, &v), HL_ERR_ABORTED);
    CHECK_INT(hl_sandbox_state(b2), HL_STATE_POISONED);
    CHECK_INT(hl_sandbox_restore(b2, a), HL_OK);
    CHECK_INT(hl_sandbox_state(b2), HL_STATE_READY);
    CHECK_INT(call_u64(b2, "Get"), 2);
    CHECK_INT(hl_call(b2, "Crash", HL_VOID, NULL, 0, &v), HL_ERR_FAULT);
    CHECK_INT(hl_sandbox_state(b2), HL_STATE_POISONED);
    hl_snapshot *none = (hl_snapshot *)1;
    CHECK_INT(hl_snapshot_take(b2, &none), HL_ERR_STATE);
    CHECK(none == NULL);
    CHECK_STR(hl_last_error(b2), "cannot snapshot a poisoned sandbox");
    CHECK_INT(hl_sandbox_restore(b2, a), HL_OK);
    CHECK_INT(call_u64(b2, "Incr"), 3);
    CHECK_INT(bad_pages(b2, 7), 0);

    /* arguments that did not fit leave nothing behind: the host's partial write into the input
     * buffer is restored like everything else */
    {
        char *big = calloc(1, 300000), *str = malloc(8001);
        hl_value two[2];
        memset(str, 'x', 8000);
        str[8000] = 0;
        memcpy(str + 6000, "LEFT-BY-AN-EARLIER-CALL", 23);
        two[0] = hl_str(str);
        two[1] = hl_bytes(big, 300000);
        CHECK_INT(hl_call(b2, "TakeTwo", HL_I32, two, 2, &v), HL_ERR_TOO_LARGE);
        CHECK_INT(call_u64(b2, "ScanInput"), 1); /* visible now: it is the guest's own memory */
        CHECK_INT(hl_sandbox_restore(b2, a), HL_OK);
        CHECK_INT(call_u64(b2, "ScanInput"), 0);
        free(big);
        free(str);
    }

    /* a snapshot taken right after restoring a poisoned sandbox (before any call) restores
     * later like any other */
    {
        hl_snapshot *s2;
        CHECK_INT(hl_call(b2, "Abort", HL_VOID, NULL, 0, &v), HL_ERR_ABORTED);
        CHECK_INT(hl_sandbox_restore(b2, a), HL_OK);
        CHECK_INT(hl_snapshot_take(b2, &s2), HL_OK);
        CHECK_INT(call_u64(b2, "Incr"), 3);
        CHECK_INT(hl_sandbox_restore(b2, s2), HL_OK);
        CHECK_INT(call_u64(b2, "Incr"), 3);
        CHECK_INT(hl_sandbox_restore(b2, a), HL_OK);
        hl_snapshot_free(s2);
    }

    /* incompatible restore is refused and changes nothing */
    hl_config *big = hl_config_new();
    hl_config_set_heap_size(big, 8u << 20);
    hl_config_register_host_fn(big, "Twice", HL_I32, &i32, 1, twice, NULL);
    hl_sandbox *other = must_sandbox("snap_guest", big);
    CHECK_INT(call_u64(other, "Incr"), 1);
    CHECK_INT(hl_sandbox_restore(other, a), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_last_error(other), "snapshot is incompatible with this sandbox: heap size differs");
    CHECK_INT(hl_sandbox_state(other), HL_STATE_READY);
    CHECK_INT(call_u64(other, "Incr"), 2);
    hl_sandbox *demo = must_sandbox("demo", cfg);
    CHECK_INT(hl_sandbox_restore(demo, a), HL_ERR_INVALID_ARG);
    CHECK_HAS(hl_last_error(demo), "snapshot is incompatible with this sandbox");

    /* host-function coverage when making a sandbox from a snapshot */
    hl_config *bare = hl_config_new();
    hl_sandbox *x = NULL;
    CHECK_INT(hl_sandbox_new_from_snapshot(&x, a, bare), HL_ERR_INVALID_ARG);
    CHECK(x == NULL);
    CHECK_STR(hl_last_error(NULL),
              "configuration lacks 1 host function the snapshot needs: Twice(i32) -> i32 (missing)");
    hl_type u32 = HL_U32;
    hl_config_register_host_fn(bare, "Twice", HL_I32, &u32, 1, twice, NULL);
    CHECK_INT(hl_sandbox_new_from_snapshot(&x, a, bare), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_last_error(NULL), "configuration lacks 1 host function the snapshot needs: Twice(i32) -> i32 "
                                   "(registered as Twice(u32) -> i32)");

    /* the snapshot's memory never changed, after all of the above */
    for (int i = 0; i < 200; i++) {
        fill(b1, 4, (uint32_t)i);
        fill(b2, 4, (uint32_t)i);
        if (i % 10 == 0) hl_sandbox_restore(b1, a);
    }
    CHECK(hl_checksum(a->view, a->lo.total) == sum_a);

    /* pools: ready sandboxes in a's state; put scrubs them */
    hl_pool *pool;
    hl_sandbox *p1, *p2, *extra[6];
    CHECK_INT(hl_pool_new(&pool, a, cfg, 4, true), HL_OK);
    for (int i = 0; i < 500 && hl_pool_ready(pool) < 4; i++) usleep(10000);
    CHECK_INT(hl_pool_ready(pool), 4);
    CHECK_INT(hl_pool_get(pool, &p1), HL_OK);
    CHECK_INT(call_u64(p1, "Get"), 2);
    CHECK_INT(call_u64(p1, "Incr"), 3);
    CHECK_INT(fill(p1, 64, 5), 64);
    v = hl_str("secret of the last user");
    CHECK_INT(hl_call(p1, "SetStr", HL_VOID, &v, 1, &v), HL_OK);
    CHECK_INT(hl_pool_put(pool, p1), HL_OK);
    for (int i = 0; i < 6; i++) CHECK_INT(hl_pool_get(pool, &extra[i]), HL_OK); /* 4 ready + 2 on demand */
    for (int i = 0; i < 6; i++) {
        CHECK_INT(call_u64(extra[i], "Get"), 2);
        CHECK_INT(hl_call(extra[i], "GetStr", HL_STRING, NULL, 0, &v), HL_OK);
        CHECK_STR(hl_value_str(&v), "before");
    }
    CHECK_INT(bad_pages(extra[0], 7), 0);
    CHECK_INT(hl_call(extra[1], "Crash", HL_VOID, NULL, 0, &v), HL_ERR_FAULT);
    CHECK_INT(hl_pool_put(pool, extra[1]), HL_OK); /* a poisoned sandbox is scrubbed too */
    CHECK_INT(hl_pool_get(pool, &p2), HL_OK);
    CHECK_INT(hl_sandbox_state(p2), HL_STATE_READY);
    CHECK_INT(call_u64(p2, "Get"), 2);
    hl_pool_free(pool);
    CHECK_INT(call_u64(extra[0], "Get"), 2); /* taken sandboxes outlive the pool */
    hl_sandbox_free(p2);
    for (int i = 0; i < 6; i++)
        if (i != 1) hl_sandbox_free(extra[i]);

    /* resident memory of idle sandboxes made from one snapshot */
    {
        enum { N = 20 };
        hl_sandbox *idle[N];
        long before = -1, after = -1;
        char line[256];
        FILE *f = fopen("/proc/self/status", "r");
        while (f && fgets(line, sizeof line, f)) sscanf(line, "RssAnon: %ld", &before);
        if (f) fclose(f);
        for (int i = 0; i < N; i++) {
            CHECK_INT(hl_sandbox_new_from_snapshot(&idle[i], a, cfg), HL_OK);
            CHECK_INT(call_u64(idle[i], "Get"), 2);
        }
        f = fopen("/proc/self/status", "r");
        while (f && fgets(line, sizeof line, f)) sscanf(line, "RssAnon: %ld", &after);
        if (f) fclose(f);
        printf("     idle sandboxes from one snapshot: %.0f KiB anonymous memory each\n", (after - before) / (double)N);
        CHECK(after - before < N * 512); /* generous: the benchmark measures it precisely */
        for (int i = 0; i < N; i++) hl_sandbox_free(idle[i]);
    }

    hl_snapshot_free(a);
    hl_snapshot_free(c);
    hl_snapshot_free(d);
    /* sandboxes keep their snapshots alive */
    CHECK_INT(call_u64(c1, "Get"), 4);
    hl_sandbox_free(sb);
    hl_sandbox_free(b1);
    hl_sandbox_free(b2);
    hl_sandbox_free(c1);
    hl_sandbox_free(other);
    hl_sandbox_free(demo);
    hl_config_free(cfg);
    hl_config_free(big);
    hl_config_free(bare);
    return check_exit("snapshot");
}

/* test_clock.c - the guest's clocks, sleeps and entropy on real KVM (src/guest/time.c,
 * src/host/clock.c): real, frozen and off clocks; fresh entropy in every sandbox and after
 * every restore, from snapshots, snapshot files and pools. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <x86intrin.h>

#include "harness.h"
#include "internal.h" /* the sandbox's measured TSC offset */

/* picolibc's clock ids (its <time.h>), which the guest passes on */
enum { G_REALTIME = 1, G_PROCESS = 2, G_THREAD = 3, G_MONOTONIC = 4 };
#define NS 1000000000ll
#define FROZEN_REAL (946684800ll * NS)
#define GUEST_ENOSYS 88 /* picolibc's errno values (its sys/errno.h), not the host's */
#define GUEST_EINVAL 22
#define GUEST_EIO 5

static int64_t host_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* A call returning i64; INT64_MIN (no check expects it) on failure, with the error kept. */
static int64_t call_i64(hl_sandbox *sb, const char *fn, const hl_value *a, int n)
{
    hl_value r;
    if (hl_call(sb, fn, HL_I64, a, n, &r) != HL_OK) return INT64_MIN;
    return r.v.i64;
}
static int64_t now(hl_sandbox *sb, uint32_t id)
{
    hl_value a = hl_u32(id);
    return call_i64(sb, "Now", &a, 1);
}
/* Entropy(n) into out; false on failure. */
static bool entropy(hl_sandbox *sb, uint32_t n, uint8_t *out)
{
    hl_value a = hl_u32(n), r;
    if (hl_call(sb, "Entropy", HL_BYTES, &a, 1, &r) != HL_OK || r.v.buf.len != n) {
        fprintf(stderr, "Entropy(%u): %s\n", n, hl_last_error(sb));
        return false;
    }
    memcpy(out, r.v.buf.ptr, n);
    return true;
}

static hl_config *config(hl_clock_mode mode)
{
    hl_config *cfg = hl_config_new();
    if (hl_config_set_clock(cfg, mode) != HL_OK) exit(1);
    return cfg;
}

static void test_real(void)
{
    hl_config *cfg = config(HL_CLOCK_REAL);
    hl_sandbox *sb = must_sandbox("clock_guest", cfg);
    hl_value a, r;
    int64_t h0, g, h1, t0, g0, g1, t1, c0, c1;
    uint64_t k0, k1, gk;

    /* realtime and monotonic: the host's, to within 2 s (measured: microseconds) */
    h0 = host_ns(CLOCK_REALTIME);
    g = now(sb, G_REALTIME);
    h1 = host_ns(CLOCK_REALTIME);
    CHECK(g > h0 - 2 * NS && g < h1 + 2 * NS);
    printf("realtime: guest - host %+lld ns (host window %lld ns)\n", (long long)(g - h0), (long long)(h1 - h0));
    h0 = host_ns(CLOCK_MONOTONIC);
    g = now(sb, G_MONOTONIC);
    h1 = host_ns(CLOCK_MONOTONIC);
    CHECK(g > h0 - 2 * NS && g < h1 + 2 * NS);
    printf("monotonic: guest - host %+lld ns\n", (long long)(g - h0));

    /* a 50 ms window measured by the host, seen by the guest within a factor of 2 */
    t0 = host_ns(CLOCK_MONOTONIC);
    g0 = now(sb, G_MONOTONIC);
    usleep(50000);
    g1 = now(sb, G_MONOTONIC);
    t1 = host_ns(CLOCK_MONOTONIC);
    CHECK(g1 - g0 >= 25000000 && g1 - g0 <= 2 * (t1 - t0));
    printf("50 ms window: guest %lld ns, host %lld ns\n", (long long)(g1 - g0), (long long)(t1 - t0));

    /* strictly increasing over a busy loop */
    a = hl_u32(100000);
    g = call_i64(sb, "MonoLoop", &a, 1);
    if (g == INT64_MIN) fprintf(stderr, "MonoLoop: %s\n", hl_last_error(sb));
    CHECK(g > 0);

    /* the guest's TSC is the host's plus the offset measured at creation (on kvm_pvm: 0,
     * the guest's rdtsc is the host's) */
    k0 = __rdtsc();
    CHECK_INT(hl_call(sb, "Rdtsc", HL_U64, NULL, 0, &r), HL_OK);
    k1 = __rdtsc();
    gk = r.v.u64 - (uint64_t)sb->clock.tsc_offset;
    CHECK(gk + 200000 > k0 && gk < k1 + 200000);
    if (test_on_pvm()) CHECK_INT(sb->clock.tsc_offset, 0);
    printf("tsc: offset %lld, guest - host %+lld ticks (host window %llu), %llu Hz\n", (long long)sb->clock.tsc_offset,
           (long long)(gk - k0), (unsigned long long)(k1 - k0), (unsigned long long)sb->clock.tsc_hz);

    /* time(), gettimeofday and clock_gettime agree; time() is the host's second */
    h0 = host_ns(CLOCK_REALTIME) / NS;
    g = call_i64(sb, "Agree", NULL, 0);
    CHECK(g >= h0 - 2 && g <= h0 + 2);

    /* clock(): small (the sandbox is new), increasing, and times() agrees */
    c0 = call_i64(sb, "Clock", NULL, 0);
    a = hl_u32(100000);
    call_i64(sb, "MonoLoop", &a, 1);
    c1 = call_i64(sb, "Clock", NULL, 0);
    CHECK(c0 >= 0 && c0 < 60 * 1000000); /* picolibc's CLOCKS_PER_SEC is 10^6 on x86-64 */
    CHECK(c1 > c0);
    g0 = now(sb, G_PROCESS);
    g1 = now(sb, G_THREAD);
    CHECK(g0 > 0 && g0 < 60 * NS && g1 >= g0);
    CHECK_INT(call_i64(sb, "Res", (a = hl_u32(G_MONOTONIC), &a), 1), 1);
    CHECK_INT(call_i64(sb, "Res", (a = hl_u32(99), &a), 1), INT64_MIN);
    CHECK_INT(hl_last_error_code(sb), GUEST_EINVAL);

    /* an unknown clock */
    CHECK_INT(now(sb, 99), INT64_MIN);
    CHECK_INT(hl_last_error_code(sb), GUEST_EINVAL);
    CHECK_STR(hl_last_error(sb), "guest function 'Now' failed with code 22: clock_gettime: errno 22");

    /* nanosleep(10 ms) takes at least 10 ms of the host's time; usleep too */
    {
        hl_value s[2] = { hl_i64(0), hl_i64(10000000) };
        t0 = host_ns(CLOCK_MONOTONIC);
        CHECK_INT(hl_call(sb, "Sleep", HL_I32, s, 2, &r), HL_OK);
        t1 = host_ns(CLOCK_MONOTONIC);
        CHECK(t1 - t0 >= 10000000);
        printf("nanosleep(10 ms): %lld ns of host time\n", (long long)(t1 - t0));
        a = hl_u32(20000);
        t0 = host_ns(CLOCK_MONOTONIC);
        CHECK_INT(hl_call(sb, "USleep", HL_I32, &a, 1, &r), HL_OK);
        t1 = host_ns(CLOCK_MONOTONIC);
        CHECK(t1 - t0 >= 20000000);
        /* clock_nanosleep to an absolute time 15 ms ahead, on either clock; not on CPU time */
        hl_value abs[2] = { hl_u32(G_MONOTONIC), hl_u32(15) };
        t0 = host_ns(CLOCK_MONOTONIC);
        g = call_i64(sb, "SleepAbs", abs, 2);
        t1 = host_ns(CLOCK_MONOTONIC);
        CHECK(g >= 15000000 && t1 - t0 >= 15000000);
        abs[0] = hl_u32(G_REALTIME);
        CHECK(call_i64(sb, "SleepAbs", abs, 2) >= 15000000);
        abs[0] = hl_u32(G_PROCESS);
        CHECK_INT(call_i64(sb, "SleepAbs", abs, 2), INT64_MIN);
        CHECK_STR(hl_last_error(sb), "guest function 'SleepAbs' failed with code 22: clock_nanosleep: 22");
        CHECK_INT(hl_call(sb, "SetTime", HL_I32, NULL, 0, &r), HL_ERR_GUEST);
        CHECK_STR(hl_last_error(sb), "guest function 'SetTime' failed with code 1: clock_settime: errno 1");
        s[1] = hl_i64(1000000000);
        CHECK_INT(hl_call(sb, "Sleep", HL_I32, s, 2, &r), HL_ERR_GUEST);
        CHECK_INT(hl_last_error_code(sb), GUEST_EINVAL);
        /* a sleep longer than the call's time limit is stopped by it */
        s[0] = hl_i64(3600);
        s[1] = hl_i64(0);
        hl_sandbox_set_timeout(sb, 100);
        CHECK_INT(hl_call(sb, "Sleep", HL_I32, s, 2, &r), HL_ERR_CANCELLED);
        CHECK_STR(hl_last_error(sb), "call to guest function 'Sleep' timed out after 100 ms");
    }
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* The frozen instant: the same in every call, sandbox and restore. */
static void test_frozen(void)
{
    hl_config *cfg = config(HL_CLOCK_FROZEN);
    hl_sandbox *sb = must_sandbox("clock_guest", cfg), *sb2 = must_sandbox("clock_guest", cfg), *sb3;
    hl_snapshot *snap;
    hl_value s[2] = { hl_i64(5), hl_i64(0) }, r;
    double t0;

    CHECK_INT(now(sb, G_REALTIME), FROZEN_REAL);
    CHECK_INT(now(sb, G_REALTIME), FROZEN_REAL);
    CHECK_INT(now(sb, G_MONOTONIC), NS);
    CHECK_INT(now(sb, G_PROCESS), 0);
    CHECK_INT(now(sb2, G_REALTIME), FROZEN_REAL);
    CHECK_INT(now(sb2, G_MONOTONIC), NS);
    CHECK_INT(call_i64(sb, "Agree", NULL, 0), 946684800);
    CHECK_INT(call_i64(sb, "Clock", NULL, 0), 0);
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_INT(now(sb, G_REALTIME), FROZEN_REAL);
    CHECK_INT(now(sb, G_MONOTONIC), NS);
    CHECK_INT(hl_sandbox_new_from_snapshot(&sb3, snap, cfg), HL_OK);
    CHECK_INT(now(sb3, G_REALTIME), FROZEN_REAL);
    /* a sleep in frozen time returns at once: 5 s asked, far less taken */
    t0 = test_now_ms();
    CHECK_INT(hl_call(sb3, "Sleep", HL_I32, s, 2, &r), HL_OK);
    CHECK(test_now_ms() - t0 < 2500);
    hl_sandbox_free(sb3);
    hl_snapshot_free(snap);
    hl_sandbox_free(sb2);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* No clock: ENOSYS everywhere, time() -1, clock() (clock_t)-1; entropy still works. */
static void test_off(void)
{
    hl_config *cfg = config(HL_CLOCK_OFF);
    hl_sandbox *sb = must_sandbox("clock_guest", cfg);
    hl_value a = hl_u32(G_MONOTONIC), s[2] = { hl_i64(0), hl_i64(1000) }, r;
    uint8_t e[32];

    CHECK_INT(now(sb, G_REALTIME), INT64_MIN);
    CHECK_INT(hl_last_error_code(sb), GUEST_ENOSYS);
    CHECK_STR(hl_last_error(sb), "guest function 'Now' failed with code 88: clock_gettime: errno 88");
    CHECK_INT(now(sb, G_MONOTONIC), INT64_MIN);
    CHECK_INT(hl_last_error_code(sb), GUEST_ENOSYS);
    CHECK_INT(call_i64(sb, "Res", &a, 1), INT64_MIN);
    CHECK_INT(hl_last_error_code(sb), GUEST_ENOSYS);
    CHECK_INT(call_i64(sb, "Agree", NULL, 0), INT64_MIN);
    CHECK_STR(hl_last_error(sb), "guest function 'Agree' failed with code 88: clock_gettime: errno 88");
    CHECK_INT(call_i64(sb, "TimeOf", NULL, 0), -1);
    CHECK_INT(call_i64(sb, "Clock", NULL, 0), -1);
    CHECK_INT(hl_call(sb, "Sleep", HL_I32, s, 2, &r), HL_ERR_GUEST);
    CHECK_INT(hl_last_error_code(sb), GUEST_ENOSYS);
    CHECK(entropy(sb, 32, e));
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* Entropy: never the same bytes in two sandboxes or two restores. */
static void test_entropy(void)
{
    hl_config *cfg = config(HL_CLOCK_REAL);
    hl_sandbox *sb = must_sandbox("clock_guest", cfg), *b1, *b2, *p1, *p2;
    hl_snapshot *snap, *loaded;
    hl_pool *pool;
    hl_value a, r, rnd[2];
    uint8_t e0[64], e1[64], e2[64], e3[64], big[256];
    char path[] = "/tmp/hl-clock-XXXXXX";

    CHECK(entropy(sb, 64, e0));
    CHECK(entropy(sb, 64, e1));
    CHECK(memcmp(e0, e1, 64) != 0);
    CHECK(entropy(sb, 256, big));
    a = hl_u32(257);
    CHECK_INT(hl_call(sb, "Entropy", HL_BYTES, &a, 1, &r), HL_ERR_GUEST);
    CHECK_INT(hl_last_error_code(sb), GUEST_EINVAL);

    /* the guest's generator is keyed (and was used at init) before the snapshot */
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    CHECK_INT(hl_sandbox_new_from_snapshot(&b1, snap, cfg), HL_OK);
    CHECK_INT(hl_sandbox_new_from_snapshot(&b2, snap, cfg), HL_OK);
    CHECK(entropy(b1, 64, e2));
    CHECK(entropy(b2, 64, e3));
    CHECK(memcmp(e2, e3, 64) != 0);
    CHECK(memcmp(e2, e1, 64) != 0 && memcmp(e3, e1, 64) != 0);

    /* an entropy block with epoch 0 (none from the host; written here through the host's
     * view of the meta page): EIO, and arc4random aborts the call;
     * the restore below puts a fresh block back */
    {
        struct hl_meta *m = (struct hl_meta *)(sb->mem + sb->lo.meta);
        m->entropy.epoch = 0;
        a = hl_u32(16);
        CHECK_INT(hl_call(sb, "Entropy", HL_BYTES, &a, 1, &r), HL_ERR_GUEST);
        CHECK_INT(hl_last_error_code(sb), GUEST_EIO);
        CHECK_INT(hl_call(sb, "Random", HL_BYTES, NULL, 0, &r), HL_ERR_ABORTED);
        CHECK_STR(hl_last_error(sb), "guest aborted with code -6: arc4random: the host gave no entropy");
    }

    /* two restores of one sandbox; arc4random too */
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK(entropy(sb, 64, e0));
    CHECK_INT(hl_call(sb, "Random", HL_BYTES, NULL, 0, &rnd[0]), HL_OK);
    memcpy(e2, rnd[0].v.buf.ptr, 24);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK(entropy(sb, 64, e1));
    CHECK(memcmp(e0, e1, 64) != 0);
    CHECK_INT(hl_call(sb, "Random", HL_BYTES, NULL, 0, &rnd[1]), HL_OK);
    CHECK(memcmp(e2, rnd[1].v.buf.ptr, 20) != 0);

    /* the restore also re-anchors the clock: after it the guest reads the host's time, and
     * its monotonic clock is past every reading before the restore */
    CHECK(now(sb, G_REALTIME) > host_ns(CLOCK_REALTIME) - 2 * NS);
    {
        int64_t m0 = now(sb, G_MONOTONIC), m1;
        CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
        m1 = now(sb, G_MONOTONIC);
        CHECK(m0 != INT64_MIN && m1 > m0);
    }

    /* a pool's sandboxes */
    CHECK_INT(hl_pool_new(&pool, snap, cfg, 2, false), HL_OK);
    CHECK_INT(hl_pool_get(pool, &p1), HL_OK);
    CHECK_INT(hl_pool_get(pool, &p2), HL_OK);
    CHECK(entropy(p1, 64, e0));
    CHECK(entropy(p2, 64, e1));
    CHECK(memcmp(e0, e1, 64) != 0);
    CHECK_INT(hl_pool_put(pool, p1), HL_OK);
    CHECK_INT(hl_pool_get(pool, &p1), HL_OK);
    CHECK(entropy(p1, 64, e2));
    CHECK(memcmp(e0, e2, 64) != 0 && memcmp(e1, e2, 64) != 0);
    hl_sandbox_free(p1);
    hl_sandbox_free(p2);
    hl_pool_free(pool);

    /* a snapshot file: saved, loaded, a sandbox made from it has a clock and its own bytes */
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK_INT(hl_snapshot_save(snap, path), HL_OK);
    CHECK_INT(hl_snapshot_load(&loaded, path), HL_OK);
    unlink(path);
    hl_sandbox_free(b2);
    CHECK_INT(hl_sandbox_new_from_snapshot(&b2, loaded, cfg), HL_OK);
    CHECK(entropy(b2, 64, e3));
    CHECK(memcmp(e3, e0, 64) != 0 && memcmp(e3, e1, 64) != 0 && memcmp(e3, e2, 64) != 0);
    int64_t g = now(b2, G_REALTIME), h = host_ns(CLOCK_REALTIME);
    CHECK(g > h - 2 * NS && g < h + 2 * NS);
    hl_sandbox_free(b2);
    hl_snapshot_free(loaded);

    hl_sandbox_free(b1);
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* The CLI's --clock: runs `hyperlight ARGS 2>&1`; its exit status, the output's first line in out. */
static int run_cli(const char *args, char *out, size_t len)
{
    char cmd[1024];
    const char *b = getenv("HL_BUILD");
    FILE *p;
    int st;
    snprintf(cmd, sizeof cmd, "timeout 60 %s/bin/hyperlight %s 2>&1", b ? b : "build", args);
    if (!(p = popen(cmd, "r"))) return -1;
    if (!fgets(out, (int)len, p)) out[0] = 0;
    out[strcspn(out, "\n")] = 0;
    while (fgetc(p) != EOF) continue;
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void)
{
    char args[768], out[512];
    snprintf(args, sizeof args, "call --clock frozen %s Now u32:1", guest_path("clock_guest"));
    CHECK_INT(run_cli(args, out, sizeof out), 0);
    CHECK_STR(out, "946684800000000000");
    snprintf(args, sizeof args, "call --clock off %s Now u32:4", guest_path("clock_guest"));
    CHECK_INT(run_cli(args, out, sizeof out), 1);
    CHECK_STR(out, "hyperlight: guest function 'Now' failed with code 88: clock_gettime: errno 88");
    snprintf(args, sizeof args, "call --clock slow %s Now u32:1", guest_path("clock_guest"));
    CHECK_INT(run_cli(args, out, sizeof out), 2);
    CHECK_STR(out, "hyperlight: --clock: bad mode 'slow': real, frozen or off");
}

/* A confined sandbox: the guest's reads need no system call of the worker's, and a restore
 * (on the caller's thread) still brings fresh entropy. */
static void test_confined(void)
{
    hl_config *cfg = config(HL_CLOCK_REAL);
    hl_sandbox *sb;
    hl_snapshot *snap;
    uint8_t e0[32], e1[32];
    int64_t g, h;
    hl_config_set_confinement(cfg, true);
    sb = must_sandbox("clock_guest", cfg);
    g = now(sb, G_REALTIME);
    h = host_ns(CLOCK_REALTIME);
    CHECK(g > h - 2 * NS && g < h + 2 * NS);
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    CHECK(entropy(sb, 32, e0));
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK(entropy(sb, 32, e1));
    CHECK(memcmp(e0, e1, 32) != 0);
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

static void test_config(void)
{
    hl_config *cfg = hl_config_new();
    CHECK_INT(hl_config_set_clock(cfg, (hl_clock_mode)7), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "clock mode 7 is none of HL_CLOCK_REAL, _FROZEN, _OFF");
    CHECK_INT(hl_config_set_clock(NULL, HL_CLOCK_OFF), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_config_set_clock(cfg, HL_CLOCK_OFF), HL_OK);
    CHECK_STR(hl_config_error(cfg), "");
    hl_config_free(cfg);
}

int main(void)
{
    test_config();
    test_real();
    test_frozen();
    test_off();
    test_entropy();
    test_confined();
    test_cli();
    return check_exit("test_clock");
}

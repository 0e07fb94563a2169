/* test_cancel.c - cancellation on real KVM: interrupts from other threads, time limits,
 * host functions in progress, a vCPU faulting forever inside KVM_RUN, and a stress test. */
#include <pthread.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "interrupt.h"


static uint64_t count(hl_sandbox *sb)
{
    hl_value r;
    return hl_call(sb, "Count", HL_U64, NULL, 0, &r) == HL_OK ? r.v.u64 : UINT64_MAX;
}

/* ---- stress: many sandboxes, random interrupts ---- */
#define NSTRESS 50
struct worker {
    hl_sandbox *sb;
    hl_snapshot *snap;
    unsigned seed;
    uint64_t sent; /* interrupts sent to sb (written by the controller) */
    int false_cancels, forever_stopped, forever_calls, short_ok, short_cancelled, other;
};
static struct worker workers[NSTRESS];
static volatile int stress_done;

static void *worker_main(void *p)
{
    struct worker *w = p;
    for (int i = 0; i < 12; i++) {
        int forever = rand_r(&w->seed) % 3 == 0;
        hl_value a = hl_u64((uint64_t)(rand_r(&w->seed) % 200000)), r;
        uint64_t before = __atomic_load_n(&w->sent, __ATOMIC_SEQ_CST);
        hl_status st =
            forever ? hl_call(w->sb, "Spin", HL_VOID, NULL, 0, &r) : hl_call(w->sb, "SpinFor", HL_U64, &a, 1, &r);
        uint64_t after = __atomic_load_n(&w->sent, __ATOMIC_SEQ_CST);
        if (st == HL_ERR_CANCELLED && before == after) w->false_cancels++;
        if (forever) {
            w->forever_calls++;
            if (st == HL_ERR_CANCELLED) w->forever_stopped++;
            else if (w->other++ < 2)
                fprintf(stderr, "endless call: %s: %s\n", hl_status_name(st), hl_last_error(w->sb));
        } else if (st == HL_OK && r.v.u64 == a.v.u64) {
            w->short_ok++;
        } else if (st == HL_ERR_CANCELLED) {
            w->short_cancelled++;
        } else {
            if (w->other++ < 2) fprintf(stderr, "unexpected: %s: %s\n", hl_status_name(st), hl_last_error(w->sb));
        }
        if (st != HL_OK && hl_sandbox_restore(w->sb, w->snap) != HL_OK) {
            if (w->other++ < 2) fprintf(stderr, "restore: %s\n", hl_last_error(w->sb));
        }
    }
    return NULL;
}

static void *controller(void *p)
{
    unsigned seed = 12345;
    while (!stress_done) {
        struct worker *w = &workers[rand_r(&seed) % NSTRESS];
        __atomic_add_fetch(&w->sent, 1, __ATOMIC_SEQ_CST); /* counted before it is sent */
        hl_sandbox_interrupt(w->sb);
        usleep(200);
    }
    return NULL;
}

/* ---- the guest's initialisation has a time limit, by default too ---- */
static void test_init_timeout(void)
{
    const char *guest = guest_path("init_modes_guest");
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb = (hl_sandbox *)&sb;
    char want[1024];
    double t0, took;
    hl_value r;

    CHECK_INT(HL_INIT_TIMEOUT_DEFAULT, 10000);
    CHECK_INT(hl_config_init_timeout(cfg), HL_INIT_TIMEOUT_DEFAULT);
    CHECK_INT(hl_config_init_timeout(NULL), 0);
    CHECK_INT(hl_config_set_init_timeout(NULL, 5), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_config_set_timeout(NULL, 5), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_sandbox_set_timeout(NULL, 5), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_config_set_init_data(cfg, "spin", 4), HL_OK);

    /* a configured limit; the call limit does not apply to initialisation */
    CHECK_INT(hl_config_set_init_timeout(cfg, 50), HL_OK);
    CHECK_INT(hl_config_set_timeout(cfg, 1), HL_OK);
    CHECK_INT(hl_config_init_timeout(cfg), 50);
    t0 = test_now_ms();
    CHECK_INT(hl_sandbox_new_from_file(&sb, guest, cfg), HL_ERR_CANCELLED);
    took = test_now_ms() - t0;
    CHECK(sb == NULL);
    CHECK(took >= 50 && took < 5000);
    snprintf(want, sizeof want, "%s: guest initialisation failed: guest initialisation timed out after 50 ms", guest);
    CHECK_STR(hl_last_error(NULL), want);
    /* confined: the initialisation runs on the worker, under the same limit */
    CHECK_INT(hl_config_set_confinement(cfg, true), HL_OK);
    sb = (hl_sandbox *)&sb;
    CHECK_INT(hl_sandbox_new_from_file(&sb, guest, cfg), HL_ERR_CANCELLED);
    CHECK(sb == NULL);
    CHECK_STR(hl_last_error(NULL), want);
    hl_config_free(cfg);

    /* none configured: the default limit */
    cfg = hl_config_new();
    CHECK_INT(hl_config_set_init_data(cfg, "spin", 4), HL_OK);
    sb = (hl_sandbox *)&sb;
    t0 = test_now_ms();
    CHECK_INT(hl_sandbox_new_from_file(&sb, guest, cfg), HL_ERR_CANCELLED);
    took = test_now_ms() - t0;
    CHECK(sb == NULL);
    CHECK(took >= HL_INIT_TIMEOUT_DEFAULT && took < HL_INIT_TIMEOUT_DEFAULT + 5000);
    printf("     spinning initialisation, default limit: creation failed after %.0f ms\n", took);
    snprintf(want, sizeof want, "%s: guest initialisation failed: guest initialisation timed out after 10000 ms", guest);
    CHECK_STR(hl_last_error(NULL), want);
    hl_config_free(cfg);

    /* a guest that finishes its initialisation is unaffected; its calls have the call limit */
    cfg = hl_config_new();
    hl_config_set_init_timeout(cfg, 50);
    sb = must_sandbox("init_modes_guest", cfg);
    CHECK_INT(hl_call(sb, "Ok", HL_I32, NULL, 0, &r), HL_OK);
    CHECK_INT(r.v.i32, 1);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

int main(void)
{
    test_init_timeout();
    hl_config *cfg = hl_config_new();
    hl_config_register_host_fn(cfg, "Noop", HL_I32, NULL, 0, host_noop, NULL);
    hl_config_register_host_fn(cfg, "Slow", HL_I32, NULL, 0, host_slow, NULL);
    hl_sandbox *sb = must_sandbox("cancel_guest", cfg);
    hl_snapshot *snap;
    hl_value r;
    double lat;
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);

    /* an interrupt when nothing runs does nothing, now or for the next call */
    hl_sandbox_interrupt(sb);
    hl_sandbox_interrupt(sb);
    CHECK_INT(count(sb), 1);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);

    /* a guest spinning without exits */
    CHECK_INT(call_interrupted(sb, "Spin", HL_VOID, 50, &lat), HL_ERR_CANCELLED);
    CHECK_STR(hl_last_error(sb), "call to guest function 'Spin' was interrupted (hl_sandbox_interrupt)");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    CHECK(lat < 100);
    printf("     interrupt latency, spinning guest: %.3f ms\n", lat);
    CHECK_INT(hl_call(sb, "Count", HL_U64, NULL, 0, &r), HL_ERR_STATE);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_INT(count(sb), 1);
    CHECK_INT(count(sb), 2);

    /* a guest calling the host in a tight loop */
    CHECK_INT(call_interrupted(sb, "HostLoop", HL_VOID, 50, &lat), HL_ERR_CANCELLED);
    CHECK_STR(hl_last_error(sb), "call to guest function 'HostLoop' was interrupted (hl_sandbox_interrupt)");
    CHECK(lat < 100);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);

    /* a host function in progress sees the cancellation; the call ends when it returns */
    slow_saw_cancel = 0;
    CHECK_INT(call_interrupted(sb, "CallSlow", HL_I32, 50, &lat), HL_ERR_CANCELLED);
    CHECK_INT(slow_saw_cancel, 1);
    CHECK(lat < 100);
    printf("     interrupt latency, inside a host function: %.3f ms\n", lat);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);

    /* a vCPU that faults forever inside KVM_RUN (page tables without U on kvm_pvm) */
    CHECK_INT(call_interrupted(sb, "FaultForever", HL_VOID, 100, &lat), HL_ERR_CANCELLED);
    CHECK(lat < 200);
    printf("     interrupt latency, vCPU faulting inside KVM_RUN: %.3f ms\n", lat);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_INT(count(sb), 1);

    /* time limits: per sandbox, then from the configuration */
    CHECK_INT(hl_sandbox_set_timeout(sb, 100), HL_OK);
    double t0 = test_now_ms();
    CHECK_INT(hl_call(sb, "Spin", HL_VOID, NULL, 0, &r), HL_ERR_CANCELLED);
    double took = test_now_ms() - t0;
    CHECK_STR(hl_last_error(sb), "call to guest function 'Spin' timed out after 100 ms");
    CHECK(took >= 99 && took < 400);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    hl_value a = hl_u64(1000);
    CHECK_INT(hl_call(sb, "SpinFor", HL_U64, &a, 1, &r), HL_OK); /* a short call within the limit */
    usleep(150 * 1000);                                          /* the disarmed timer stays quiet */
    CHECK_INT(count(sb), 1);
    hl_sandbox_set_timeout(sb, 0);

    hl_config *tcfg = hl_config_new();
    hl_config_register_host_fn(tcfg, "Noop", HL_I32, NULL, 0, host_noop, NULL);
    hl_config_register_host_fn(tcfg, "Slow", HL_I32, NULL, 0, host_slow, NULL);
    hl_config_set_timeout(tcfg, 50);
    hl_sandbox *tsb = must_sandbox("cancel_guest", tcfg);
    CHECK_INT(hl_call(tsb, "FaultForever", HL_VOID, NULL, 0, &r), HL_ERR_CANCELLED);
    CHECK_STR(hl_last_error(tsb), "call to guest function 'FaultForever' timed out after 50 ms");
    hl_sandbox_free(tsb);
    hl_sandbox *fsb;
    CHECK_INT(hl_sandbox_new_from_snapshot(&fsb, snap, tcfg), HL_OK);
    CHECK_INT(hl_call(fsb, "HostLoop", HL_VOID, NULL, 0, &r), HL_ERR_CANCELLED);
    CHECK_STR(hl_last_error(fsb), "call to guest function 'HostLoop' timed out after 50 ms");
    hl_sandbox_free(fsb);

    /* limits per call: host calls, and bytes printed or logged */
    hl_config *lcfg = hl_config_new();
    hl_config_register_host_fn(lcfg, "Noop", HL_I32, NULL, 0, host_noop, NULL);
    hl_config_set_print(lcfg, NULL, NULL);
    CHECK_INT(hl_config_set_limits(lcfg, 0, 1), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(lcfg), "limits must be at least 1");
    CHECK_INT(hl_config_set_limits(lcfg, 100, 1u << 20), HL_OK);
    hl_sandbox *lsb = must_sandbox("cancel_guest", lcfg);
    hl_snapshot *lsnap;
    CHECK_INT(hl_snapshot_take(lsb, &lsnap), HL_OK);
    CHECK_INT(hl_call(lsb, "HostLoop", HL_VOID, NULL, 0, &r), HL_ERR_CANCELLED);
    CHECK_STR(hl_last_error(lsb),
              "call to guest function 'HostLoop' stopped: it made more than the limit of 100 host calls");
    CHECK_INT(hl_sandbox_state(lsb), HL_STATE_POISONED);
    CHECK_INT(hl_sandbox_restore(lsb, lsnap), HL_OK);
    CHECK_INT(hl_call(lsb, "PrintForever", HL_VOID, NULL, 0, &r), HL_ERR_CANCELLED);
    CHECK_STR(hl_last_error(lsb), "guest call stopped: it printed and logged more than the limit of 1048576 bytes");
    CHECK_INT(hl_sandbox_restore(lsb, lsnap), HL_OK);
    CHECK_INT(hl_call(lsb, "LogForever", HL_VOID, NULL, 0, &r), HL_ERR_CANCELLED);
    CHECK_STR(hl_last_error(lsb), "guest call stopped: it printed and logged more than the limit of 1048576 bytes");
    CHECK_INT(hl_sandbox_restore(lsb, lsnap), HL_OK);
    CHECK_INT(count(lsb), 1);
    hl_snapshot_free(lsnap);
    hl_sandbox_free(lsb);
    hl_config_free(lcfg);

    /* the CLI's --timeout */
    {
        char cmd[1024], out[512] = "";
        const char *b = getenv("HL_BUILD") ? getenv("HL_BUILD") : "build";
        snprintf(cmd, sizeof cmd, "%s/bin/hyperlight call --timeout 100 %s Spin 2>&1", b, guest_path("cancel_guest"));
        FILE *p = popen(cmd, "r");
        size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
        out[n] = 0;
        int status = p ? pclose(p) : -1;
        CHECK_INT(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 1);
        CHECK_STR(out, "hyperlight: call to guest function 'Spin' timed out after 100 ms\n");
        snprintf(cmd, sizeof cmd, "%s/bin/hyperlight call --timeout 0 %s Spin 2>/dev/null", b,
                 guest_path("cancel_guest"));
        status = system(cmd);
        CHECK_INT(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 2);
    }

    /* stress: 50 sandboxes on 50 threads, random interrupts, restore after each cancel */
    pthread_t th[NSTRESS], ctl;
    for (int i = 0; i < NSTRESS; i++) {
        workers[i].seed = (unsigned)i * 7919u + 1;
        workers[i].snap = snap;
        CHECK_INT(hl_sandbox_new_from_snapshot(&workers[i].sb, snap, cfg), HL_OK);
    }
    pthread_create(&ctl, NULL, controller, NULL);
    for (int i = 0; i < NSTRESS; i++) pthread_create(&th[i], NULL, worker_main, &workers[i]);
    for (int i = 0; i < NSTRESS; i++) pthread_join(th[i], NULL);
    stress_done = 1;
    pthread_join(ctl, NULL);
    int falses = 0, fc = 0, fs = 0, ok = 0, sc = 0, other = 0;
    for (int i = 0; i < NSTRESS; i++) {
        falses += workers[i].false_cancels;
        fc += workers[i].forever_calls;
        fs += workers[i].forever_stopped;
        ok += workers[i].short_ok;
        sc += workers[i].short_cancelled;
        other += workers[i].other;
        CHECK_INT(count(workers[i].sb) >= 1, 1); /* every sandbox still works */
        hl_sandbox_free(workers[i].sb);
    }
    printf("     stress: %d endless calls all stopped: %d; short calls ok %d, cancelled %d\n", fc, fs, ok, sc);
    CHECK_INT(falses, 0);
    CHECK_INT(fs, fc);
    CHECK_INT(other, 0);

    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    hl_config_free(tcfg);
    return check_exit("cancel");
}

/* pool.c - pools of ready sandboxes made from one snapshot.
 *
 * Creating a KVM VM and vCPU costs ~0.5 ms on our machines, against ~30 µs for a call, so a
 * pool creates sandboxes ahead of need: a background thread keeps `size` of them ready, and
 * hl_pool_get only takes one off a list. hl_pool_put restores a sandbox to the pool's
 * snapshot (cost: the pages it dirtied; no register ioctl on kvm_pvm) and puts it back. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "sandbox.h"
#include "snapshot.h"

struct hl_pool {
    pthread_mutex_t mu;
    pthread_cond_t want; /* the filler waits on it for work */
    hl_snapshot *snap;
    hl_config *cfg; /* a copy: host functions, print/log, timeout */
    int target;     /* sandboxes to keep ready */
    int n;          /* ready now */
    hl_sandbox **ready;
    bool stop, has_thread, failed;
    pthread_t filler;
};

/* A new VM's first call faults in every page it touches (~15 on kvm_pvm at ~20 µs each) and
 * its first restores re-learn which pages stay writable. Two calls of the SDK's hl.warm and
 * restores do that here, in the background, so the sandbox handed out runs its first real
 * call at the speed of any later one. Its state is exactly the snapshot's afterwards. */
static hl_status warm_up(hl_pool *pool, hl_sandbox *sb)
{
    for (int i = 0; i < 2; i++) {
        hl_value r;
        hl_status st = hl_call(sb, HL_WARM_FN, HL_VOID, NULL, 0, &r);
        if (st == HL_ERR_NOT_FOUND) return HL_OK; /* a guest without it: nothing to warm */
        if (st != HL_OK || (st = hl_sandbox_restore(sb, pool->snap)) != HL_OK) return st;
    }
    return HL_OK;
}

/* Makes one warm sandbox and adds it if there is room; false once creation failed. */
static bool add_one(hl_pool *pool)
{
    hl_sandbox *sb = NULL;
    hl_status st;
    pthread_mutex_unlock(&pool->mu);
    st = hl_sandbox_new_from_snapshot(&sb, pool->snap, pool->cfg);
    if (st == HL_OK && (st = warm_up(pool, sb)) != HL_OK) {
        hl_sandbox_free(sb);
        sb = NULL;
    }
    pthread_mutex_lock(&pool->mu);
    if (st != HL_OK) return false;
    if (pool->n < pool->target && !pool->stop) {
        pool->ready[pool->n++] = sb;
        sb = NULL;
    }
    pthread_mutex_unlock(&pool->mu);
    hl_sandbox_free(sb); /* no room after all: NULL is a no-op */
    pthread_mutex_lock(&pool->mu);
    return true;
}

static void *fill(void *p)
{
    hl_pool *pool = p;
    pthread_mutex_lock(&pool->mu);
    while (!pool->stop) {
        /* Refill to the target once half of it is gone (at start: all of it). */
        if (pool->failed || pool->n > pool->target / 2 || pool->n == pool->target) {
            pthread_cond_wait(&pool->want, &pool->mu);
            continue;
        }
        /* A sandbox taken out often comes back at once (get, call, put): give it 2 ms before
         * building a replacement that its return would then leave no room for. */
        {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 2000000;
            if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&pool->want, &pool->mu, &until);
            if (pool->n > pool->target / 2 || pool->stop) continue;
        }
        while (pool->n < pool->target && !pool->stop)
            if (!add_one(pool)) {
                /* stop filling: hl_pool_get then creates on demand and reports the error */
                pool->failed = true;
                break;
            }
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

hl_status hl_pool_new(hl_pool **out, hl_snapshot *snap, const hl_config *cfg, int size, bool background)
{
    hl_pool *pool;
    if (!out || !snap || !cfg || size < 0 || size > 4096)
        return hl_thread_fail(HL_ERR_INVALID_ARG,
                              "hl_pool_new: out, snap and cfg are required and size must be 0..4096");
    *out = NULL;
    if (!(pool = calloc(1, sizeof *pool))) return hl_thread_fail(HL_ERR_NO_MEMORY, "out of memory");
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->want, NULL);
    pool->target = size;
    pool->ready = calloc(size ? (size_t)size : 1, sizeof *pool->ready);
    pool->cfg = hl_config_clone(cfg);
    hl_snapshot_ref(snap);
    pool->snap = snap;
    if (!pool->ready || !pool->cfg) {
        hl_pool_free(pool);
        return hl_thread_fail(HL_ERR_NO_MEMORY, "out of memory");
    }
    if (background) {
        int e = pthread_create(&pool->filler, NULL, fill, pool);
        if (e) {
            hl_pool_free(pool);
            return hl_thread_fail(HL_ERR_SYSTEM, "cannot start the pool's filler thread");
        }
        pool->has_thread = true;
    } else {
        while (pool->n < size) {
            hl_sandbox *sb;
            hl_status st = hl_sandbox_new_from_snapshot(&sb, snap, pool->cfg);
            if (st == HL_OK && (st = warm_up(pool, sb)) != HL_OK) {
                hl_sandbox_free(sb);
                hl_thread_fail(st, "warming up a pooled sandbox failed");
            }
            if (st != HL_OK) {
                hl_pool_free(pool); /* keeps the thread's error */
                return st;
            }
            pool->ready[pool->n++] = sb;
        }
    }
    *out = pool;
    return HL_OK;
}

hl_status hl_pool_get(hl_pool *pool, hl_sandbox **out)
{
    hl_sandbox *sb = NULL;
    if (!pool || !out) return hl_thread_fail(HL_ERR_INVALID_ARG, "hl_pool_get: pool and out are required");
    pthread_mutex_lock(&pool->mu);
    if (pool->n > 0) sb = pool->ready[--pool->n];
    pthread_cond_signal(&pool->want);
    pthread_mutex_unlock(&pool->mu);
    if (sb) {
        *out = sb;
        return HL_OK;
    }
    return hl_sandbox_new_from_snapshot(out, pool->snap, pool->cfg); /* empty: on demand */
}

hl_status hl_pool_put(hl_pool *pool, hl_sandbox *sb)
{
    hl_status st;
    if (!pool || !sb) return HL_ERR_INVALID_ARG;
    /* Back to snap before anyone else can see it (the next user may be someone else): the
     * same restore as hl_sandbox_restore, which test_privileged checks against every
     * register, MSR and page-table change a hostile guest can make. */
    if ((st = hl_sandbox_restore(sb, pool->snap)) != HL_OK) {
        hl_thread_take(sb); /* hl_last_error(NULL) says why */
        hl_sandbox_free(sb);
        return st;
    }
    pthread_mutex_lock(&pool->mu);
    if (pool->n < pool->target) {
        pool->ready[pool->n++] = sb;
        sb = NULL;
    }
    pthread_mutex_unlock(&pool->mu);
    hl_sandbox_free(sb); /* the pool is full: a NULL sb is a no-op */
    return HL_OK;
}

int hl_pool_ready(hl_pool *pool)
{
    int n;
    if (!pool) return 0;
    pthread_mutex_lock(&pool->mu);
    n = pool->n;
    pthread_mutex_unlock(&pool->mu);
    return n;
}

void hl_pool_free(hl_pool *pool)
{
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    pool->stop = true;
    pthread_cond_broadcast(&pool->want);
    pthread_mutex_unlock(&pool->mu);
    if (pool->has_thread) pthread_join(pool->filler, NULL);
    for (int i = 0; i < pool->n; i++) hl_sandbox_free(pool->ready[i]);
    free(pool->ready);
    hl_snapshot_free(pool->snap);
    if (pool->cfg) hl_config_free(pool->cfg);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->want);
    free(pool);
}

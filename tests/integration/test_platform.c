/* test_platform.c - what differs between kvm_pvm and hardware KVM, and must come out the same
 * (docs/platforms.md): a guest that rewrites its page tables through page tables of its own
 * never passes the change to the next user of the sandbox (restore, snapshot, pool); an I/O or
 * MMIO instruction KVM still holds pending when a call fails is completed before the vCPU is
 * reset, so the next call works; a snapshot taken after a call resumes where the guest waits;
 * a triple fault is described truthfully on each platform. Guest: tests/guests/priv_guest.c. */
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "internal.h" /* hl_sandbox_pt_repairs */

#define PAGE_A 0xaaaaaaaaaaaaaaaaull
#define PAGE_B 0xbbbbbbbbbbbbbbbbull

static hl_config *cfg;
static hl_snapshot *snap;

static hl_status call2(hl_sandbox *sb, const char *fn, uint64_t a, uint64_t b, uint64_t *out)
{
    hl_value args[2] = { hl_u64(a), hl_u64(b) }, r;
    hl_status st = hl_call(sb, fn, HL_U64, args, 2, &r);
    *out = st == HL_OK ? r.v.u64 : 0;
    return st;
}

static uint64_t page_a(hl_sandbox *sb)
{
    uint64_t v = 0;
    CHECK_INT(call2(sb, "ReadPageA", 0, 0, &v), HL_OK);
    return v;
}

static void ping(hl_sandbox *sb)
{
    hl_value a = hl_i32(41), r;
    CHECK_INT(hl_call(sb, "Ping", HL_I32, &a, 1, &r), HL_OK);
    CHECK_INT(r.v.i32, 42);
}

/* The guest points page_a's page-table entry at page_b; it sees the change itself. */
static void tamper(hl_sandbox *sb)
{
    uint64_t v = 0;
    CHECK_INT(call2(sb, "PtRemap", 0, 0, &v), HL_OK);
    CHECK_INT(v, PAGE_B);
    CHECK_INT(page_a(sb), PAGE_B);
}

/* A pool of one: the first user does first(), then the next user (the same sandbox,
 * restored by hl_pool_put) must pass next(). */
static void pool_two_users(void (*first)(hl_sandbox *), void (*next)(hl_sandbox *))
{
    hl_pool *pool = NULL;
    hl_sandbox *p = NULL;
    CHECK_INT(hl_pool_new(&pool, snap, cfg, 1, false), HL_OK);
    if (!pool) return;
    for (int user = 0; user < 2; user++, p = NULL) {
        CHECK_INT(hl_pool_get(pool, &p), HL_OK);
        if (!p) continue;
        (user ? next : first)(p);
        CHECK_INT(hl_pool_put(pool, p), HL_OK);
    }
    hl_pool_free(pool);
}

static void page_a_clean(hl_sandbox *sb) { CHECK_INT(page_a(sb), PAGE_A); }

static void in_port(hl_sandbox *sb)
{
    uint64_t v;
    CHECK_INT(call2(sb, "PortIn", 0x10, 0, &v), HL_ERR_PROTOCOL);
}

static void page_tables(void)
{
    hl_sandbox *sb = NULL, *sb2 = NULL;
    hl_snapshot *s2 = NULL;
    uint64_t repairs;

    /* restore puts the page tables back, and KVM forgets the translations made from them */
    CHECK_INT(hl_sandbox_new_from_snapshot(&sb, snap, cfg), HL_OK);
    CHECK_INT(page_a(sb), PAGE_A);
    CHECK_INT(hl_sandbox_pt_repairs(sb), 0);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK); /* nothing to repair: a walk that only read */
    CHECK_INT(hl_sandbox_pt_repairs(sb), 0);
    tamper(sb);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_INT(hl_sandbox_pt_repairs(sb), 1);
    CHECK_INT(page_a(sb), PAGE_A);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_INT(hl_sandbox_pt_repairs(sb), 1);
    CHECK_INT(page_a(sb), PAGE_A);

    /* a snapshot never records them: take puts them back before it reads anything */
    tamper(sb);
    repairs = hl_sandbox_pt_repairs(sb);
    CHECK_INT(hl_snapshot_take(sb, &s2), HL_OK);
    CHECK_INT(hl_sandbox_pt_repairs(sb), repairs + 1);
    CHECK_INT(page_a(sb), PAGE_A);
    if (s2) {
        CHECK_INT(hl_sandbox_new_from_snapshot(&sb2, s2, cfg), HL_OK);
        if (sb2) CHECK_INT(page_a(sb2), PAGE_A);
        hl_sandbox_free(sb2);
        hl_snapshot_free(s2);
    }
    /* after a failed call too (the restore of a Poisoned sandbox) */
    tamper(sb);
    CHECK_INT(call2(sb, "PortIn", 0x10, 0, &repairs), HL_ERR_PROTOCOL);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_INT(page_a(sb), PAGE_A);
    hl_sandbox_free(sb);

    /* through a pool: the next user gets the snapshot's tables */
    pool_two_users(tamper, page_a_clean);
}

/* A call that ends at an instruction KVM has not completed (an IN waits for its data, an
 * MMIO read for its value): the next user must find the vCPU at the snapshot's state. */
static void pending_io(void)
{
    hl_sandbox *sb = NULL;
    uint64_t v;
    CHECK_INT(hl_sandbox_new_from_snapshot(&sb, snap, cfg), HL_OK);
    if (!sb) return;
    for (int round = 0; round < 3; round++) {
        CHECK_INT(call2(sb, "PortIn", 0x10, 0, &v), HL_ERR_PROTOCOL);
        CHECK_HAS(hl_last_error(sb), "guest read from I/O port 0x10 (rip 0x");
        CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
        CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
        ping(sb);
        CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
        /* an MMIO read: GPA 4 GiB has no memory (through the guest's own page tables) */
        CHECK_INT(call2(sb, "Cr3Mmio", 0, 0, &v), HL_ERR_FAULT);
        CHECK_HAS(hl_last_error(sb),
                  "guest fault: read of unmapped or read-only guest-physical address 0x100000000, rip 0x");
        CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
        ping(sb);
        CHECK_INT(page_a(sb), PAGE_A);
        CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    }
    hl_sandbox_free(sb);

    pool_two_users(in_port, ping); /* the next user's first call works */
}

/* Snapshots taken right after a call (the guest waits after its DONE exit, which hardware KVM
 * completes only at the next KVM_RUN) start new sandboxes, files and pools that work. */
static void snapshot_after_call(void)
{
    hl_sandbox *sb = NULL, *sb2 = NULL;
    hl_snapshot *s2 = NULL, *s3 = NULL;
    char path[] = "/tmp/hl_platform_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    CHECK_INT(hl_sandbox_new_from_snapshot(&sb, snap, cfg), HL_OK);
    if (!sb) return;
    ping(sb);
    CHECK_INT(hl_snapshot_take(sb, &s2), HL_OK);
    ping(sb); /* the sandbox itself goes on */
    if (s2) {
        for (int i = 0; i < 3; i++) {
            CHECK_INT(hl_sandbox_new_from_snapshot(&sb2, s2, cfg), HL_OK);
            if (sb2) ping(sb2), ping(sb2);
            hl_sandbox_free(sb2);
            sb2 = NULL;
        }
        CHECK_INT(hl_snapshot_save(s2, path), HL_OK);
        CHECK_INT(hl_snapshot_load(&s3, path), HL_OK);
        if (s3) {
            CHECK_INT(hl_sandbox_new_from_snapshot(&sb2, s3, cfg), HL_OK);
            if (sb2) ping(sb2);
            hl_sandbox_free(sb2);
            hl_snapshot_free(s3);
        }
        CHECK_INT(hl_sandbox_restore(sb, s2), HL_OK);
        ping(sb);
        hl_snapshot_free(s2);
    }
    unlink(path);
    hl_sandbox_free(sb);
}

/* A triple fault: the guest's IDT is garbage, so its int3 cannot be delivered. kvm_pvm keeps
 * the registers (every exception ends this way there); hardware KVM's AMD code resets the
 * vCPU, and the message must say the registers are lost rather than show the reset state. */
static void triple_fault(void)
{
    hl_sandbox *sb = NULL;
    uint64_t v;
    const char *msg;
    CHECK_INT(hl_sandbox_new_from_snapshot(&sb, snap, cfg), HL_OK);
    if (!sb) return;
    CHECK_INT(call2(sb, "LidtInt3", 0, 0, &v), HL_ERR_FAULT);
    msg = hl_last_error(sb);
    printf("  triple fault: %s\n", msg);
    CHECK(strstr(msg, "rip 0xfff0") == NULL);
    if (test_on_pvm()) {
        CHECK_HAS(msg, "guest fault: breakpoint (int3) at rip 0x");
    } else if (access("/sys/module/kvm_amd", F_OK) == 0) {
        CHECK_HAS(msg, "guest fault: triple fault (an exception the guest could not handle: its IDT, its exception "
                       "stacks or its page tables were unusable); KVM reset the vCPU, so the registers at the fault "
                       "are lost");
    } else { /* kvm_intel keeps the registers (SDM Vol. 3C §27.2): untested here */
        CHECK_HAS(msg, "guest fault: ");
        CHECK(strstr(msg, "registers at the fault are lost") == NULL);
    }
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    ping(sb);
    hl_sandbox_free(sb);
}

int main(void)
{
    hl_sandbox *base;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("  platform: %s\n", test_on_pvm() ? "kvm_pvm" : "hardware KVM");
    cfg = hl_config_new();
    CHECK(cfg != NULL);
    if (!cfg) return check_exit("test_platform");
    base = must_sandbox("priv_guest", cfg);
    CHECK_INT(hl_snapshot_take(base, &snap), HL_OK);
    hl_sandbox_free(base);
    if (!snap) return check_exit("test_platform");
    page_tables();
    pending_io();
    snapshot_after_call();
    triple_fault();
    hl_snapshot_free(snap);
    hl_config_free(cfg);
    return check_exit("test_platform");
}

/* snapshot.c - snapshots: take, restore, and new sandboxes from a snapshot.
 *
 * KVM's dirty log on the writable memslot tells which guest pages changed since the sandbox
 * last equalled its base snapshot; the host adds the pages it wrote itself (buffers, meta).
 * Taking a snapshot writes just those pages to a new sealed file; restoring copies just
 * those pages back from the snapshot's read-only view and reloads the registers through
 * kvm_run's sync_regs. Neither rewrites page tables or memslots, and neither costs anything
 * in proportion to the size of guest memory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "io.h"
#include "sandbox.h"
#include "snapshot.h"

/* ---- objects ---- */
/* The snapshot of image (img), whose slot-0 checksum is (sum) if (have_sum), else computed. */
static hl_status create(hl_snapshot **out, const hl_layout *lo, hl_image *img, uint64_t sum, bool have_sum, char *err)
{
    hl_snapshot *s = calloc(1, sizeof *s);
    if (!s) {
        hl_image_free(img);
        return hl_errf(err, HL_ERR_NO_MEMORY, "out of memory");
    }
    s->refs = 1;
    s->lo = *lo;
    s->img = *img; /* ownership moves to the snapshot */
    img->n = 0;
    img->ext = NULL;
    s->view = hl_reserve(lo->total);
    if (!s->view) {
        hl_snapshot_free(s);
        return hl_errf(err, HL_ERR_NO_MEMORY, "out of address space for a snapshot view");
    }
    hl_status st = hl_image_map(&s->img, s->view, 0, lo->total / HL_PAGE, PROT_READ, MAP_SHARED, err);
    if (st != HL_OK) {
        hl_snapshot_free(s);
        return st;
    }
    /* What the guest can see of slot 0 (PEB, page tables, image); not the untouched gap
     * between the page tables and the image, whose reading would only allocate pages. */
    s->slot0_sum = have_sum ? sum
                            : hl_checksum(s->view, lo->pt_end) ^
                                  hl_checksum(s->view + HL_IMAGE_BASE, lo->ro_end - HL_IMAGE_BASE) * 31;
    *out = s;
    return HL_OK;
}

hl_status hl_snapshot_from_image(hl_snapshot **out, const hl_layout *lo, hl_image *img, char *err)
{
    return create(out, lo, img, 0, false, err);
}

hl_status hl_snapshot_from_image_sum(hl_snapshot **out, const hl_layout *lo, hl_image *img, uint64_t sum, char *err)
{
    return create(out, lo, img, sum, true, err);
}

void hl_snapshot_ref(hl_snapshot *s) { __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED); }

void hl_snapshot_free(hl_snapshot *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    if (s->view) munmap(s->view, s->lo.total);
    hl_image_free(&s->img);
    hl_files_close(s->files, s->nfiles);
    hl_guestfns_free(s->guestfns, s->nguestfns);
    free(s->hostfns);
    free(s);
}

uint64_t hl_snapshot_generation(const hl_snapshot *s) { return s ? s->generation : 0; }

/* ---- dirty tracking ---- */
static void set_bits(uint64_t *bm, uint64_t first, uint64_t n)
{
    for (uint64_t i = first; i < first + n; i++) bm[i / 64] |= 1ull << (i % 64);
}

/* Makes sb->rw.dirty the set of writable pages KVM saw the guest write since the memory
 * equalled sb->base (with host_pages, also the pages the host wrote itself: see
 * copy_host_writes), and sb->pt.dirty the page-table pages KVM saw written. */
static hl_status collect_dirty(hl_sandbox *sb, bool page_tables, bool host_pages)
{
    hl_track *rw = &sb->rw;
    uint64_t in_first = (sb->lo.input - rw->gpa) / HL_PAGE;
    hl_status st = hl_vm_dirty_log(sb->vm, rw->slot, rw->dirty, rw->tmp, rw->npages, sb->err);
    if (st != HL_OK || (page_tables && (st = hl_vm_dirty_log(sb->vm, sb->pt.slot, sb->pt.dirty, sb->pt.tmp,
                                                             sb->pt.npages, sb->err)) != HL_OK))
        return st;
    if (!host_pages) return HL_OK;
    set_bits(rw->dirty, (sb->lo.meta - rw->gpa) / HL_PAGE, 1);
    set_bits(rw->dirty, (sb->lo.output - rw->gpa) / HL_PAGE, 1);
    set_bits(rw->dirty, in_first, HL_ALIGN_UP(sb->in_max, HL_PAGE) / HL_PAGE);
    return HL_OK;
}

/* Re-arms write tracking of t after its pages were made equal to the base. Pages KVM
 * reported at two restores in a row are written by (nearly) every call: they stay writable
 * and reported, and are copied back at each restore (~0.3 µs a page) instead of faulting on
 * each first write (~3-20 µs a page on kvm_pvm). Every 64th restore re-protects them all,
 * so a page that went cold stops being copied. all: re-protect everything (the memory just
 * changed base). relearn: this is a periodic re-protection. */
static hl_status rearm_track(hl_sandbox *sb, hl_track *t, bool all, bool relearn)
{
    uint64_t words = (t->npages + 63) / 64;
    for (uint64_t w = 0; w < words; w++) {
        uint64_t reported = t->tmp[w];
        t->tmp[w] = all || relearn ? reported : reported & ~t->prev[w];
        /* after a periodic re-protection, a page reported again at the next restore is hot
         * again at once: it faults once, not twice */
        t->prev[w] = all ? 0 : reported;
    }
    memset(t->dirty, 0, words * 8);
    return hl_vm_dirty_clear(sb->vm, t->slot, t->tmp, t->npages, sb->err);
}

/* page_tables: the page tables' dirty log was read too (collect_dirty) */
static hl_status rearm_tracking(hl_sandbox *sb, bool all, bool page_tables)
{
    bool relearn;
    hl_status st;
    if (!hl_vm_manual_dirty(sb->vm)) {
        memset(sb->rw.dirty, 0, (sb->rw.npages + 63) / 64 * 8);
        memset(sb->pt.dirty, 0, (sb->pt.npages + 63) / 64 * 8);
        return HL_OK;
    }
    relearn = ++sb->restores % 64 == 0;
    if ((st = rearm_track(sb, &sb->rw, all, relearn)) != HL_OK) return st;
    return page_tables ? rearm_track(sb, &sb->pt, all, relearn) : HL_OK;
}

/* kvm_pvm emulates every privileged instruction a guest runs and counts it (the vCPU's
 * insn_emulation statistic), and the `out` of each exit counts one. When the count grew by
 * exactly the exits since the debug registers and page tables were last known to be the
 * snapshot's (sb->emul_mark), the guest ran nothing privileged since: it cannot have
 * written a debug register (mov to DRn) or reached its page tables (that takes a CR3 of its
 * own), and a restore can skip resetting the one and checking the other, a vCPU ioctl and a
 * dirty-log read (~6 µs of a ~9 µs restore there). Anything else (hardware KVM, where such
 * instructions need not go through KVM's emulator; an unknown count) means "maybe". */
static bool ran_privileged(hl_sandbox *sb, int64_t *now)
{
    *now = hl_vm_is_pvm(sb->vm) ? hl_vm_emulations(sb->vm) : -1;
    return *now < 0 || sb->emul_mark < 0 || *now < sb->emul_mark ||
           (uint64_t)(*now - sb->emul_mark) != sb->exits - sb->exits_mark;
}

/* The debug registers and page tables are the snapshot's now; `now` is the count then (the
 * restore runs no guest instruction, so the one read before it serves). */
static void mark_clean(hl_sandbox *sb, int64_t now)
{
    sb->emul_mark = now;
    sb->exits_mark = sb->exits;
}

/* The page tables are the host's and never change, but a guest at CPL0 can load its own
 * CR3 and write them through a mapping of its own. KVM's dirty log names every page-table
 * page written since the last check; on hardware with nested paging it also names every
 * page the CPU's walker read (a walk counts as a write, abi.h), so each is compared with
 * ref's copy. A page that really changed is put back, and the memslot is re-registered so
 * that KVM drops every translation made from the guest's version (kvm_pvm's shadow page
 * tables would not notice the host's write; a hardware TLB could still hold them). */
static hl_status check_page_tables(hl_sandbox *sb, const hl_snapshot *ref)
{
    hl_track *t = &sb->pt;
    uint64_t changed = 0;
    hl_status st;
    for (uint64_t p = 0; p < t->npages; p++) {
        uint8_t *page;
        if (!(t->dirty[p / 64] >> (p % 64) & 1)) continue;
        page = sb->mem + t->gpa + p * HL_PAGE;
        if (memcmp(page, ref->view + t->gpa + p * HL_PAGE, HL_PAGE) != 0) {
            memcpy(page, ref->view + t->gpa + p * HL_PAGE, HL_PAGE);
            changed++;
        }
    }
    if (!changed) return HL_OK;
    sb->pt_repairs++;
    if ((st = hl_vm_slot_reset(sb->vm, t->slot, sb->err)) != HL_OK) return st;
    /* a new slot starts with every page write-protected and nothing logged */
    memset(t->tmp, 0, (t->npages + 63) / 64 * 8);
    memset(t->prev, 0, (t->npages + 63) / 64 * 8);
    return HL_OK;
}

/* Calls fn for each run [first, first + n) of set bits in bm (npages bits). */
static hl_status for_runs(const uint64_t *bm, uint64_t npages, hl_status (*fn)(void *ctx, uint64_t first, uint64_t n),
                          void *ctx)
{
    uint64_t p = 0;
    while (p < npages) {
        uint64_t w = bm[p / 64] >> (p % 64);
        if (!w) {
            p = (p / 64 + 1) * 64;
            continue;
        }
        p += (uint64_t)__builtin_ctzll(w);
        if (p >= npages) break;
        uint64_t q = p + 1;
        while (q < npages && (bm[q / 64] >> (q % 64) & 1)) q++;
        hl_status st = fn(ctx, p, q - p);
        if (st != HL_OK) return st;
        p = q;
    }
    return HL_OK;
}

/* ---- take ---- */
struct take_ctx {
    hl_sandbox *sb;
    int fd;
};
static hl_status write_run(void *c, uint64_t first, uint64_t n)
{
    struct take_ctx *t = c;
    const uint8_t *src = t->sb->slot1 + first * HL_PAGE;
    off_t off = (off_t)(t->sb->lo.ro_end + first * HL_PAGE);
    if (hl_pwrite_full(t->fd, src, n * HL_PAGE, off) < 0)
        return hl_fail(t->sb, HL_ERR_SYSTEM, "writing snapshot pages: %s", strerror(errno));
    return HL_OK;
}

/* The pages sb changed since it equalled its base, in a new sealed memfd (*file) that
 * also carries the new generation (gen) in its meta page. */
static hl_status write_dirty_pages(hl_sandbox *sb, uint64_t gen, hl_memfile **file)
{
    struct take_ctx t;
    hl_status st;
    int fd = memfd_create("hyperlight-snapshot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return hl_fail(sb, HL_ERR_SYSTEM, "memfd_create: %s", strerror(errno));
    if (!(*file = hl_memfile_new(fd, 0))) {
        close(fd);
        return hl_fail(sb, HL_ERR_NO_MEMORY, "out of memory");
    }
    if (ftruncate(fd, (off_t)sb->lo.total) < 0)
        return hl_fail(sb, HL_ERR_NO_MEMORY, "sizing snapshot file: %s", strerror(errno));
    t = (struct take_ctx){ sb, fd };
    if ((st = for_runs(sb->rw.dirty, sb->rw.npages, write_run, &t)) != HL_OK) return st;
    /* The snapshot's own meta page carries its generation: a guest restored to it sees it. */
    if (hl_pwrite_full(fd, &gen, 8, (off_t)(sb->lo.meta + offsetof(struct hl_meta, generation))) < 0)
        return hl_fail(sb, HL_ERR_SYSTEM, "writing snapshot meta page: %s", strerror(errno));
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
        return hl_fail(sb, HL_ERR_SYSTEM, "sealing snapshot: %s", strerror(errno));
    return HL_OK;
}

/* The vCPU state s keeps. A vCPU that has not run since a (re)start through hl_resume sits
 * at the trampoline with the real rip on its stack: record the state hl_resume returns to,
 * so that restoring this snapshot later (with the virtual-IF page locked) does not run the
 * trampoline. */
static hl_status capture_cpu(hl_sandbox *sb, hl_snapshot *s)
{
    hl_status st;
    s->has_cpu = true;
    if ((st = hl_vm_cpu_get(sb->vm, &s->cpu, sb->err)) != HL_OK) return st;
    /* x87/SSE as the last call left them are nobody's business: the guest resets them before
     * every call, and a restore does not reload them (a pooled sandbox holds its previous
     * user's until its next call). The snapshot, which may be saved or shared, keeps the
     * reset state. */
    hl_vm_cpu_reset_fpu(&s->cpu);
    if (hl_vm_is_pvm(sb->vm) && !hl_vm_vif_locked(sb->vm)) {
        struct hl_meta meta;
        uint64_t rsp = s->cpu.regs[HL_REG_RSP], rip;
        const uint8_t *slot = hl_gpa_ro(sb, rsp, 8);
        memcpy(&meta, sb->mem + sb->lo.meta, sizeof meta);
        if (slot && s->cpu.regs[HL_REG_RIP] == meta.resume_gva) {
            memcpy(&rip, slot, 8);
            s->cpu.regs[HL_REG_RIP] = rip;
            s->cpu.regs[HL_REG_RSP] = rsp + 8;
        }
    }
    return HL_OK;
}

/* The function tables and the mapped files, copied from sb into s. */
static hl_status copy_tables(hl_sandbox *sb, hl_snapshot *s)
{
    if (hl_guestfns_copy(&s->guestfns, sb->guestfns, sb->nguestfns) != HL_OK)
        return hl_fail(sb, HL_ERR_NO_MEMORY, "out of memory");
    s->nguestfns = sb->nguestfns;
    if (!hl_files_dup(s->files, sb->files, sb->nfiles))
        return hl_fail(sb, HL_ERR_SYSTEM, "duplicating mapped file descriptors: %s", strerror(errno));
    s->nfiles = sb->nfiles;
    if (!sb->nhostfns) return HL_OK;
    if (!(s->hostfns = calloc((size_t)sb->nhostfns, sizeof *s->hostfns)))
        return hl_fail(sb, HL_ERR_NO_MEMORY, "out of memory");
    for (int i = 0; i < sb->nhostfns; i++) {
        s->hostfns[i] = sb->hostfns[i];
        s->hostfns[i].fn = NULL; /* a snapshot records signatures, not callbacks */
        s->hostfns[i].user = NULL;
    }
    s->nhostfns = sb->nhostfns;
    return HL_OK;
}

hl_status hl_snapshot_take(hl_sandbox *sb, hl_snapshot **out)
{
    hl_status st;
    hl_image img = { 0, NULL };
    hl_snapshot *s = NULL;
    hl_memfile *file = NULL;
    uint64_t gen;

    if (!sb || !out) return HL_ERR_INVALID_ARG;
    *out = NULL;
    if (sb->state != HL_STATE_READY)
        return hl_fail(sb, HL_ERR_STATE, "cannot snapshot a %s sandbox",
                       sb->state == HL_STATE_POISONED ? "poisoned" : "unrecoverable");
    /* first: completing the guest's last OUT moves rip past it (hardware KVM), and the
     * snapshot must hold the state the guest continues from */
    if ((st = hl_vm_complete(sb->vm, sb->err)) != HL_OK || (st = collect_dirty(sb, true, true)) != HL_OK ||
        (st = check_page_tables(sb, sb->base)) != HL_OK)
        return st;
    gen = sb->gen_counter + 1;
    if ((st = write_dirty_pages(sb, gen, &file)) != HL_OK) goto fail;
    if ((st = hl_image_derive(&sb->base->img, sb->rw.dirty, sb->lo.ro_end / HL_PAGE, sb->rw.npages, file, &img))) {
        hl_fail(sb, st, "out of memory");
        goto fail;
    }
    if ((st = hl_snapshot_from_image_sum(&s, &sb->lo, &img, sb->base->slot0_sum, sb->err)) != HL_OK) goto fail;
    s->generation = gen;
    if ((st = capture_cpu(sb, s)) != HL_OK || (st = copy_tables(sb, s)) != HL_OK) goto fail;
    hl_memfile_unref(file);
    if ((st = rearm_tracking(sb, true, true)) != HL_OK) {
        hl_snapshot_free(s);
        return st;
    }
    /* sb's memory now equals s exactly: it becomes sb's base. */
    hl_snapshot_ref(s);
    hl_snapshot_free(sb->base);
    sb->base = s;
    sb->gen_counter = gen;
    sb->in_max = HL_BUF_EMPTY;
    *out = s;
    return HL_OK;
fail:
    hl_snapshot_free(s);
    hl_image_free(&img);
    hl_memfile_unref(file);
    return st;
}

/* On kvm_pvm a new vCPU runs natively only after the guest registers its virtual-IF page,
 * which the host cannot do for it. So the vCPU starts at the guest's hl_resume (entry.S) with
 * the snapshot's rip pushed on its stack: hl_resume registers the page and returns to it. */
static hl_status resume_via_trampoline(hl_sandbox *sb, hl_cpu_state *cpu)
{
    struct hl_meta meta;
    const hl_region *code, *stack;
    uint64_t rsp = cpu->regs[HL_REG_RSP] - 8;
    memcpy(&meta, sb->mem + sb->lo.meta, sizeof meta); /* read once */
    code = hl_layout_find(&sb->lo, meta.resume_gva);
    stack = hl_layout_find(&sb->lo, rsp);
    if (!code || !(code->perm & HL_PERM_X) || !stack || stack->kind != HL_RGN_STACK || rsp - stack->gpa < 64 || rsp % 8)
        return hl_fail(sb, HL_ERR_BAD_GUEST,
                       "snapshot cannot be resumed: guest resume address 0x%llx or stack 0x%llx invalid",
                       (unsigned long long)meta.resume_gva, (unsigned long long)rsp);
    memcpy(sb->mem + rsp, &cpu->regs[HL_REG_RIP], 8);
    set_bits(sb->rw.dirty, (rsp - sb->rw.gpa) / HL_PAGE, 1); /* a host write: restore must undo it */
    cpu->regs[HL_REG_RSP] = rsp;
    cpu->regs[HL_REG_RIP] = meta.resume_gva;
    return HL_OK;
}

/* ---- restore ---- */
static const char *incompatible(const hl_layout *a, const hl_layout *b, uint64_t sa, uint64_t sb_sum)
{
    if (a->sizes.heap != b->sizes.heap) return "heap size differs";
    if (a->sizes.scratch != b->sizes.scratch) return "scratch size differs";
    if (a->sizes.input != b->sizes.input) return "input buffer size differs";
    if (a->sizes.output != b->sizes.output) return "output buffer size differs";
    if (a->sizes.init != b->sizes.init) return "init data size differs";
    if (a->sizes.nfiles != b->sizes.nfiles) return "mapped files differ";
    for (int i = 0; i < a->sizes.nfiles; i++)
        if (a->sizes.file_size[i] != b->sizes.file_size[i] || strcmp(a->sizes.file_label[i], b->sizes.file_label[i]))
            return "mapped files differ";
    if (a->ro_end != b->ro_end || a->total != b->total) return "memory layout differs";
    if (sa != sb_sum) return "guest image (code, page tables) differs";
    return NULL;
}

struct copy_ctx {
    hl_sandbox *sb;
    const hl_snapshot *snap;
};
static hl_status copy_run(void *c, uint64_t first, uint64_t n)
{
    struct copy_ctx *k = c;
    memcpy(k->sb->slot1 + first * HL_PAGE, k->snap->view + k->sb->lo.ro_end + first * HL_PAGE, n * HL_PAGE);
    return HL_OK;
}

/* What the host itself wrote into guest memory since it equalled snap, which KVM's dirty log
 * does not see: the input stack up to in_max (calls, host-call results), the output stack's
 * top word, and the start of the meta page: kvm_pvm's virtual-IF block, which kvm_pvm
 * writes from the kernel, and the generation, which take writes into the snapshot's copy
 * only. Copied back byte for byte: a few dozen bytes, not three pages. */
static void copy_host_writes(hl_sandbox *sb, const hl_snapshot *snap)
{
    const struct {
        hl_gpa gpa;
        uint64_t len;
    } w[] = {
        { sb->lo.input, sb->in_max },
        { sb->lo.output, 8 },
        { sb->lo.meta, offsetof(struct hl_meta, generation) + sizeof(uint64_t) },
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) memcpy(sb->mem + w[i].gpa, snap->view + w[i].gpa, w[i].len);
}

/* Makes the memory equal (snap)'s: the pages changed since it equalled the base copied
 * back, or another image mapped; (fast): the guest ran nothing privileged since the page
 * tables were last checked. */
static hl_status restore_memory(hl_sandbox *sb, hl_snapshot *snap, bool fast)
{
    hl_status st;
    if (snap == sb->base) {
        struct copy_ctx k = { sb, snap };
        if ((st = collect_dirty(sb, !fast, false)) != HL_OK || (!fast && (st = check_page_tables(sb, snap)) != HL_OK))
            return st;
        for_runs(sb->rw.dirty, sb->rw.npages, copy_run, &k);
        copy_host_writes(sb, snap);
        return rearm_tracking(sb, false, !fast);
    }
    /* Another image: map it over the old one. KVM sees the change through its MMU
     * notifiers; the dirty log read afterwards only clears stale bits. The page tables are
     * the same in every compatible image (slot0_sum) and are only checked. */
    if ((st = hl_image_map(&snap->img, sb->mem, sb->lo.ro_end / HL_PAGE, sb->rw.npages, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE, sb->err)) != HL_OK ||
        (st = collect_dirty(sb, true, true)) != HL_OK || (st = check_page_tables(sb, snap)) != HL_OK ||
        (st = rearm_tracking(sb, true, true)) != HL_OK)
        return st;
    hl_snapshot_ref(snap);
    hl_snapshot_free(sb->base);
    sb->base = snap;
    return HL_OK;
}

/* Loads (snap)'s vCPU state: a Ready sandbox gets its general, segment and control registers
 * through sync_regs (no ioctl; the guest resets x87/SSE at each call, src/guest/fpu.S, and
 * PKRU where it waits for it), and its debug registers unless (fast); otherwise every
 * register goes through ioctls. */
static hl_status restore_cpu(hl_sandbox *sb, const hl_snapshot *snap, bool fast)
{
    hl_cpu_state cpu = snap->cpu;
    hl_status st;
    if (sb->state == HL_STATE_READY) return hl_vm_regs_sync(sb->vm, &snap->cpu, !fast, sb->err);
    /* A call that was cut short may have been a vCPU's first, stopped before the guest
     * registered its virtual-IF page: on kvm_pvm go through hl_resume again (it is
     * idempotent) rather than lose native mode. A Ready vCPU has registered it. */
    if (hl_vm_is_pvm(sb->vm) && sb->state != HL_STATE_READY &&
        ((st = resume_via_trampoline(sb, &cpu)) != HL_OK || (st = hl_vm_lock_vif(sb->vm, false, sb->err)) != HL_OK))
        return st;
    return hl_vm_cpu_set(sb->vm, &cpu, sb->state != HL_STATE_READY, sb->err);
}

hl_status hl_sandbox_restore(hl_sandbox *sb, hl_snapshot *snap)
{
    const char *why;
    hl_status st;
    bool fast;
    int64_t emul;
    if (!sb) return HL_ERR_INVALID_ARG;
    if (!snap) return hl_fail(sb, HL_ERR_INVALID_ARG, "hl_sandbox_restore: snapshot is NULL");
    if (sb->state == HL_STATE_UNRECOVERABLE)
        return hl_fail(sb, HL_ERR_STATE, "sandbox is unrecoverable: only hl_sandbox_free works");
    if (!snap->has_cpu) return hl_fail(sb, HL_ERR_INVALID_ARG, "snapshot has no vCPU state");
    if ((why = incompatible(&sb->lo, &snap->lo, sb->base->slot0_sum, snap->slot0_sum)))
        return hl_fail(sb, HL_ERR_INVALID_ARG, "snapshot is incompatible with this sandbox: %s", why);

    /* first: a pending instruction's completion could write registers or memory */
    if ((st = hl_vm_complete(sb->vm, sb->err)) != HL_OK) goto fail;
    fast = !ran_privileged(sb, &emul) && sb->state == HL_STATE_READY;
    if ((st = restore_memory(sb, snap, fast)) != HL_OK) goto fail;
    sb->in_max = HL_BUF_EMPTY;
    sb->in_top = HL_BUF_EMPTY;
    if ((st = restore_cpu(sb, snap, fast)) != HL_OK) goto fail;
    hl_clock_write(&sb->clock, (struct hl_meta *)(sb->mem + sb->lo.meta)); /* the restored block is the past's */
    mark_clean(sb, emul);
    sb->gen_counter = snap->generation; /* the next snapshot is one generation past snap */
    sb->state = HL_STATE_READY;
    sb->err[0] = 0;
    sb->err_code = 0;
    return HL_OK;
fail:
    return hl_unrecoverable(sb, hl_errprefix(sb->err, st, "restore failed, sandbox unrecoverable"));
}


/* ---- new sandbox from a snapshot ---- */
/* Checks that cfg registers every host function snap recorded, with the same signature. */
static hl_status check_hostfns(const hl_snapshot *snap, const hl_config *cfg, char *err)
{
    char list[HL_ERR_LEN] = "";
    size_t at = 0;
    int bad = 0;
    for (int i = 0; i < snap->nhostfns; i++) {
        const hl_hostfn *want = &snap->hostfns[i];
        const hl_hostfn *have = hl_hostfn_find(cfg->hostfns, cfg->nhostfns, want->name);
        char sig[300], sig2[300];
        bool same = have && have->ret == want->ret && have->nparams == want->nparams &&
                    memcmp(have->params, want->params, (size_t)want->nparams * sizeof want->params[0]) == 0;
        if (same) continue;
        hl_signature_format(sig, sizeof sig, want->name, want->ret, want->params, want->nparams);
        if (have) hl_signature_format(sig2, sizeof sig2, have->name, have->ret, have->params, have->nparams);
        if (at < sizeof list)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%s (%s%s)", bad ? "; " : "", sig,
                                   have ? "registered as " : "missing", have ? sig2 : "");
        bad++;
    }
    if (!bad) return HL_OK;
    return hl_errf(err, HL_ERR_INVALID_ARG, "configuration lacks %d host function%s the snapshot needs: %s", bad,
                   bad > 1 ? "s" : "", list);
}

hl_status hl_sandbox_new_from_snapshot(hl_sandbox **out, hl_snapshot *snap, const hl_config *cfg)
{
    hl_sandbox *sb;
    hl_status st;
    hl_cpu_state cpu;
    if (!out || !snap || !cfg)
        return hl_thread_fail(HL_ERR_INVALID_ARG, "hl_sandbox_new_from_snapshot: out, snap and cfg are required");
    *out = NULL;
    if (!snap->has_cpu) return hl_thread_fail(HL_ERR_INVALID_ARG, "snapshot has no vCPU state");
    if (!(sb = hl_sandbox_alloc())) return hl_thread_fail(HL_ERR_NO_MEMORY, "out of memory");
    if ((st = check_hostfns(snap, cfg, sb->err)) || (st = hl_sandbox_map(sb, snap)) ||
        (st = hl_sandbox_adopt_config(sb, cfg)))
        return hl_sandbox_finish(out, sb, st);
    if (hl_guestfns_copy(&sb->guestfns, snap->guestfns, snap->nguestfns) != HL_OK)
        return hl_sandbox_finish(out, sb, hl_fail(sb, HL_ERR_NO_MEMORY, "out of memory"));
    sb->nguestfns = snap->nguestfns;
    cpu = snap->cpu;
    if ((hl_kvm_is_pvm() && (st = resume_via_trampoline(sb, &cpu)) != HL_OK) ||
        (st = hl_sandbox_start_vm(sb, snap->files, snap->nfiles, &cpu)) != HL_OK)
        return hl_sandbox_finish(out, sb, st);
    sb->state = HL_STATE_READY;
    return hl_sandbox_finish(out, sb, HL_OK);
}

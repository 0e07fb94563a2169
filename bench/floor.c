/* floor.c - the floor VMs (bare exit, fresh VM, dirty log + copy), built with the library's
 * internal VM layer (hl_vm_*, hl_pt_build): the one benchmark file that includes src/host
 * headers. Also the two facts about sandboxes the benchmark reads from internals. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "floor.h"
#include "internal.h"
#include "util.h"

struct floor_vm {
    hl_vm *vm;
    bool has_vm;
    uint8_t *mem;
    size_t len;
    hl_vm_setup setup; /* what hl_vm_create gets (the fresh-VM floor creates VMs from it) */
    char err[HL_ERR_LEN];
};

struct dfloor {
    floor_vm f;
    uint32_t n;
    uint64_t npages1, words;
    uint8_t *pristine; /* slot 1 before the guest ran: what a restore copies back */
    uint64_t *bm, *scratch, *clear;
    hl_cpu_state cpu; /* registers at the loop's exit, reloaded before each run */
    uint64_t copied;  /* pages copied by the last run */
};

#define FLOOR_PORT 0x10
#define FLOOR_CODE HL_IMAGE_BASE
#define FLOOR_DATA (HL_IMAGE_BASE + HL_PAGE) /* slot 1: the VIF page, then the arena */
#define FLOOR_ARENA (FLOOR_DATA + HL_PAGE)

bool floor_kvm_is_pvm(void) { return hl_kvm_is_pvm(); }

uint64_t floor_sandbox_rw_size(const hl_sandbox *sb) { return sb->lo.total - sb->lo.ro_end; }

static void *alloc_or_die(size_t n)
{
    void *p = calloc(1, n);
    if (!p) die("out of memory");
    return p;
}

/* Builds the memory of a floor VM (page tables, code) and its hl_vm_setup; no VM yet.
 * slot1_size: the writable slot, HL_PAGE for the bare floor (just the virtual-IF page), or a
 * sandbox's slot-1 size for the dirty floors, whose guest writes one byte in each of n pages
 * of the arena (the pages after the VIF page) before each `out`. */
static void floor_prepare(floor_vm *f, bool arena, uint32_t n, uint64_t slot1_size)
{
    const hl_gpa code = FLOOR_CODE, data = FLOOR_DATA;
    const bool pvm = hl_kvm_is_pvm();
    hl_layout lo;
    size_t loop_off;
    uint8_t *p;

    memset(f, 0, sizeof *f);
    memset(&lo, 0, sizeof lo);
    lo.regions[lo.nregions++] =
        (hl_region){ .kind = HL_RGN_CODE, .gpa = code, .size = HL_PAGE, .perm = HL_PERM_R | HL_PERM_X };
    lo.regions[lo.nregions++] =
        (hl_region){ .kind = HL_RGN_DATA, .gpa = data, .size = slot1_size, .perm = HL_PERM_R | HL_PERM_W };
    lo.ro_end = data;
    lo.total = data + slot1_size;
    lo.entry = code;
    f->len = lo.total;
    f->mem = mmap(NULL, f->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (f->mem == MAP_FAILED) die("floor VM: mmap: %s", strerror(errno));
    if (hl_pt_build(&lo, f->mem, f->len, f->err) != HL_OK) die("floor VM: %s", f->err);
    /* Same entry protocol as src/guest/entry.S: register the VIF page first (kvm_pvm), then
     * the loop. Bare floor:
     *     loop: out %eax, $FLOOR_PORT; jmp loop
     * Dirty floor (n pages):
     *     loop: mov $n, %ecx; mov $FLOOR_ARENA, %edi; test %ecx, %ecx; jz done
     *     wr:   movb %cl, (%rdi); add $4096, %rdi; dec %ecx; jnz wr
     *     done: out %eax, $FLOOR_PORT; jmp loop */
    p = f->mem + code;
    *p++ = 0xb9; /* mov $HL_MSR_PVM_VIF, %ecx */
    memcpy(p, &(uint32_t){ HL_MSR_PVM_VIF }, 4), p += 4;
    *p++ = 0xb8; /* mov $(data | 1), %eax */
    memcpy(p, &(uint32_t){ (uint32_t)(data | 1) }, 4), p += 4;
    *p++ = 0x31, *p++ = 0xd2; /* xor %edx, %edx */
    *p++ = 0x0f, *p++ = 0x30; /* wrmsr */
    loop_off = (size_t)(p - (f->mem + code));
    if (arena) {
        *p++ = 0xb9; /* mov $n, %ecx */
        memcpy(p, &n, 4), p += 4;
        *p++ = 0xbf; /* mov $FLOOR_ARENA, %edi */
        memcpy(p, &(uint32_t){ (uint32_t)FLOOR_ARENA }, 4), p += 4;
        *p++ = 0x85, *p++ = 0xc9;              /* test %ecx, %ecx */
        *p++ = 0x74, *p++ = 13;                /* jz done (+13) */
        *p++ = 0x88, *p++ = 0x0f;              /* wr: movb %cl, (%rdi) */
        *p++ = 0x48, *p++ = 0x81, *p++ = 0xc7; /* add $4096, %rdi */
        memcpy(p, &(uint32_t){ 4096 }, 4), p += 4;
        *p++ = 0xff, *p++ = 0xc9;         /* dec %ecx */
        *p++ = 0x75, *p++ = (uint8_t)-13; /* jnz wr */
    }
    *p++ = 0xe7, *p++ = FLOOR_PORT; /* done: out %eax, $FLOOR_PORT */
    *p++ = 0xeb;                    /* jmp loop */
    *p = (uint8_t)(int8_t)((ptrdiff_t)loop_off - (ptrdiff_t)(p + 1 - (f->mem + code)));
    f->setup = (hl_vm_setup){ .ro = f->mem + HL_PEB_GPA,
                              .ro_gpa = HL_PEB_GPA,
                              .ro_size = lo.ro_end - HL_PEB_GPA,
                              .pt = f->mem + HL_PT_GPA,
                              .pt_size = lo.pt_end - HL_PT_GPA,
                              .rw = f->mem + lo.ro_end,
                              .rw_gpa = lo.ro_end,
                              .rw_size = lo.total - lo.ro_end,
                              .cr3 = HL_PT_GPA,
                              .rip = pvm ? code : code + loop_off,
                              .rsp = lo.total,
                              .rdi = 0 };
}

floor_vm *floor_create(void)
{
    floor_vm *f = alloc_or_die(sizeof *f);
    floor_prepare(f, false, 0, HL_PAGE);
    if (hl_vm_create(&f->vm, &f->setup, f->err) != HL_OK) die("floor VM: %s", f->err);
    f->has_vm = true;
    return f;
}

void floor_exit(floor_vm *f)
{
    hl_exit ex;
    if (hl_vm_run(f->vm, &ex, f->err) != HL_OK) die("floor VM: %s", f->err);
    if (ex.kind != HL_EXIT_OUT || ex.port != FLOOR_PORT)
        die("floor VM: unexpected exit (kind %d, KVM reason %u, port 0x%x)", ex.kind, ex.reason, ex.port);
}

floor_vm *floor_prepare_fresh(void)
{
    floor_vm *f = alloc_or_die(sizeof *f);
    floor_prepare(f, false, 0, HL_PAGE);
    return f;
}

uint64_t floor_fresh_vm(floor_vm *f, span *sp, samples *run_part)
{
    hl_vm *vm;
    hl_exit ex;
    uint64_t t, t1;
    span_begin(sp);
    if (hl_vm_create(&vm, &f->setup, f->err) != HL_OK) die("fresh floor VM: %s", f->err);
    t1 = now_ns();
    if (hl_vm_run(vm, &ex, f->err) != HL_OK) die("fresh floor VM: %s", f->err);
    t = span_end(sp);
    if (sp->keep) add_sample(run_part, sp->t0 + t - t1);
    if (ex.kind != HL_EXIT_OUT || ex.port != FLOOR_PORT)
        die("fresh floor VM: unexpected exit (kind %d, KVM reason %u, port 0x%x)", ex.kind, ex.reason, ex.port);
    hl_vm_destroy(vm);
    return t;
}

static void floor_fini(floor_vm *f)
{
    if (f->has_vm) hl_vm_destroy(f->vm);
    munmap(f->mem, f->len);
}

void floor_destroy(floor_vm *f)
{
    if (!f) return;
    floor_fini(f);
    free(f);
}

void dfloor_run(dfloor *d, bool reprotect)
{
    hl_exit ex;
    uint8_t *slot1 = d->f.mem + FLOOR_DATA;
    hl_vm_gprs_sync(d->f.vm, &d->cpu);
    if (hl_vm_run(d->f.vm, &ex, d->f.err) != HL_OK) die("dirty floor VM: %s", d->f.err);
    if (ex.kind != HL_EXIT_OUT || ex.port != FLOOR_PORT)
        die("dirty floor VM: unexpected exit (kind %d, KVM reason %u, port 0x%x)", ex.kind, ex.reason, ex.port);
    memset(d->bm, 0, d->words * 8);
    if (hl_vm_dirty_log(d->f.vm, HL_SLOT_RW, d->bm, d->scratch, d->npages1, d->f.err) != HL_OK)
        die("dirty floor VM: %s", d->f.err);
    d->copied = 0;
    for (uint64_t p = 0; p < d->npages1;) {
        uint64_t w = d->bm[p / 64] >> (p % 64), q;
        if (!w) {
            p = (p / 64 + 1) * 64;
            continue;
        }
        p += (uint64_t)__builtin_ctzll(w);
        if (p >= d->npages1) break;
        for (q = p + 1; q < d->npages1 && (d->bm[q / 64] >> (q % 64) & 1); q++)
            ;
        memcpy(slot1 + p * HL_PAGE, d->pristine + p * HL_PAGE, (q - p) * HL_PAGE);
        d->copied += q - p;
        p = q;
    }
    if (reprotect) {
        memcpy(d->clear, d->scratch, d->words * 8);
        if (hl_vm_dirty_clear(d->f.vm, HL_SLOT_RW, d->clear, d->npages1, d->f.err) != HL_OK)
            die("dirty floor VM: %s", d->f.err);
    }
}

dfloor *dfloor_create(uint32_t n, uint64_t slot1_size, uint8_t *pristine)
{
    dfloor *d;
    if (slot1_size < (1 + (uint64_t)n) * HL_PAGE) die("dirty floor VM: slot 1 too small");
    d = alloc_or_die(sizeof *d);
    floor_prepare(&d->f, true, n, slot1_size);
    d->n = n;
    d->npages1 = slot1_size / HL_PAGE;
    d->words = (d->npages1 + 63) / 64;
    d->pristine = pristine;
    d->bm = alloc_or_die(d->words * 8);
    d->scratch = alloc_or_die(d->words * 8);
    d->clear = alloc_or_die(d->words * 8);
    if (hl_vm_create(&d->f.vm, &d->f.setup, d->f.err) != HL_OK) die("dirty floor VM: %s", d->f.err);
    d->f.has_vm = true;
    floor_exit(&d->f); /* VIF registration, then the loop's first pass */
    if (hl_vm_cpu_get(d->f.vm, &d->cpu, d->f.err) != HL_OK) die("dirty floor VM: %s", d->f.err);
    dfloor_run(d, true);
    return d;
}

uint64_t dfloor_copied(const dfloor *d) { return d->copied; }

void dfloor_destroy(dfloor *d)
{
    if (!d) return;
    free(d->bm), free(d->scratch), free(d->clear);
    floor_fini(&d->f);
    free(d);
}

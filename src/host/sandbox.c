/* sandbox.c - the sandbox's lifecycle: creation from an ELF (boot image, memory, VM, the
 * guest's initialisation), mapping a snapshot's memory, accessors, and freeing. The call
 * path is call.c; faults are named in fault_x86_64.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "call.h"
#include "cancel.h"
#include "confine.h"
#include "elfload.h"
#include "error.h"
#include "image.h"
#include "io.h"
#include "pagetable.h"
#include "sandbox.h"

/* ---- creation ---- */
static hl_status track_init(hl_sandbox *sb, hl_track *t, uint32_t slot, hl_gpa gpa, hl_gpa end)
{
    uint64_t words;
    t->slot = slot;
    t->gpa = gpa;
    t->npages = (end - gpa) / HL_PAGE;
    words = (t->npages + 63) / 64;
    t->dirty = calloc(words ? words : 1, 8);
    t->tmp = calloc(words ? words : 1, 8);
    t->prev = calloc(words ? words : 1, 8);
    if (!t->dirty || !t->tmp || !t->prev) return hl_fail(sb, HL_ERR_NO_MEMORY, "out of memory");
    return HL_OK;
}

static void track_free(hl_track *t)
{
    free(t->dirty);
    free(t->tmp);
    free(t->prev);
}

/* Maps snap's image as sb's memory: [0, ro_end) shared read-only but the page tables, which
 * are private and writable like [ro_end, total) (the guest's own mappings never reach them;
 * KVM needs them writable for hardware page walks, see abi.h). */
hl_status hl_sandbox_map(hl_sandbox *sb, hl_snapshot *snap)
{
    hl_status st;
    uint64_t ro_pages = snap->lo.ro_end / HL_PAGE;
    sb->lo = snap->lo;
    if ((st = track_init(sb, &sb->rw, HL_SLOT_RW, sb->lo.ro_end, sb->lo.total)) ||
        (st = track_init(sb, &sb->pt, HL_SLOT_PT, HL_PT_GPA, sb->lo.pt_end)))
        return st;
    sb->mem = hl_reserve(sb->lo.total);
    if (!sb->mem)
        return hl_fail(sb, HL_ERR_NO_MEMORY, "out of address space for guest memory of %llu bytes",
                       (unsigned long long)sb->lo.total);
    sb->slot1 = sb->mem + sb->lo.ro_end;
    if ((st = hl_image_map(&snap->img, sb->mem, 0, ro_pages, PROT_READ, MAP_SHARED, sb->err)) ||
        (st = hl_image_map(&snap->img, sb->mem, HL_PT_GPA / HL_PAGE, sb->pt.npages, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE, sb->err)) ||
        (st = hl_image_map(&snap->img, sb->mem, ro_pages, sb->rw.npages, PROT_READ | PROT_WRITE, MAP_PRIVATE, sb->err)))
        return st;
    hl_snapshot_ref(snap);
    sb->base = snap;
    sb->gen_counter = snap->generation;
    sb->in_max = HL_BUF_EMPTY;
    return HL_OK;
}

/* The memslots of sb's memory, for hl_vm_create. */
static void vm_setup_memory(const hl_sandbox *sb, hl_vm_setup *vs)
{
    vs->ro = sb->mem + HL_PEB_GPA;
    vs->ro_gpa = HL_PEB_GPA;
    vs->ro_size = sb->lo.ro_end - HL_PEB_GPA;
    vs->pt = sb->mem + HL_PT_GPA;
    vs->pt_size = sb->lo.pt_end - HL_PT_GPA;
    vs->rw = sb->slot1;
    vs->rw_gpa = sb->lo.ro_end;
    vs->rw_size = sb->lo.total - sb->lo.ro_end;
}

/* Maps sb's files (sb->files) and fills the file part of a VM setup. An empty file has no
 * mapping and no memslot: its address in the PEB is an unmapped page. */
static hl_status vm_setup_files(hl_sandbox *sb, hl_vm_setup *vs)
{
    int n = 0;
    for (int i = 0; i < sb->nfiles; i++) {
        uint64_t len = HL_ALIGN_UP(sb->files[i].size, HL_PAGE);
        void *p;
        if (len == 0) continue;
        if ((p = mmap(NULL, len, PROT_READ, MAP_SHARED, sb->files[i].fd, 0)) == MAP_FAILED)
            return hl_fail(sb, HL_ERR_IO, "mapping file '%s': %s", sb->lo.sizes.file_label[i], strerror(errno));
        sb->file_host[i] = p;
        vs->file_gpa[n] = sb->lo.file_gpa[i];
        vs->file_host[n] = p;
        vs->file_len[n++] = len;
    }
    vs->nfiles = n;
    return HL_OK;
}

hl_status hl_sandbox_start_vm(hl_sandbox *sb, const hl_file *files, int nfiles, const hl_cpu_state *cpu)
{
    hl_vm_setup vs;
    hl_status st;
    if (cpu) vs = (hl_vm_setup){ .cpu = cpu };
    else
        vs = (hl_vm_setup){
            .cr3 = HL_PT_GPA, .rip = sb->lo.entry, .rsp = sb->lo.stack + sb->lo.sizes.scratch, .rdi = HL_PEB_GPA
        };
    vm_setup_memory(sb, &vs);
    if (!hl_files_dup(sb->files, files, nfiles))
        return hl_fail(sb, HL_ERR_SYSTEM, "duplicating mapped file descriptors: %s", strerror(errno));
    sb->nfiles = nfiles;
    if ((st = vm_setup_files(sb, &vs)) != HL_OK || (st = hl_vm_create(&sb->vm, &vs, sb->err)) != HL_OK ||
        (st = hl_clock_start(&sb->clock, sb->vm, sb->clock_mode, sb->err)) != HL_OK)
        return st;
    hl_clock_write(&sb->clock, (struct hl_meta *)(sb->mem + sb->lo.meta));
    sb->in_top = HL_BUF_EMPTY;
    return HL_OK;
}

/* Builds the guest's initial memory in a sealed memfd: the image the guest boots from. */
static hl_status boot_image(hl_sandbox *sb, const hl_elf *elf, const uint8_t *data, bool pvm, const void *init_data,
                            hl_snapshot **out)
{
    uint8_t *mem;
    hl_status st;
    uint64_t empty = HL_BUF_EMPTY;
    hl_memfile *file;
    hl_image img;
    int fd = memfd_create("hyperlight-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return hl_fail(sb, HL_ERR_SYSTEM, "memfd_create: %s", strerror(errno));
    if (!(file = hl_memfile_new(fd, 0))) {
        close(fd);
        return hl_fail(sb, HL_ERR_NO_MEMORY, "out of memory");
    }
    if (ftruncate(fd, (off_t)sb->lo.total) < 0) {
        st = hl_fail(sb, HL_ERR_NO_MEMORY, "ftruncate guest memory (%llu bytes): %s", (unsigned long long)sb->lo.total,
                     strerror(errno));
        goto out;
    }
    mem = mmap(NULL, sb->lo.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) {
        st = hl_fail(sb, HL_ERR_NO_MEMORY, "mmap guest memory: %s", strerror(errno));
        goto out;
    }
    hl_elf_load(elf, data, mem, sb->lo.total);
    st = hl_pt_build(&sb->lo, mem, sb->lo.total, sb->err);
    hl_layout_peb(&sb->lo, pvm, (struct hl_peb *)(mem + HL_PEB_GPA));
    memcpy(mem + sb->lo.input, &empty, 8);
    memcpy(mem + sb->lo.output, &empty, 8);
    if (sb->lo.sizes.init) memcpy(mem + sb->lo.init, init_data, sb->lo.sizes.init);
    munmap(mem, sb->lo.total);
    if (st != HL_OK) goto out;
    /* The image never changes again: seal it so no mapping can write it back. */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
        st = hl_fail(sb, HL_ERR_SYSTEM, "sealing guest memory: %s", strerror(errno));
        goto out;
    }
    if ((st = hl_image_single(&img, file, sb->lo.total / HL_PAGE)) != HL_OK) {
        hl_fail(sb, st, "out of memory");
        goto out;
    }
    st = hl_snapshot_from_image(out, &sb->lo, &img, sb->err);
out:
    hl_memfile_unref(file);
    return st;
}

/* Takes the host functions, print and log functions from cfg; allocates per-call buffers. */
hl_status hl_sandbox_adopt_config(hl_sandbox *sb, const hl_config *cfg)
{
    hl_status st;
    if (cfg->nhostfns) {
        sb->hostfns = malloc((size_t)cfg->nhostfns * sizeof *sb->hostfns);
        if (!sb->hostfns) return hl_fail(sb, HL_ERR_NO_MEMORY, "out of memory");
        memcpy(sb->hostfns, cfg->hostfns, (size_t)cfg->nhostfns * sizeof *sb->hostfns);
        sb->nhostfns = cfg->nhostfns;
    }
    sb->print = cfg->print;
    sb->print_user = cfg->print_user;
    sb->log = cfg->log;
    sb->log_user = cfg->log_user;
    sb->maxrecs = (int)(sb->lo.sizes.output / (HL_REC_HEADER + HL_REC_TRAILER));
    sb->outcopy = malloc(sb->lo.sizes.output);
    sb->recs = malloc((size_t)sb->maxrecs * sizeof *sb->recs);
    if (!sb->outcopy || !sb->recs) return hl_fail(sb, HL_ERR_NO_MEMORY, "out of memory");
    sb->timeout_ms = cfg->timeout_ms;
    sb->max_host_calls = cfg->max_host_calls;
    sb->max_output = cfg->max_output;
    sb->clock_mode = cfg->clock;
    memcpy(sb->core_dir, cfg->core_dir, sizeof sb->core_dir);
    if ((st = hl_cancel_init(sb)) != HL_OK) return st;
    return hl_confine_start(sb, cfg); /* a confined sandbox's worker */
}

static hl_status create(hl_sandbox *sb, const uint8_t *data, size_t len, const hl_config *cfg)
{
    hl_elf elf;
    hl_status st;
    hl_snapshot *boot = NULL;
    hl_sizes sizes;

    if ((st = hl_elf_parse(data, len, &elf, sb->err))) return st;
    hl_config_sizes_for(cfg, &elf, &sizes);
    if ((st = hl_layout_build(&sb->lo, &elf, &sizes, sb->err)) ||
        (st = boot_image(sb, &elf, data, hl_kvm_is_pvm(), cfg->init_data, &boot)))
        return st;
    st = hl_sandbox_map(sb, boot);
    hl_snapshot_free(boot); /* sb holds its own reference */
    if (st != HL_OK || (st = hl_sandbox_adopt_config(sb, cfg)) != HL_OK ||
        (st = hl_sandbox_start_vm(sb, cfg->files, cfg->sizes.nfiles, NULL)) != HL_OK)
        return st;
    /* The initialisation has a time limit of its own, so that a guest that never finishes
     * it cannot hang the creation; calls then get the configuration's call limit. */
    sb->timeout_ms = cfg->init_timeout_ms;
    st = hl_call_init(sb);
    sb->timeout_ms = cfg->timeout_ms;
    if (st != HL_OK) return st;
    sb->state = HL_STATE_READY;
    return HL_OK;
}

hl_status hl_sandbox_new_from_memory(hl_sandbox **out, const void *elf, size_t len, const hl_config *cfg)
{
    hl_sandbox *sb;
    if (!out || !cfg || (!elf && len))
        return hl_thread_fail(HL_ERR_INVALID_ARG, "hl_sandbox_new: out and cfg are required");
    *out = NULL;
    if (!(sb = hl_sandbox_alloc())) return hl_thread_fail(HL_ERR_NO_MEMORY, "out of memory");
    return hl_sandbox_finish(out, sb, create(sb, elf, len, cfg));
}

hl_status hl_sandbox_new_from_file(hl_sandbox **out, const char *path, const hl_config *cfg)
{
    uint8_t *data;
    size_t size;
    hl_status st;
    int rc;
    if (out) *out = NULL;
    if (!path) return hl_thread_fail(HL_ERR_INVALID_ARG, "hl_sandbox_new_from_file: path is NULL");
    if ((rc = hl_read_file(path, (uint64_t)HL_ELF_MAX_SPAN * 2, &data, &size)) < 0) {
        if (rc == -1) return hl_thread_fail(HL_ERR_IO, "cannot open guest '%s': %s", path, strerror(errno));
        if (errno == EFBIG) return hl_thread_fail(HL_ERR_BAD_GUEST, "guest '%s' is too large", path);
        if (errno == EINVAL) return hl_thread_fail(HL_ERR_IO, "cannot read guest '%s': not a regular file", path);
        if (errno == ENOMEM) return hl_thread_fail(HL_ERR_NO_MEMORY, "out of memory reading '%s'", path);
        return hl_thread_fail(HL_ERR_IO, "cannot read guest '%s': %s", path, strerror(errno));
    }
    if ((st = hl_sandbox_new_from_memory(out, data, size, cfg)) != HL_OK) hl_thread_prefix(st, "%s", path);
    free(data);
    return st;
}

hl_sandbox *hl_sandbox_alloc(void)
{
    hl_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) return NULL;
    sb->emul_mark = -1;
    hl_unrecoverable(sb, HL_OK); /* until creation succeeds */
    return sb;
}

hl_status hl_sandbox_finish(hl_sandbox **out, hl_sandbox *sb, hl_status st)
{
    if (st != HL_OK) {
        hl_thread_take(sb);
        hl_sandbox_free(sb);
        return st;
    }
    hl_thread_clear();
    *out = sb;
    return HL_OK;
}

void hl_sandbox_free(hl_sandbox *sb)
{
    if (!sb) return;
    hl_confine_stop(sb); /* first: the worker uses the vCPU */
    hl_cancel_fini(sb);
    hl_vm_destroy(sb->vm);
    if (sb->mem) munmap(sb->mem, sb->lo.total);
    for (int i = 0; i < sb->nfiles; i++)
        if (sb->file_host[i]) munmap(sb->file_host[i], HL_ALIGN_UP(sb->files[i].size, HL_PAGE));
    hl_files_close(sb->files, sb->nfiles);
    hl_snapshot_free(sb->base);
    track_free(&sb->rw);
    track_free(&sb->pt);
    hl_guestfns_free(sb->guestfns, sb->nguestfns);
    free(sb->hostfns);
    free(sb->outcopy);
    free(sb->recs);
    free(sb->retmem);
    free(sb);
}

hl_state hl_sandbox_state(const hl_sandbox *sb) { return sb ? sb->state : HL_STATE_UNRECOVERABLE; }
hl_status hl_sandbox_set_timeout(hl_sandbox *sb, uint64_t ms)
{
    if (!sb) return HL_ERR_INVALID_ARG;
    sb->timeout_ms = ms;
    return HL_OK;
}
hl_status hl_sandbox_sizes(const hl_sandbox *sb, uint64_t *stack_bytes, uint64_t *heap_bytes)
{
    if (!sb) return HL_ERR_INVALID_ARG;
    if (stack_bytes) *stack_bytes = sb->lo.sizes.scratch;
    if (heap_bytes) *heap_bytes = sb->lo.sizes.heap;
    return HL_OK;
}
uint64_t hl_sandbox_exit_count(const hl_sandbox *sb) { return sb ? sb->exits : 0; }
uint64_t hl_sandbox_pt_repairs(const hl_sandbox *sb) { return sb ? sb->pt_repairs : 0; }

/* coredump.c - opt-in crash dumps: on a guest fault, an ELF core file of the guest that gdb
 * opens next to the guest's ELF (`gdb guest.elf core`). See docs/coredump.md.
 *
 * The file: ELF64 ET_CORE for x86-64; one PT_NOTE (NT_PRSTATUS with the vCPU's general and
 * segment registers, NT_PRPSINFO, NT_FPREGSET with x87/SSE, and a "HYPERLIGHT" note with the
 * fault description and control registers), then one PT_LOAD per mapped region of the
 * layout, its contents read from the host's mapping of guest memory. Guest memory is
 * identity-mapped, so p_vaddr = p_paddr = guest-physical address. All-zero pages are left as
 * holes (the file is sparse). The size is bounded by the layout: never more than the guest's
 * memory plus a page of headers. Nothing here trusts the guest: only the host's layout says
 * what to read, and every read goes through hl_gpa_ro. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <time.h>
#include <unistd.h>

#include "coredump.h"
#include "error.h"
#include "io.h"
#include "sandbox.h"
#include "x86_64.h"

_Static_assert(sizeof(struct user_regs_struct) == sizeof(elf_gregset_t), "pr_reg layout");

/* The "HYPERLIGHT" note: the fault description and control registers, as text. BFD reads
 * notes of every owner with the generic core note types, so its type must be none of those. */
#define HL_NT_FAULT 0x484c0001u
#define NOTE_TEXT_MAX (HL_ERR_LEN + 256) /* the fault text (an error text) and the registers */
#define MAX_NAME_TRIES 64

static uint64_t core_counter; /* process-wide, for unique file names */

hl_status hl_coredump_dir_check(const char *dir, char *out, char *err)
{
    char abs[PATH_MAX];
    struct stat st;
    size_t len;
    out[0] = 0;
    if (!dir || !dir[0]) return HL_OK; /* disabled */
    if (strlen(dir) >= PATH_MAX) return hl_errf(err, HL_ERR_INVALID_ARG, "core dump directory: path too long");
    if (!realpath(dir, abs))
        return hl_errf(err, HL_ERR_INVALID_ARG, "core dump directory '%s': %s", dir, strerror(errno));
    if (stat(abs, &st) < 0)
        return hl_errf(err, HL_ERR_INVALID_ARG, "core dump directory '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return hl_errf(err, HL_ERR_INVALID_ARG, "core dump directory '%s': not a directory", dir);
    if (faccessat(AT_FDCWD, abs, W_OK | X_OK, AT_EACCESS) < 0)
        return hl_errf(err, HL_ERR_INVALID_ARG, "core dump directory '%s': not writable: %s", dir, strerror(errno));
    len = strlen(abs);
    if (len > HL_CORE_DIR_MAX)
        return hl_errf(err, HL_ERR_INVALID_ARG, "core dump directory '%s': absolute path longer than %d bytes", dir,
                       HL_CORE_DIR_MAX);
    memcpy(out, abs, len + 1);
    return HL_OK;
}

/* ---- building the note segment ---- */
typedef struct notebuf {
    uint8_t *p;
    size_t len, cap;
} notebuf;

static void note_add(notebuf *nb, const char *name, uint32_t type, const void *desc, size_t dlen)
{
    Elf64_Nhdr h = { .n_namesz = (Elf64_Word)(strlen(name) + 1), .n_descsz = (Elf64_Word)dlen, .n_type = type };
    size_t need = sizeof h + HL_ALIGN_UP(h.n_namesz, 4) + HL_ALIGN_UP(dlen, 4);
    if (nb->len + need > nb->cap) return; /* the caller sized cap for every note */
    memcpy(nb->p + nb->len, &h, sizeof h);
    memcpy(nb->p + nb->len + sizeof h, name, h.n_namesz);
    memcpy(nb->p + nb->len + sizeof h + HL_ALIGN_UP(h.n_namesz, 4), desc, dlen);
    nb->len += need; /* padding stays zero (calloc) */
}

static void fill_prstatus(struct elf_prstatus *ps, const struct user_regs_struct *u, int sig)
{
    memset(ps, 0, sizeof *ps);
    memcpy(&ps->pr_reg, u, sizeof *u);
    ps->pr_info.si_signo = sig;
    ps->pr_cursig = (short)sig;
    ps->pr_pid = ps->pr_ppid = ps->pr_pgrp = ps->pr_sid = getpid();
}

static void fill_prpsinfo(struct elf_prpsinfo *psi)
{
    memset(psi, 0, sizeof *psi);
    psi->pr_state = 'R';
    psi->pr_sname = 'R';
    psi->pr_pid = psi->pr_ppid = psi->pr_pgrp = psi->pr_sid = getpid();
    memcpy(psi->pr_fname, "hyperlight-guest", sizeof psi->pr_fname); /* 16 bytes, no NUL needed */
    snprintf(psi->pr_psargs, sizeof psi->pr_psargs, "hyperlight-guest");
}

/* ---- writing ---- */
static bool page_is_zero(const uint8_t *p)
{
    uint64_t acc = 0, w;
    for (size_t i = 0; i < HL_PAGE; i += 8) {
        memcpy(&w, p + i, 8);
        acc |= w;
        if (acc) return false;
    }
    return true;
}

/* Writes len bytes of guest memory at src to off, leaving all-zero pages as holes. */
static bool write_sparse(int fd, const uint8_t *src, uint64_t len, uint64_t off)
{
    uint64_t i = 0;
    while (i < len) {
        uint64_t j;
        if (page_is_zero(src + i)) {
            i += HL_PAGE;
            continue;
        }
        for (j = i + HL_PAGE; j < len && j - i < (8u << 20) && !page_is_zero(src + j); j += HL_PAGE) {
        }
        if (hl_pwrite_full(fd, src + i, (size_t)(j - i), (off_t)(off + i)) < 0) return false;
        i = j;
    }
    return true;
}

typedef struct seg {
    const hl_region *r;
    const uint8_t *src; /* host view, or NULL: listed without contents */
    uint64_t off;
} seg;

/* The note segment: registers (the guest's report's where it made one, hardware KVM: the
 * vCPU is in its handler then), process info, x87/SSE, and the fault's text. */
static hl_status build_notes(hl_sandbox *sb, const char *why, int sig, notebuf *nb, char *err)
{
    hl_cpu_state cpu;
    hl_core_regs cr;
    struct elf_prstatus prs;
    struct elf_prpsinfo psi;
    char text[NOTE_TEXT_MAX];
    if (hl_vm_cpu_get(sb->vm, &cpu, err) != HL_OK) return HL_ERR_HYPERVISOR;
    hl_cpu_core_regs(&cpu, sb->have_fault ? &sb->fault : NULL, &cr);
    fill_prstatus(&prs, &cr.regs, sig);
    fill_prpsinfo(&psi);
    snprintf(text, sizeof text,
             "%s\nrip 0x%llx rsp 0x%llx rflags 0x%llx\ncr0 0x%llx cr2 0x%llx cr3 0x%llx cr4 0x%llx efer 0x%llx\n", why,
             (unsigned long long)cr.regs.rip, (unsigned long long)cr.regs.rsp, (unsigned long long)cr.regs.eflags,
             (unsigned long long)cr.cr0, (unsigned long long)cr.cr2, (unsigned long long)cr.cr3,
             (unsigned long long)cr.cr4, (unsigned long long)cr.efer);
    nb->cap = 4 * (sizeof(Elf64_Nhdr) + 12) + sizeof prs + sizeof psi + sizeof cr.fpregs + strlen(text) + 1 + 16;
    if (!(nb->p = calloc(1, nb->cap))) return hl_errf(err, HL_ERR_NO_MEMORY, "out of memory");
    note_add(nb, "CORE", NT_PRSTATUS, &prs, sizeof prs);
    note_add(nb, "CORE", NT_PRPSINFO, &psi, sizeof psi);
    note_add(nb, "CORE", NT_FPREGSET, &cr.fpregs, sizeof cr.fpregs);
    note_add(nb, "HYPERLIGHT", HL_NT_FAULT, text, strlen(text) + 1);
    return HL_OK;
}

/* The segments, from the host's layout only; returns their count. */
static int list_segments(hl_sandbox *sb, seg *segs)
{
    int nseg = 0, nreg = sb->lo.nregions;
    if (nreg < 0 || nreg > HL_MAX_REGIONS) nreg = 0;
    for (int i = 0; i < nreg; i++) {
        const hl_region *r = &sb->lo.regions[i];
        if (!r->perm || !r->size || r->gpa % HL_PAGE || r->size % HL_PAGE || r->gpa + r->size < r->gpa) continue;
        segs[nseg].r = r;
        segs[nseg].src = hl_gpa_ro(sb, r->gpa, r->size); /* NULL beyond the memory image */
        nseg++;
    }
    return nseg;
}

/* The ELF header, program headers and notes, in a new buffer of *len bytes; each segment's
 * file offset is set and *total is the file's size. */
static uint8_t *build_headers(seg *segs, int nseg, const notebuf *nb, size_t *len, uint64_t *total)
{
    size_t notes_off = sizeof(Elf64_Ehdr) + (size_t)(nseg + 1) * sizeof(Elf64_Phdr);
    uint8_t *hdr;
    Elf64_Ehdr *eh;
    Elf64_Phdr *ph;
    *len = notes_off + nb->len;
    *total = HL_ALIGN_UP(*len, HL_PAGE);
    for (int i = 0; i < nseg; i++) {
        segs[i].off = *total;
        if (segs[i].src) *total += segs[i].r->size;
    }
    if (!(hdr = calloc(1, *len))) return NULL;
    eh = (Elf64_Ehdr *)hdr;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_ident[EI_OSABI] = ELFOSABI_NONE;
    eh->e_type = ET_CORE;
    eh->e_machine = EM_X86_64;
    eh->e_version = EV_CURRENT;
    eh->e_phoff = sizeof(Elf64_Ehdr);
    eh->e_ehsize = sizeof(Elf64_Ehdr);
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = (Elf64_Half)(nseg + 1);
    ph = (Elf64_Phdr *)(hdr + sizeof(Elf64_Ehdr));
    ph[0] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = notes_off, .p_filesz = nb->len, .p_align = 4 };
    for (int i = 0; i < nseg; i++) {
        const hl_region *r = segs[i].r;
        ph[i + 1] = (Elf64_Phdr){
            .p_type = PT_LOAD,
            .p_flags = ((r->perm & HL_PERM_R) ? PF_R : 0) | ((r->perm & HL_PERM_W) ? PF_W : 0) |
                       ((r->perm & HL_PERM_X) ? PF_X : 0),
            .p_offset = segs[i].off,
            .p_vaddr = r->gpa,
            .p_paddr = r->gpa,
            .p_filesz = segs[i].src ? r->size : 0,
            .p_memsz = r->size,
            .p_align = HL_PAGE,
        };
    }
    memcpy(hdr + notes_off, nb->p, nb->len);
    return hdr;
}

/* A new file of our own in (dir): O_EXCL, no symlink followed, relative to the opened
 * directory *dfd. Its name goes to (name). */
static int create_unique(const char *dir, int *dfd, char *name, size_t len, char *err)
{
    int fd = -1;
    if ((*dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        hl_errf(err, HL_ERR_IO, "cannot open directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    for (int tries = 0; fd < 0 && tries < MAX_NAME_TRIES; tries++) {
        snprintf(name, len, "hyperlight-%d-%llu-%lld.core", (int)getpid(),
                 (unsigned long long)__atomic_add_fetch(&core_counter, 1, __ATOMIC_RELAXED), (long long)time(NULL));
        fd = openat(*dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST && errno != EINTR) break;
    }
    if (fd < 0) hl_errf(err, HL_ERR_IO, "cannot create a file in '%s': %s", dir, strerror(errno));
    return fd;
}

/* Writes headers and segments to (fd); false with errno set on failure. */
static bool write_file(int fd, const uint8_t *hdr, size_t hdr_len, const seg *segs, int nseg, uint64_t total)
{
    if (hl_pwrite_full(fd, hdr, hdr_len, 0) < 0) return false;
    for (int i = 0; i < nseg; i++)
        if (segs[i].src && !write_sparse(fd, segs[i].src, segs[i].r->size, segs[i].off)) return false;
    return ftruncate(fd, (off_t)total) == 0; /* trailing holes */
}

/* Writes the core file; on success path[] names it. why is the fault description. */
static hl_status write_core(hl_sandbox *sb, const char *why, int sig, char *path, size_t pathlen, char *err)
{
    seg segs[HL_MAX_REGIONS];
    notebuf nb = { 0 };
    uint8_t *hdr = NULL;
    size_t hdr_len;
    uint64_t total;
    struct rlimit rl;
    char name[96];
    int nseg = list_segments(sb, segs), dfd = -1, fd = -1;
    bool ok;
    hl_status st;

    if ((st = build_notes(sb, why, sig, &nb, err)) != HL_OK) goto out;
    if (!(hdr = build_headers(segs, nseg, &nb, &hdr_len, &total))) {
        st = hl_errf(err, HL_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && total > rl.rlim_cur) {
        st = hl_errf(err, HL_ERR_IO, "core of %llu bytes exceeds the file size limit (RLIMIT_FSIZE %llu)",
                     (unsigned long long)total, (unsigned long long)rl.rlim_cur);
        goto out;
    }
    st = HL_ERR_IO;
    if ((fd = create_unique(sb->core_dir, &dfd, name, sizeof name, err)) < 0) goto out;
    ok = write_file(fd, hdr, hdr_len, segs, nseg, total);
    if (close(fd) < 0) ok = false;
    if (!ok) {
        hl_errf(err, HL_ERR_IO, "writing '%s/%s': %s", sb->core_dir, name, strerror(errno));
        unlinkat(dfd, name, 0);
        goto out;
    }
    snprintf(path, pathlen, "%s/%s", sb->core_dir, name);
    st = HL_OK;
out:
    if (dfd >= 0) close(dfd);
    free(hdr);
    free(nb.p);
    return st;
}

bool hl_coredump_enabled(const hl_sandbox *sb) { return sb->core_dir[0] != 0; }

bool hl_coredump_write(hl_sandbox *sb, int sig, char *note, size_t len)
{
    char path[HL_CORE_DIR_MAX + 128], why[HL_ERR_LEN];
    if (!sb->core_dir[0]) return false;
    if (!sig && sb->have_fault) {
        sig = x86_exception_info((int)sb->fault.vector)->signal;
    } else if (!sig) {
        hl_vm_state vs;
        sig = hl_vm_state_get(sb->vm, &vs) == HL_OK ? x86_exception_info(vs.exception)->signal : SIGSEGV;
    }
    why[0] = 0;
    if (write_core(sb, sb->err, sig, path, sizeof path, why) == HL_OK) snprintf(note, len, " (core dump: %s)", path);
    else snprintf(note, len, " (core dump failed: %s)", why[0] ? why : "unknown error");
    return true;
}

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
#include <linux/kvm.h>
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

#include "internal.h"

_Static_assert(sizeof(struct user_regs_struct) == sizeof(elf_gregset_t), "pr_reg layout");
_Static_assert(sizeof(struct kvm_regs) == sizeof(((hl_cpu_state *)0)->regs), "kvm_regs size");
_Static_assert(sizeof(struct kvm_sregs) == sizeof(((hl_cpu_state *)0)->sregs), "kvm_sregs size");
_Static_assert(sizeof(struct kvm_fpu) == sizeof(((hl_cpu_state *)0)->fpu), "kvm_fpu size");
_Static_assert(sizeof(struct user_fpregs_struct) == 512, "fxsave area");

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
    if (strlen(dir) >= PATH_MAX)
        return hl_errf(err, HL_ERR_INVALID_ARG, "core dump directory: path too long");
    if (!realpath(dir, abs))
        return hl_errf(err, HL_ERR_INVALID_ARG, "core dump directory '%s': %s", dir, strerror(errno));
    if (stat(abs, &st) < 0)
        return hl_errf(err, HL_ERR_INVALID_ARG, "core dump directory '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return hl_errf(err, HL_ERR_INVALID_ARG, "core dump directory '%s': not a directory", dir);
    if (faccessat(AT_FDCWD, abs, W_OK | X_OK, AT_EACCESS) < 0)
        return hl_errf(err, HL_ERR_INVALID_ARG, "core dump directory '%s': not writable: %s", dir,
                       strerror(errno));
    len = strlen(abs);
    if (len > HL_CORE_DIR_MAX)
        return hl_errf(err, HL_ERR_INVALID_ARG, "core dump directory '%s': absolute path longer than %d bytes",
                       dir, HL_CORE_DIR_MAX);
    memcpy(out, abs, len + 1);
    return HL_OK;
}

/* The signal a process would have got for exception vector vec (what gdb reports). */
static int exception_signal(int vec)
{
    switch (vec) {
    case 0: case 7: case 16: case 19: return SIGFPE;  /* #DE #NM #MF #XM */
    case 1: case 3: return SIGTRAP;                   /* #DB #BP */
    case 6: return SIGILL;                            /* #UD */
    case 12: case 17: case 18: return SIGBUS;         /* #SS #AC #MC */
    default: return SIGSEGV;                          /* #PF #GP and the rest */
    }
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

static void fill_prstatus(struct elf_prstatus *ps, const struct kvm_regs *r, const struct kvm_sregs *s, int sig)
{
    struct user_regs_struct u;
    memset(ps, 0, sizeof *ps);
    memset(&u, 0, sizeof u);
    u.r15 = r->r15; u.r14 = r->r14; u.r13 = r->r13; u.r12 = r->r12;
    u.rbp = r->rbp; u.rbx = r->rbx; u.r11 = r->r11; u.r10 = r->r10;
    u.r9 = r->r9;   u.r8 = r->r8;   u.rax = r->rax; u.rcx = r->rcx;
    u.rdx = r->rdx; u.rsi = r->rsi; u.rdi = r->rdi;
    u.orig_rax = ~0ull; /* not in a system call */
    u.rip = r->rip;
    u.eflags = r->rflags;
    u.rsp = r->rsp;
    u.cs = s->cs.selector; u.ss = s->ss.selector; u.ds = s->ds.selector;
    u.es = s->es.selector; u.fs = s->fs.selector; u.gs = s->gs.selector;
    u.fs_base = s->fs.base;
    u.gs_base = s->gs.base;
    memcpy(&ps->pr_reg, &u, sizeof u);
    ps->pr_info.si_signo = sig;
    ps->pr_cursig = (short)sig;
    ps->pr_pid = ps->pr_ppid = ps->pr_pgrp = ps->pr_sid = getpid();
}

/* kvm_fpu is the fxsave image field by field (x87 registers 16 bytes apart, abridged tag). */
static void fill_fpregs(struct user_fpregs_struct *f, const struct kvm_fpu *k)
{
    memset(f, 0, sizeof *f);
    f->cwd = k->fcw;
    f->swd = k->fsw;
    f->ftw = k->ftwx;
    f->fop = k->last_opcode;
    f->rip = k->last_ip;
    f->rdp = k->last_dp;
    f->mxcsr = k->mxcsr;
    f->mxcr_mask = 0xffff;
    memcpy(f->st_space, k->fpr, sizeof f->st_space);
    memcpy(f->xmm_space, k->xmm, sizeof f->xmm_space);
}

/* ---- writing ---- */
static bool write_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;
            return false;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return true;
}

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
        for (j = i + HL_PAGE; j < len && j - i < (8u << 20) && !page_is_zero(src + j); j += HL_PAGE) {}
        if (!write_all(fd, src + i, (size_t)(j - i), off + i)) return false;
        i = j;
    }
    return true;
}

typedef struct seg {
    const hl_region *r;
    const uint8_t *src; /* host view, or NULL: listed without contents */
    uint64_t off;
} seg;

/* Writes the core file; on success path[] names it. why is the fault description. */
static hl_status write_core(hl_sandbox *sb, const char *why, int sig, char *path, size_t pathlen, char *err)
{
    hl_cpu_state cpu;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_fpu fpu;
    struct elf_prstatus prs;
    struct elf_prpsinfo psi;
    struct user_fpregs_struct fpr;
    char text[NOTE_TEXT_MAX];
    seg segs[HL_MAX_REGIONS];
    int nseg = 0, nreg = sb->lo.nregions, dfd = -1, fd = -1, e;
    notebuf nb = { 0 };
    uint8_t *hdr = NULL;
    size_t hdr_len, notes_off;
    uint64_t data_off, total;
    struct rlimit rl;
    Elf64_Ehdr *eh;
    Elf64_Phdr *ph;
    char name[96];
    hl_status st = HL_ERR_IO;

    if (hl_vm_cpu_get(&sb->vm, &cpu, err) != HL_OK) return HL_ERR_HYPERVISOR;
    memcpy(&regs, cpu.regs, sizeof regs);
    memcpy(&sregs, cpu.sregs, sizeof sregs);
    memcpy(&fpu, cpu.fpu, sizeof fpu);
    if (sb->have_fault) { /* the guest's own report (hardware KVM): the vCPU is in its handler */
        const struct hl_fault *f = &sb->fault;
        regs = (struct kvm_regs){ .rax = f->gpr[0], .rcx = f->gpr[1], .rdx = f->gpr[2], .rbx = f->gpr[3],
                                  .rsp = f->rsp, .rbp = f->gpr[5], .rsi = f->gpr[6], .rdi = f->gpr[7],
                                  .r8 = f->gpr[8], .r9 = f->gpr[9], .r10 = f->gpr[10], .r11 = f->gpr[11],
                                  .r12 = f->gpr[12], .r13 = f->gpr[13], .r14 = f->gpr[14], .r15 = f->gpr[15],
                                  .rip = f->rip, .rflags = f->rflags };
        sregs.cr2 = f->cr2;
    }

    /* The segments, from the host's layout only. */
    if (nreg < 0 || nreg > HL_MAX_REGIONS) nreg = 0;
    for (int i = 0; i < nreg; i++) {
        const hl_region *r = &sb->lo.regions[i];
        if (!r->perm || !r->size || r->gpa % HL_PAGE || r->size % HL_PAGE || r->gpa + r->size < r->gpa) continue;
        segs[nseg].r = r;
        segs[nseg].src = hl_gpa_ro(sb, r->gpa, r->size); /* NULL beyond the memory image */
        nseg++;
    }

    /* Notes. */
    fill_prstatus(&prs, &regs, &sregs, sig);
    memset(&psi, 0, sizeof psi);
    psi.pr_state = 'R';
    psi.pr_sname = 'R';
    psi.pr_pid = psi.pr_ppid = psi.pr_pgrp = psi.pr_sid = getpid();
    memcpy(psi.pr_fname, "hyperlight-guest", sizeof psi.pr_fname); /* 16 bytes, no NUL needed */
    snprintf(psi.pr_psargs, sizeof psi.pr_psargs, "hyperlight-guest");
    fill_fpregs(&fpr, &fpu);
    snprintf(text, sizeof text,
             "%s\nrip 0x%llx rsp 0x%llx rflags 0x%llx\ncr0 0x%llx cr2 0x%llx cr3 0x%llx cr4 0x%llx efer 0x%llx\n",
             why, (unsigned long long)regs.rip, (unsigned long long)regs.rsp, (unsigned long long)regs.rflags,
             (unsigned long long)sregs.cr0, (unsigned long long)sregs.cr2, (unsigned long long)sregs.cr3,
             (unsigned long long)sregs.cr4, (unsigned long long)sregs.efer);
    nb.cap = 4 * (sizeof(Elf64_Nhdr) + 12) + sizeof prs + sizeof psi + sizeof fpr + strlen(text) + 1 + 16;
    if (!(nb.p = calloc(1, nb.cap))) return hl_errf(err, HL_ERR_NO_MEMORY, "out of memory");
    note_add(&nb, "CORE", NT_PRSTATUS, &prs, sizeof prs);
    note_add(&nb, "CORE", NT_PRPSINFO, &psi, sizeof psi);
    note_add(&nb, "CORE", NT_FPREGSET, &fpr, sizeof fpr);
    note_add(&nb, "HYPERLIGHT", HL_NT_FAULT, text, strlen(text) + 1);

    /* Headers, notes, then page-aligned segment contents. */
    notes_off = sizeof(Elf64_Ehdr) + (size_t)(nseg + 1) * sizeof(Elf64_Phdr);
    hdr_len = notes_off + nb.len;
    data_off = HL_ALIGN_UP(hdr_len, HL_PAGE);
    total = data_off;
    for (int i = 0; i < nseg; i++) {
        segs[i].off = total;
        if (segs[i].src) total += segs[i].r->size;
    }
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && total > rl.rlim_cur) {
        st = hl_errf(err, HL_ERR_IO, "core of %llu bytes exceeds the file size limit (RLIMIT_FSIZE %llu)",
                     (unsigned long long)total, (unsigned long long)rl.rlim_cur);
        goto out;
    }
    if (!(hdr = calloc(1, hdr_len))) {
        st = hl_errf(err, HL_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
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
    ph[0] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = notes_off, .p_filesz = nb.len, .p_align = 4 };
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
    memcpy(hdr + notes_off, nb.p, nb.len);

    /* A new file of our own: O_EXCL, no symlink followed, relative to the opened directory. */
    if ((dfd = open(sb->core_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        st = hl_errf(err, HL_ERR_IO, "cannot open directory '%s': %s", sb->core_dir, strerror(errno));
        goto out;
    }
    for (int tries = 0; fd < 0 && tries < MAX_NAME_TRIES; tries++) {
        snprintf(name, sizeof name, "hyperlight-%d-%llu-%lld.core", (int)getpid(),
                 (unsigned long long)__atomic_add_fetch(&core_counter, 1, __ATOMIC_RELAXED), (long long)time(NULL));
        fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST && errno != EINTR) break;
    }
    if (fd < 0) {
        st = hl_errf(err, HL_ERR_IO, "cannot create a file in '%s': %s", sb->core_dir, strerror(errno));
        goto out;
    }
    if (!write_all(fd, hdr, hdr_len, 0)) goto write_failed;
    for (int i = 0; i < nseg; i++)
        if (segs[i].src && !write_sparse(fd, segs[i].src, segs[i].r->size, segs[i].off)) goto write_failed;
    if (ftruncate(fd, (off_t)total) < 0) goto write_failed; /* trailing holes */
    if (close(fd) < 0) {
        fd = -1;
        goto write_failed;
    }
    fd = -1;
    snprintf(path, pathlen, "%s/%s", sb->core_dir, name);
    st = HL_OK;
    goto out;
write_failed:
    e = errno;
    hl_errf(err, HL_ERR_IO, "writing '%s/%s': %s", sb->core_dir, name, strerror(e));
    if (fd >= 0) close(fd);
    fd = -1;
    unlinkat(dfd, name, 0);
out:
    if (fd >= 0) close(fd);
    if (dfd >= 0) close(dfd);
    free(hdr);
    free(nb.p);
    return st;
}

/* Appends suffix to sb->err, shortening the description if both do not fit. */
static void append_err(hl_sandbox *sb, const char *suffix)
{
    size_t sl = strlen(suffix), el = strnlen(sb->err, sizeof sb->err);
    if (sl >= sizeof sb->err) sl = sizeof sb->err - 1;
    if (el + sl >= sizeof sb->err) {
        el = sizeof sb->err - 1 - sl;
        if (el >= 3) memcpy(sb->err + el - 3, "...", 3);
    }
    memcpy(sb->err + el, suffix, sl);
    sb->err[el + sl] = 0;
}

hl_status hl_coredump_fault(hl_sandbox *sb, hl_status st, int sig)
{
    char path[HL_CORE_DIR_MAX + 128], why[HL_ERR_LEN], suffix[HL_ERR_LEN];
    if (!sb->core_dir[0]) return st;
    if (!sig && sb->have_fault) {
        sig = exception_signal((int)sb->fault.vector);
    } else if (!sig) {
        hl_vm_state vs;
        sig = hl_vm_state_get(&sb->vm, &vs) == HL_OK ? exception_signal(vs.exception) : SIGSEGV;
    }
    why[0] = 0;
    if (write_core(sb, sb->err, sig, path, sizeof path, why) == HL_OK)
        snprintf(suffix, sizeof suffix, " (core dump: %s)", path);
    else
        snprintf(suffix, sizeof suffix, " (core dump failed: %s)", why[0] ? why : "unknown error");
    append_err(sb, suffix);
    return st;
}

hl_status hl_coredump_skip(hl_sandbox *sb, hl_status st, const char *why)
{
    char suffix[HL_ERR_LEN];
    if (!sb->core_dir[0]) return st;
    snprintf(suffix, sizeof suffix, " (no core dump: %s)", why);
    append_err(sb, suffix);
    return st;
}

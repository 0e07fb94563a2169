/* test_coredump.c - opt-in crash dumps (hl_config_set_core_dir, docs/coredump.md).
 *
 * tests/guests/hostile_guest.c faults on purpose (NULL write, stack overflow, ud2, int 0x80);
 * with a core directory each fault must leave an ELF core file there, named in the error
 * message, that this test parses itself (ET_CORE, NT_PRSTATUS rip = the rip in the message,
 * PT_LOADs holding the guest's code and read-only data as in its ELF) and, when gdb is
 * installed, that gdb opens with the guest's ELF and disassembles at the faulting rip.
 * Also: no dump without the option; bad directories are refused when set; a directory that
 * disappears later makes the message say the dump failed; the sandbox is poisoned as usual
 * and a restore from a snapshot makes it work again. */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <unistd.h>

#include "harness.h"

static char tmpdir[256];


static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    if (!d) return;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_type == DT_DIR) remove_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static uint8_t *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n)) &&
        fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    if (p) *len = (size_t)n;
    fclose(f);
    return p;
}

/* ---- the core file, as gdb would read it ---- */
typedef struct core {
    uint8_t *data;
    size_t len;
    const Elf64_Ehdr *eh;
    const Elf64_Phdr *ph;
    int nload, nnote;
    bool has_prstatus, has_prpsinfo, has_fpregs;
    struct elf_prstatus prs;
    struct elf_prpsinfo psi;
    char text[1024]; /* the HYPERLIGHT note */
} core;

/* Parses the headers and notes, checking every offset against the file size. */
static bool core_parse(core *c)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)c->data;
    if (c->len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64)
        return false;
    c->eh = eh;
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > c->len ||
        (c->len - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
        return false;
    c->ph = (const Elf64_Phdr *)(c->data + eh->e_phoff);
    for (int i = 0; i < eh->e_phnum; i++) {
        const Elf64_Phdr *p = &c->ph[i];
        if (p->p_offset > c->len || p->p_filesz > c->len - p->p_offset) return false;
        if (p->p_type == PT_LOAD) {
            c->nload++;
            if (p->p_vaddr % 4096 || p->p_offset % 4096 || p->p_memsz % 4096 || p->p_filesz > p->p_memsz) return false;
        } else if (p->p_type == PT_NOTE) {
            size_t at = p->p_offset, end = p->p_offset + p->p_filesz;
            c->nnote++;
            while (at + sizeof(Elf64_Nhdr) <= end) {
                Elf64_Nhdr nh;
                const char *name;
                const uint8_t *desc;
                memcpy(&nh, c->data + at, sizeof nh);
                name = (const char *)c->data + at + sizeof nh;
                desc = c->data + at + sizeof nh + ((nh.n_namesz + 3) & ~3u);
                at += sizeof nh + ((nh.n_namesz + 3) & ~3u) + ((nh.n_descsz + 3) & ~3ul);
                if (at > end) return false;
                if (nh.n_namesz == 5 && !memcmp(name, "CORE", 5)) {
                    if (nh.n_type == NT_PRSTATUS && nh.n_descsz == sizeof c->prs) {
                        memcpy(&c->prs, desc, sizeof c->prs);
                        c->has_prstatus = true;
                    } else if (nh.n_type == NT_PRPSINFO && nh.n_descsz == sizeof c->psi) {
                        memcpy(&c->psi, desc, sizeof c->psi);
                        c->has_prpsinfo = true;
                    } else if (nh.n_type == NT_FPREGSET && nh.n_descsz == sizeof(struct user_fpregs_struct)) {
                        c->has_fpregs = true;
                    }
                } else if (nh.n_namesz == 11 && !memcmp(name, "HYPERLIGHT", 11) && nh.n_type == 0x484c0001u) {
                    snprintf(c->text, sizeof c->text, "%.*s", (int)nh.n_descsz, (const char *)desc);
                }
            }
        }
    }
    return true;
}

/* The core's bytes for guest range [a, a+len), or NULL if no PT_LOAD holds them. */
static const uint8_t *core_mem(const core *c, uint64_t a, uint64_t len, uint32_t *flags)
{
    for (int i = 0; i < c->eh->e_phnum; i++) {
        const Elf64_Phdr *p = &c->ph[i];
        if (p->p_type == PT_LOAD && a >= p->p_vaddr && a - p->p_vaddr <= p->p_filesz &&
            len <= p->p_filesz - (a - p->p_vaddr)) {
            if (flags) *flags = p->p_flags;
            return c->data + p->p_offset + (a - p->p_vaddr);
        }
    }
    return NULL;
}

static struct user_regs_struct core_regs(const core *c)
{
    struct user_regs_struct u;
    memcpy(&u, &c->prs.pr_reg, sizeof u);
    return u;
}

/* The guest ELF's executable and read-only segments must be in the core, byte for byte. */
static void check_image(const core *c)
{
    size_t len = 0;
    uint8_t *elf = read_whole(guest_path("hostile_guest"), &len);
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf;
    int ncode = 0;
    CHECK(elf != NULL);
    if (!elf) return;
    for (int i = 0; i < eh->e_phnum; i++) {
        const Elf64_Phdr *p = (const Elf64_Phdr *)(elf + eh->e_phoff) + i;
        uint32_t fl = 0;
        const uint8_t *m;
        if (p->p_type != PT_LOAD || (p->p_flags & PF_W) || !p->p_filesz) continue;
        m = core_mem(c, p->p_vaddr, p->p_filesz, &fl);
        CHECK(m != NULL);
        if (!m) continue;
        CHECK(memcmp(m, elf + p->p_offset, p->p_filesz) == 0);
        CHECK_INT(fl, p->p_flags);
        if (p->p_flags & PF_X) ncode++;
    }
    CHECK(ncode >= 1);
    free(elf);
    /* read-only data of the guest, found in the core */
    {
        static const char s[] = "read-only data of the hostile guest";
        bool found = false;
        for (int i = 0; i < c->eh->e_phnum && !found; i++)
            if (c->ph[i].p_type == PT_LOAD && !(c->ph[i].p_flags & PF_W))
                found = memmem(c->data + c->ph[i].p_offset, c->ph[i].p_filesz, s, sizeof s) != NULL;
        CHECK(found);
    }
}

/* gdb with the guest's ELF and the core: the same rip, and an instruction disassembled there. */
static void check_gdb(const char *path, uint64_t rip, const char *insn, char *out, size_t outlen)
{
    char cmd[2048], line[512], want[64];
    FILE *p;
    size_t at = 0;
    int rc;
    out[0] = 0;
    if (access("/usr/bin/gdb", X_OK) != 0) {
        printf("  gdb not installed: not run\n");
        return;
    }
    snprintf(cmd, sizeof cmd, "gdb -nx -batch -ex 'info registers rip' -ex 'x/2i $pc' -ex 'bt 3' '%s' '%s' 2>&1",
             guest_path("hostile_guest"), path);
    p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p) return;
    while (fgets(line, sizeof line, p)) {
        size_t l = strlen(line);
        if (at + l < outlen) {
            memcpy(out + at, line, l + 1);
            at += l;
        }
    }
    rc = pclose(p);
    CHECK_INT(rc, 0);
    snprintf(want, sizeof want, "0x%llx", (unsigned long long)rip);
    {
        const char *r = strstr(out, "\nrip ");
        if (!r && !strncmp(out, "rip ", 4)) r = out - 1;
        CHECK(r != NULL);
        if (r) CHECK_HAS(r, want);
    }
    snprintf(want, sizeof want, "=> 0x%llx", (unsigned long long)rip);
    CHECK_HAS(out, want);
    if (insn) CHECK_HAS(out, insn);
    snprintf(want, sizeof want, "Cannot access memory at address 0x%llx", (unsigned long long)rip);
    CHECK(strstr(out, want) == NULL);
}

/* Calls fn in a fresh sandbox made from cfg; expects a fault and a core file that holds what
 * the message says (want_sig: the signal the core reports; 0: any). */
static void fault_case(hl_config *cfg, const char *label, const char *fn, int want_sig, const char *insn, bool show_gdb)
{
    hl_sandbox *sb = must_sandbox("hostile_guest", cfg);
    hl_value r, a = hl_i32(1);
    char msg[1024], path[600], gdbout[8192], prefix[400];
    const char *at, *ripat;
    uint64_t rip = 0;
    core c;
    struct stat st;
    hl_status s = hl_call(sb, fn, HL_I32, NULL, 0, &r);
    int before = check_failures;

    snprintf(msg, sizeof msg, "%s", hl_last_error(sb));
    printf("  %-16s %s\n", label, msg);
    CHECK_INT(s, HL_ERR_FAULT);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    snprintf(prefix, sizeof prefix, " (core dump: %s/hyperlight-%d-", tmpdir, (int)getpid());
    CHECK_HAS(msg, prefix);
    /* the poisoned sandbox refuses the next call, naming the fault and the core */
    CHECK_INT(hl_call(sb, "Ping", HL_I32, &a, 1, &r), HL_ERR_STATE);
    CHECK_HAS(hl_last_error(sb), msg);
    hl_sandbox_free(sb);

    at = strstr(msg, " (core dump: ");
    ripat = strstr(msg, "rip 0x");
    CHECK(at && ripat && ripat < at);
    if (!at || !ripat) return;
    rip = strtoull(ripat + 4, NULL, 16);
    snprintf(path, sizeof path, "%s", at + strlen(" (core dump: "));
    if (strchr(path, ')')) *strchr(path, ')') = 0;
    CHECK(strlen(path) > 5 && !strcmp(path + strlen(path) - 5, ".core"));

    CHECK_INT(lstat(path, &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_INT(st.st_mode & 0777, 0600);

    memset(&c, 0, sizeof c);
    c.data = read_whole(path, &c.len);
    CHECK(c.data != NULL);
    if (!c.data) return;
    CHECK(core_parse(&c));
    if (c.eh) {
        struct user_regs_struct u = core_regs(&c);
        CHECK_INT(c.eh->e_type, ET_CORE);
        CHECK_INT(c.eh->e_machine, EM_X86_64);
        CHECK_INT(c.nnote, 1);
        CHECK(c.nload >= 9); /* PEB, code, rodata, data, meta, heap, stack, input, output */
        CHECK(c.has_prstatus && c.has_prpsinfo && c.has_fpregs);
        CHECK_INT(u.rip, rip);
        if (want_sig) CHECK_INT(c.prs.pr_cursig, want_sig);
        CHECK(strncmp(c.psi.pr_fname, "hyperlight-guest", sizeof c.psi.pr_fname) == 0);
        CHECK(u.rsp != 0);
        CHECK(core_mem(&c, u.rip, 2, NULL) != NULL);
        /* the fault description travels in the core too */
        {
            char desc[512];
            snprintf(desc, sizeof desc, "%.*s", (int)(at - msg), msg);
            CHECK_HAS(c.text, desc);
        }
        check_image(&c);
    }
    free(c.data);
    check_gdb(path, rip, insn, gdbout, sizeof gdbout);
    if (show_gdb) printf("  gdb session for %s:\n%s", label, gdbout);
    if (check_failures > before) fprintf(stderr, "  ^ in case %s: %s\n  gdb:\n%s", label, msg, gdbout);
}

static void test_setter(void)
{
    hl_config *cfg = hl_config_new();
    char file[400], sub[400];
    FILE *f;
    CHECK_INT(hl_config_set_core_dir(NULL, tmpdir), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_config_set_core_dir(cfg, NULL), HL_OK);
    CHECK_INT(hl_config_set_core_dir(cfg, ""), HL_OK);
    CHECK_INT(hl_config_set_core_dir(cfg, "/nonexistent/hyperlight-cores"), HL_ERR_INVALID_ARG);
    CHECK_HAS(hl_config_error(cfg), "core dump directory '/nonexistent/hyperlight-cores': No such file");
    snprintf(file, sizeof file, "%s/a-file", tmpdir);
    f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    CHECK_INT(hl_config_set_core_dir(cfg, file), HL_ERR_INVALID_ARG);
    CHECK_HAS(hl_config_error(cfg), "not a directory");
    unlink(file);
    if (geteuid() != 0) { /* root may write anywhere */
        snprintf(sub, sizeof sub, "%s/ro", tmpdir);
        CHECK_INT(mkdir(sub, 0500), 0);
        CHECK_INT(hl_config_set_core_dir(cfg, sub), HL_ERR_INVALID_ARG);
        CHECK_HAS(hl_config_error(cfg), "not writable");
        rmdir(sub);
    }
    {
        char longdir[400];
        memset(longdir, 'a', sizeof longdir - 1);
        longdir[0] = '/';
        longdir[sizeof longdir - 1] = 0;
        CHECK_INT(hl_config_set_core_dir(cfg, longdir), HL_ERR_INVALID_ARG);
    }
    /* a relative path is kept absolute */
    {
        char cwd[512];
        if (getcwd(cwd, sizeof cwd) && chdir(tmpdir) == 0) {
            CHECK_INT(hl_config_set_core_dir(cfg, "."), HL_OK);
            CHECK_STR(hl_config_error(cfg), "");
            CHECK_INT(chdir(cwd), 0);
        }
    }
    hl_config_free(cfg);
}

/* Without the option nothing is written, and a refused setting leaves the old one. */
static void test_off(void)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb;
    hl_value r;
    int n0 = count_files(tmpdir);
    CHECK_INT(hl_config_set_core_dir(cfg, tmpdir), HL_OK);
    CHECK_INT(hl_config_set_core_dir(cfg, ""), HL_OK); /* off again */
    sb = must_sandbox("hostile_guest", cfg);
    CHECK_INT(hl_call(sb, "WriteNull", HL_I32, NULL, 0, &r), HL_ERR_FAULT);
    CHECK_HAS(hl_last_error(sb), "guest fault: NULL pointer write at 0x0, rip 0x");
    CHECK(strstr(hl_last_error(sb), "core dump") == NULL);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    cfg = hl_config_new();
    sb = must_sandbox("hostile_guest", cfg);
    CHECK_INT(hl_call(sb, "Ud2", HL_I32, NULL, 0, &r), HL_ERR_FAULT);
    CHECK(strstr(hl_last_error(sb), "core dump") == NULL);
    hl_sandbox_free(sb);
    CHECK_INT(count_files(tmpdir), n0);
    /* a refused directory leaves the previous setting */
    CHECK_INT(hl_config_set_core_dir(cfg, tmpdir), HL_OK);
    CHECK_INT(hl_config_set_core_dir(cfg, "/nonexistent"), HL_ERR_INVALID_ARG);
    sb = must_sandbox("hostile_guest", cfg);
    CHECK_INT(hl_call(sb, "WriteNull", HL_I32, NULL, 0, &r), HL_ERR_FAULT);
    CHECK_HAS(hl_last_error(sb), " (core dump: ");
    hl_sandbox_free(sb);
    CHECK_INT(count_files(tmpdir), n0 + 1);
    hl_config_free(cfg);
}

/* A directory removed after the setting: the fault is reported, the dump failure named. */
static void test_dir_gone(void)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb;
    hl_value r, a = hl_i32(1);
    char sub[400];
    snprintf(sub, sizeof sub, "%s/gone", tmpdir);
    CHECK_INT(mkdir(sub, 0700), 0);
    CHECK_INT(hl_config_set_core_dir(cfg, sub), HL_OK);
    sb = must_sandbox("hostile_guest", cfg);
    CHECK_INT(rmdir(sub), 0);
    CHECK_INT(hl_call(sb, "WriteNull", HL_I32, NULL, 0, &r), HL_ERR_FAULT);
    printf("  %-16s %s\n", "dir removed", hl_last_error(sb));
    CHECK_HAS(hl_last_error(sb), "guest fault: NULL pointer write at 0x0, rip 0x");
    CHECK_HAS(hl_last_error(sb), " (core dump failed: cannot open directory '");
    CHECK_HAS(hl_last_error(sb), "No such file or directory)");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    CHECK_INT(hl_call(sb, "Ping", HL_I32, &a, 1, &r), HL_ERR_STATE);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* A sandbox with a snapshot: each fault leaves its own core, and restore makes it Ready. */
static void test_restore(hl_config *cfg)
{
    hl_sandbox *sb = must_sandbox("hostile_guest", cfg), *sb2;
    hl_snapshot *snap = NULL;
    hl_value r, a = hl_i32(41);
    char first[512] = "";
    int n0 = count_files(tmpdir);
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    for (int i = 0; i < 2; i++) {
        const char *p;
        CHECK_INT(hl_call(sb, "RecurseForever", HL_I32, NULL, 0, &r), HL_ERR_FAULT);
        p = strstr(hl_last_error(sb), " (core dump: ");
        CHECK(p != NULL);
        if (p && i == 0) snprintf(first, sizeof first, "%s", p);
        if (p && i == 1) CHECK(strcmp(first, p) != 0); /* a new file each time */
        CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
        CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
        CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
        CHECK_INT(hl_call(sb, "Ping", HL_I32, &a, 1, &r), HL_OK);
        CHECK_INT(r.v.i32, 42);
    }
    CHECK_INT(count_files(tmpdir), n0 + 2);
    /* a sandbox made from the snapshot takes the core directory from its configuration */
    CHECK_INT(hl_sandbox_new_from_snapshot(&sb2, snap, cfg), HL_OK);
    if (sb2) {
        CHECK_INT(hl_call(sb2, "Ud2", HL_I32, NULL, 0, &r), HL_ERR_FAULT);
        CHECK_HAS(hl_last_error(sb2), " (core dump: ");
        hl_sandbox_free(sb2);
    }
    CHECK_INT(count_files(tmpdir), n0 + 3);
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
}

int main(void)
{
    int fds0 = test_count_fds();
    hl_config *cfg;
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hl-coredump-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_setter();
    test_off();
    test_dir_gone();

    cfg = hl_config_new();
    CHECK_INT(hl_config_set_core_dir(cfg, tmpdir), HL_OK);
    fault_case(cfg, "write NULL", "WriteNull", SIGSEGV, "mov", true);
    fault_case(cfg, "stack overflow", "RecurseForever", SIGSEGV, NULL, false);
    fault_case(cfg, "ud2", "Ud2", SIGILL, "ud2", true);
    fault_case(cfg, "int $0x80", "Int80", 0, "int", false); /* emulation failure on kvm_pvm */
    test_restore(cfg);
    hl_config_free(cfg);

    remove_tree(tmpdir);
    CHECK(access(tmpdir, F_OK) != 0);
    CHECK_INT(test_count_fds(), fds0);
    return check_exit("test_coredump");
}

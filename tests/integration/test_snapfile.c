/* test_snapfile.c - snapshot files on real KVM: save/load round trips, restores across saved
 * and in-memory snapshots, every load error on truncated, corrupt, foreign and crafted files
 * (exact message, no fd leak), page-cache sharing of loaded memory, and the CLI's snapshot
 * support (tools/hyperlight.c, run as a program). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "snap_helpers.h"
#include "internal.h" /* the snapshot's layout, view and image, to compare and inspect */

#define ARENA_PAGES 1024

/* Header offsets (docs/snapshots.md). */
#define OFF_FORMAT 8
#define OFF_ABI 12
#define OFF_META_END 16
#define OFF_MEM_OFFSET 24
#define OFF_HEAP_SIZE 48
#define OFF_CPU 1680
#define OFF_META_SUM 2552
#define OFF_MEM_SUM 2560
#define OFF_HEADER_SUM 4088
#define HEADER 4096

static char dir[256];


static const char *get_str(hl_sandbox *sb)
{
    hl_value r;
    if (hl_call(sb, "GetStr", HL_STRING, NULL, 0, &r) != HL_OK) return "(error)";
    return hl_value_str(&r);
}

static const char *tmp(const char *name)
{
    static char p[8][512];
    static int next;
    char *s = p[next++ % 8];
    snprintf(s, sizeof p[0], "%s/%s", dir, name);
    return s;
}

static int fd_count(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Writes b[0, len) to path, sparse: all-zero pages become holes. */
static void write_file(const char *path, const void *b, size_t len)
{
    static const uint8_t zero[4096];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && ftruncate(fd, (off_t)len) == 0;
    for (size_t at = 0; ok && at < len; at += 4096) {
        size_t n = len - at < 4096 ? len - at : 4096;
        if (memcmp((const uint8_t *)b + at, zero, n))
            ok = pwrite(fd, (const uint8_t *)b + at, n, (off_t)at) == (ssize_t)n;
    }
    if (fd >= 0) close(fd);
    if (!ok) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static uint64_t get64(const uint8_t *b, size_t off)
{
    uint64_t v;
    memcpy(&v, b + off, 8);
    return v;
}

static void put64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }

/* Recomputes the checksums of a crafted file, so that only the intended change is caught. */
static void reseal(uint8_t *b)
{
    uint64_t meta_end = get64(b, OFF_META_END);
    put64(b, OFF_META_SUM, hl_checksum(b + HEADER, meta_end - HEADER));
    put64(b, OFF_HEADER_SUM, hl_checksum(b, OFF_HEADER_SUM));
}

/* Loads path expecting failure with status want and exactly message msg; no fd may leak. */
static void expect_load_error(const char *path, hl_status want, const char *msg, int line)
{
    hl_snapshot *s = (hl_snapshot *)1;
    char full[1024];
    int before = fd_count();
    hl_status st = hl_snapshot_load(&s, path);
    int fails = check_failures;
    snprintf(full, sizeof full, "snapshot file '%s': %s", path, msg);
    CHECK_INT(st, want);
    CHECK(s == NULL);
    CHECK_STR(hl_last_error(NULL), full);
    CHECK_INT(fd_count(), before);
    if (check_failures != fails) fprintf(stderr, "    (from line %d)\n", line);
    if (st == HL_OK) hl_snapshot_free(s);
}
#define EXPECT_LOAD_ERROR(path, st, msg) expect_load_error(path, st, msg, __LINE__)

/* Writes a modified copy of good (len bytes) and expects its load to fail with msg. */
static void expect_variant(const char *name, const uint8_t *good, size_t len, size_t cut, void (*edit)(uint8_t *),
                           hl_status want, const char *msg, int line)
{
    uint8_t *b = malloc(len + 1);
    memcpy(b, good, len);
    if (edit) edit(b);
    write_file(tmp(name), b, cut);
    expect_load_error(tmp(name), want, msg, line);
    free(b);
}

static uint64_t mem_offset_of(const uint8_t *b) { return get64(b, OFF_MEM_OFFSET); }

/* Edits for expect_variant. */
static size_t g_heap_byte; /* file offset of a byte of guest heap */
/* A region count above what a layout holds (the loader once wrote past its region table). */
static void edit_region_count(uint8_t *b)
{
    uint32_t n = 40;
    memcpy(b + 184, &n, 4);
    for (int i = 10; i < 40; i++) {
        uint32_t kind = 5, perm = 3;
        uint64_t gpa = 0x41414000, size = 0x1000;
        uint8_t *r = b + 720 + (size_t)i * 24;
        memcpy(r, &kind, 4), memcpy(r + 4, &perm, 4), memcpy(r + 8, &gpa, 8), memcpy(r + 16, &size, 8);
    }
    reseal(b);
}

static void edit_header_byte(uint8_t *b) { b[OFF_HEAP_SIZE + 2] ^= 0x01; }
static void edit_reserved_byte(uint8_t *b) { b[3000] = 1; }
static void edit_meta_byte(uint8_t *b) { b[HEADER + 1] ^= 0x20; }
static void edit_padding(uint8_t *b) { b[mem_offset_of(b) - 1] = 1; }
static void edit_memory_byte(uint8_t *b) { b[g_heap_byte] ^= 0x40; }
static void edit_code_byte(uint8_t *b) { b[mem_offset_of(b) + HL_IMAGE_BASE + 17] ^= 0x01; }
static void edit_format(uint8_t *b) { b[OFF_FORMAT] = 2; }
static void edit_abi(uint8_t *b) { b[OFF_ABI] = 7; }
static void edit_magic(uint8_t *b) { memcpy(b, "HLSNAP02", 8); }
static void edit_heap_size(uint8_t *b)
{
    put64(b, OFF_HEAP_SIZE, 12345);
    reseal(b);
}
static void edit_rip(uint8_t *b)
{
    put64(b, OFF_CPU + 16 * 8, 0x1000); /* the PEB: readable, not executable */
    reseal(b);
}
static void edit_rsp(uint8_t *b)
{
    put64(b, OFF_CPU + 6 * 8, 0x10);
    reseal(b);
}
/* File offset of the entry of guest function `name` in the metadata. */
static size_t fn_entry(const uint8_t *b, const char *name)
{
    const uint8_t *m = b + HEADER;
    size_t at = 0;
    while (m[at] != strlen(name) || memcmp(m + at + 1, name, strlen(name)))
        at += 1 + m[at] + 2 + m[at + 1 + m[at] + 1];
    return HEADER + at;
}
/* Rename Fill to Incr (same length). */
static void edit_dup_name(uint8_t *b)
{
    memcpy(b + fn_entry(b, "Fill") + 1, "Incr", 4);
    reseal(b);
}
static void edit_bad_type(uint8_t *b)
{
    b[fn_entry(b, "Incr") + 1 + 4] = 10; /* Incr's return type */
    reseal(b);
}
static void edit_host_param(uint8_t *b)
{
    b[fn_entry(b, "Twice") + 1 + 5 + 2] = HL_VOID; /* its one parameter */
    reseal(b);
}
static void edit_empty_name(uint8_t *b)
{
    b[HEADER] = 0; /* the first guest function's name length */
    reseal(b);
}
static void edit_mem_length(uint8_t *b)
{
    put64(b, 32, get64(b, 32) + 4096);
    reseal(b);
}
/* The layout against the one hl_layout_build makes of the header's image and sizes. */
static void edit_stack_gpa(uint8_t *b)
{
    put64(b, 152, get64(b, 152) + 4096); /* the stack's address field, not its region */
    reseal(b);
}
static void edit_code_perm(uint8_t *b)
{
    b[720 + 24 + 4] = 7; /* region 1, the code: R+W+X */
    reseal(b);
}
static void edit_pt_end(uint8_t *b)
{
    put64(b, 112, get64(b, 112) + 4096);
    reseal(b);
}
static void edit_entry(uint8_t *b)
{
    put64(b, 120, HL_PEB_GPA);
    reseal(b);
}

/* Finds the smaps entry of the mapping starting at addr; returns the value (kB) of field. */
static long smaps_field(const void *addr, const char *field)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512], want[64];
    bool in = false;
    long v = -1;
    snprintf(want, sizeof want, "%lx-", (unsigned long)addr);
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) in = !strncmp(line, want, strlen(want));
        else if (in && !strncmp(line, field, strlen(field)) && line[strlen(field)] == ':')
            v = atol(line + strlen(field) + 1);
    }
    if (f) fclose(f);
    return v;
}

/* Physical frame of the page at addr (needs CAP_SYS_ADMIN; 0 if unknown). */
static uint64_t pfn_of(const void *addr)
{
    uint64_t e = 0;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0) return 0;
    if (pread(fd, &e, 8, (off_t)((uintptr_t)addr / 4096 * 8)) != 8) e = 0;
    close(fd);
    return (e >> 63) ? e & ((1ull << 55) - 1) : 0;
}

/* ---- the CLI ---- */
static const char *cli(void)
{
    static char p[512];
    const char *b = getenv("HL_BUILD");
    snprintf(p, sizeof p, "%s/bin/hyperlight", b ? b : "build");
    return p;
}

/* Runs the CLI with args; returns its exit status, stdout in out and stderr in err. */
static int run_cli(const char *args, char *out, size_t outlen, char *err, size_t errlen)
{
    char cmd[2048];
    size_t n;
    int status;
    FILE *p;
    snprintf(cmd, sizeof cmd, "timeout 60 %s %s 2>%s", cli(), args, tmp("cli.err"));
    p = popen(cmd, "r");
    n = fread(out, 1, outlen - 1, p);
    out[n] = 0;
    status = pclose(p);
    {
        size_t elen = 0;
        uint8_t *e = read_file(tmp("cli.err"), &elen);
        if (elen >= errlen) elen = errlen - 1;
        memcpy(err, e ? (char *)e : "", e ? elen : 0);
        err[e ? elen : 0] = 0;
        free(e);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_cli(void)
{
    char out[8192], err[8192], out2[8192], args[1536];
    const char *elf = guest_path("snap_guest");
    struct stat st;
    size_t len;
    uint8_t *b;

    if (access(cli(), X_OK) != 0) {
        fprintf(stderr, "%s: %s (make all builds it): CLI checks skipped\n", cli(), strerror(errno));
        CHECK(!"the CLI is built");
        return;
    }

    snprintf(args, sizeof args, "snapshot %s %s Incr", elf, tmp("cli1.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "1\n");
    CHECK_STR(err, "");
    snprintf(args, sizeof args, "call %s Incr", tmp("cli1.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "2\n");
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0); /* each run starts from the file */
    CHECK_STR(out, "2\n");
    snprintf(args, sizeof args, "call %s Generation", tmp("cli1.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "1\n");
    snprintf(args, sizeof args, "call %s Fill 3 9", tmp("cli1.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "3\n");
    /* info on the snapshot lists what info on the ELF lists */
    snprintf(args, sizeof args, "info %s", elf);
    CHECK_INT(run_cli(args, out2, sizeof out2, err, sizeof err), 0);
    snprintf(args, sizeof args, "info %s", tmp("cli1.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, out2);
    CHECK_HAS(out, "Fill(u32, u32) -> u32\n");
    /* a snapshot of a sandbox made from a snapshot file */
    snprintf(args, sizeof args, "snapshot %s %s SetStr hello", tmp("cli1.snap"), tmp("cli2.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "");
    snprintf(args, sizeof args, "call %s GetStr", tmp("cli2.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "hello\n");
    snprintf(args, sizeof args, "call %s Generation", tmp("cli2.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "2\n");
    snprintf(args, sizeof args, "call %s Get", tmp("cli2.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "1\n");
    /* no FUNCTION: the state right after initialisation; sizes apply to an ELF */
    snprintf(args, sizeof args, "snapshot --heap 128K --scratch 64K %s %s", elf, tmp("cli3.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "");
    snprintf(args, sizeof args, "call %s Get", tmp("cli3.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "0\n");
    /* a failing call: exit 1, nothing saved */
    snprintf(args, sizeof args, "snapshot %s %s Crash", elf, tmp("cli4.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 1);
    CHECK_HAS(err, "hyperlight: guest fault: NULL pointer write");
    CHECK(stat(tmp("cli4.snap"), &st) < 0 && errno == ENOENT);
    snprintf(args, sizeof args, "snapshot %s %s Nope", elf, tmp("cli4.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 1);
    CHECK_STR(err, "hyperlight: guest function 'Nope' not found\n");
    CHECK(stat(tmp("cli4.snap"), &st) < 0 && errno == ENOENT);
    /* a snapshot that cannot be written */
    snprintf(args, sizeof args, "snapshot %s %s/no/such/dir.snap", elf, dir);
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 1);
    CHECK_HAS(err, "/no/such/dir.snap': cannot create '");
    CHECK_HAS(err, "': No such file or directory\n");
    /* usage errors */
    snprintf(args, sizeof args, "snapshot %s", elf);
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 2);
    CHECK_HAS(err, "hyperlight: snapshot: missing OUT.snap\n\nusage:");
    CHECK_INT(run_cli("snapshot", out, sizeof out, err, sizeof err), 2);
    CHECK_HAS(err, "hyperlight: snapshot: missing GUEST\n");
    snprintf(args, sizeof args, "call --heap 8M %s Get", tmp("cli1.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 2);
    CHECK_HAS(err, "hyperlight: --heap does not apply to a snapshot file (its sizes are fixed)\n");
    CHECK_INT(run_cli("--help", out, sizeof out, err, sizeof err), 0);
    CHECK_HAS(out, "hyperlight snapshot [OPTIONS] GUEST OUT.snap [FUNCTION [ARG...]]");
    snprintf(args, sizeof args, "call %s Incr i32:1", tmp("cli1.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 1);
    CHECK_STR(err, "hyperlight: wrong number of arguments to guest function 'Incr': got 1, expected 0\n");
    /* a corrupt snapshot file */
    b = read_file(tmp("cli1.snap"), &len);
    b[mem_offset_of(b) + HL_IMAGE_BASE + 100] ^= 1;
    write_file(tmp("cli5.snap"), b, len);
    free(b);
    snprintf(args, sizeof args, "call %s Get", tmp("cli5.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 1);
    snprintf(out2, sizeof out2, "hyperlight: snapshot file '%s': corrupt memory image (checksum mismatch)\n",
             tmp("cli5.snap"));
    CHECK_STR(err, out2);
    CHECK_STR(out, "");
    /* the ELF path is unchanged */
    snprintf(args, sizeof args, "call %s Incr", elf);
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "1\n");
    snprintf(args, sizeof args, "call %s Get", tmp("nonexistent"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 1);
    CHECK_HAS(err, "cannot open guest");
}

/* The CLI refuses args as a usage error (exit status 2, nothing on stdout) whose stderr
 * starts with "hyperlight: " + msg and then the usage text. */
static void cli_usage(const char *args, const char *msg)
{
    char out[8192], err[8192], want[1024];
    snprintf(want, sizeof want, "hyperlight: %s\n\nusage: ", msg);
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 2);
    CHECK_STR(out, "");
    CHECK_INT(strncmp(err, want, strlen(want)), 0);
    if (strncmp(err, want, strlen(want)) != 0) fprintf(stderr, "    for %s: stderr %.200s\n", args, err);
}

/* Every numeric option refuses what is not a number in range, never wrapping; "--" ends the
 * options for every command. */
static void test_cli_options(void)
{
    static const char *const sizes[] = { "--heap", "--scratch", "--input-size", "--output-size" };
    static const struct {
        const char *value, *why;
    } bad_sizes[] = {
        { "18014398509483008K", "too large" }, /* 2^64 + 1 MiB: wrapped to 1 MiB */
        { "17592186044416M", "too large" },    /* 2^64 exactly */
        { "17179869184G", "too large" },
        { "18446744073709551616", "too large" },
        { "99999999999999999999999", "too large" },
        { "-1", "negative" },
        { "-4K", "negative" },
        { "", "empty" },
        { "4X", "not a byte count with an optional K, M or G suffix" },
        { "4KB", "not a byte count with an optional K, M or G suffix" },
        { "4K ", "not a byte count with an optional K, M or G suffix" },
        { " 4K", "not a byte count with an optional K, M or G suffix" },
        { "+4K", "not a byte count with an optional K, M or G suffix" },
        { "0x1000", "not a byte count with an optional K, M or G suffix" },
        { "K", "not a byte count with an optional K, M or G suffix" },
        { "1.5M", "not a byte count with an optional K, M or G suffix" },
    };
    static const struct {
        const char *value, *why;
    } bad_ms[] = {
        { "18446744073709551616", "too large" },
        { "-5", "negative" },
        { "", "empty" },
        { "0", "must be at least 1" },
        { "4K", "not a number of milliseconds" },
        { "10ms", "not a number of milliseconds" },
        { " 10", "not a number of milliseconds" },
    };
    const char *elf = guest_path("snap_guest");
    char args[1536], msg[512], out[8192], err[8192];

    for (size_t o = 0; o < sizeof sizes / sizeof sizes[0]; o++)
        for (size_t v = 0; v < sizeof bad_sizes / sizeof bad_sizes[0]; v++) {
            snprintf(args, sizeof args, "call %s '%s' %s Incr", sizes[o], bad_sizes[v].value, elf);
            snprintf(msg, sizeof msg, "%s: bad size '%s': %s", sizes[o], bad_sizes[v].value, bad_sizes[v].why);
            cli_usage(args, msg);
        }
    for (size_t v = 0; v < sizeof bad_ms / sizeof bad_ms[0]; v++) {
        snprintf(args, sizeof args, "call --timeout '%s' %s Incr", bad_ms[v].value, elf);
        snprintf(msg, sizeof msg, "--timeout: bad time limit '%s': %s", bad_ms[v].value, bad_ms[v].why);
        cli_usage(args, msg);
        snprintf(args, sizeof args, "call --init-timeout '%s' %s Incr", bad_ms[v].value, elf);
        snprintf(msg, sizeof msg, "--init-timeout: bad time limit '%s': %s", bad_ms[v].value, bad_ms[v].why);
        cli_usage(args, msg);
    }
    /* in range but refused by the library: its message */
    snprintf(args, sizeof args, "call --heap 16G %s Incr", elf);
    cli_usage(args, "heap size 17179869184 is above the maximum 268435456");
    snprintf(args, sizeof args, "call --heap 18446744073709551615 %s Incr", elf);
    cli_usage(args, "heap size 18446744073709551615 is above the maximum 268435456");
    /* an unknown option is named as such, whatever follows it */
    snprintf(args, sizeof args, "call --bogus 4K %s Incr", elf);
    cli_usage(args, "unknown option --bogus");
    snprintf(args, sizeof args, "call --heap");
    cli_usage(args, "option --heap needs a value");
    /* good values still work */
    snprintf(args, sizeof args,
             "call --heap 8M --scratch 128k --input-size 1m --output-size 65536 --timeout 60000 --init-timeout 60000 %s Incr",
             elf);
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "1\n");
    CHECK_STR(err, "");

    /* "--" ends the options, for every command */
    snprintf(args, sizeof args, "call -- %s Incr", elf);
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "1\n");
    CHECK_STR(err, "");
    snprintf(args, sizeof args, "call --heap 8M --timeout 60000 -- %s Incr", elf);
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "1\n");
    CHECK_STR(err, "");
    snprintf(args, sizeof args, "info -- %s", elf);
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_HAS(out, "Fill(u32, u32) -> u32\n");
    CHECK_STR(err, "");
    snprintf(args, sizeof args, "snapshot -- %s %s Incr", elf, tmp("dashdash.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "1\n");
    CHECK_STR(err, "");
    snprintf(args, sizeof args, "call -- %s Get", tmp("dashdash.snap"));
    CHECK_INT(run_cli(args, out, sizeof out, err, sizeof err), 0);
    CHECK_STR(out, "1\n");
    /* after "--" an argument starting with -- is the guest, not an option */
    CHECK_INT(run_cli("call -- --heap Incr", out, sizeof out, err, sizeof err), 1);
    CHECK_STR(err, "hyperlight: cannot open guest '--heap': No such file or directory\n");
    cli_usage("call --", "call: missing GUEST");
    snprintf(args, sizeof args, "call -- %s", elf);
    cli_usage(args, "call: missing FUNCTION");
    snprintf(args, sizeof args, "info -- %s extra", elf);
    cli_usage(args, "info: unexpected argument 'extra'");
}

int main(void)
{
    hl_config *cfg = hl_config_new();
    hl_type i32 = HL_I32;
    hl_sandbox *sb, *b1, *b2, *b3;
    hl_snapshot *a, *la, *lb, *c, *l2, *l3;
    hl_value v;
    double t0, t_save, t_load, t_new, t_call;
    struct stat stt;
    uint8_t *good;
    size_t len;
    uint64_t sum_a;
    char msg0[512];

    snprintf(dir, sizeof dir, "%s/hl_snapfile.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int fds_start = fd_count();
    hl_config_register_host_fn(cfg, "Twice", HL_I32, &i32, 1, twice, NULL);
    sb = must_sandbox("snap_guest", cfg); /* exits on failure: before the directory exists */
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }

    /* ---- round trip ---- */
    CHECK_INT(fill(sb, ARENA_PAGES, 7), ARENA_PAGES);
    CHECK_INT(call_u64(sb, "Incr"), 1);
    CHECK_INT(call_u64(sb, "Incr"), 2);
    v = hl_str("before");
    CHECK_INT(hl_call(sb, "SetStr", HL_VOID, &v, 1, &v), HL_OK);
    CHECK_INT(hl_snapshot_take(sb, &a), HL_OK);
    sum_a = hl_checksum(a->view, a->lo.total);
    int fds0 = fd_count();
    t0 = test_now_ms();
    CHECK_INT(hl_snapshot_save(a, tmp("a.snap")), HL_OK);
    t_save = test_now_ms() - t0;
    CHECK_STR(hl_last_error(NULL), "");
    CHECK_INT(fd_count(), fds0);
    CHECK_INT(stat(tmp("a.snap"), &stt), 0);
    good = read_file(tmp("a.snap"), &len);
    CHECK_INT(len, (uint64_t)stt.st_size);
    CHECK_INT(len, mem_offset_of(good) + a->lo.total);
    CHECK_INT(mem_offset_of(good) % 4096, 0);
    CHECK(mem_offset_of(good) >= 4096);
    CHECK(get64(good, OFF_MEM_SUM) == sum_a); /* the hole-skipping sum is hl_checksum */
    CHECK(memcmp(good + OFF_CPU, &a->cpu, sizeof a->cpu) == 0);
    printf("     a.snap: %llu bytes, %llu on disk (guest memory %llu KiB, arena 4 MiB written)\n",
           (unsigned long long)stt.st_size, (unsigned long long)stt.st_blocks * 512,
           (unsigned long long)(a->lo.total >> 10));
    CHECK((uint64_t)stt.st_blocks * 512 < (uint64_t)stt.st_size / 2); /* sparse: zero pages are holes */
    /* no temporary file is left behind */
    {
        DIR *d = opendir(dir);
        struct dirent *e;
        int n = 0;
        while ((e = readdir(d))) n += strstr(e->d_name, ".tmp-") != NULL;
        closedir(d);
        CHECK_INT(n, 0);
    }

    t0 = test_now_ms();
    CHECK_INT(hl_snapshot_load(&la, tmp("a.snap")), HL_OK);
    t_load = test_now_ms() - t0;
    CHECK_INT(fd_count(), fds0 + 1); /* the file stays open: its pages are the snapshot's memory */
    CHECK_INT(hl_snapshot_generation(la), 1);
    CHECK(memcmp(&la->lo, &a->lo, sizeof la->lo) == 0);
    CHECK(memcmp(&la->cpu, &a->cpu, sizeof la->cpu) == 0);
    CHECK(la->has_cpu);
    CHECK(la->slot0_sum == a->slot0_sum);
    CHECK(hl_checksum(la->view, la->lo.total) == sum_a);
    CHECK_INT(la->img.n, 1);
    CHECK_INT(la->nguestfns, a->nguestfns);
    for (int i = 0; i < a->nguestfns && i < la->nguestfns; i++) {
        CHECK_STR(la->guestfns[i].name, a->guestfns[i].name);
        CHECK_INT(la->guestfns[i].ret, a->guestfns[i].ret);
        CHECK_INT(la->guestfns[i].nparams, a->guestfns[i].nparams);
        CHECK(memcmp(la->guestfns[i].params, a->guestfns[i].params, sizeof a->guestfns[i].params) == 0);
    }
    CHECK_INT(la->nhostfns, 1);
    CHECK_STR(la->hostfns[0].name, "Twice");
    CHECK_INT(la->hostfns[0].nparams, 1);
    CHECK_INT(la->hostfns[0].params[0], HL_I32);
    CHECK_INT(la->hostfns[0].ret, HL_I32);
    CHECK(la->hostfns[0].fn == NULL);

    /* a sandbox from the loaded snapshot is in a's state */
    t0 = test_now_ms();
    CHECK_INT(hl_sandbox_new_from_snapshot(&b1, la, cfg), HL_OK);
    t_new = test_now_ms() - t0;
    t0 = test_now_ms();
    CHECK_INT(call_u64(b1, "Get"), 2);
    t_call = test_now_ms() - t0;
    CHECK_INT(call_u64(b1, "Generation"), 1);
    CHECK_STR(get_str(b1), "before");
    CHECK_INT(bad_pages(b1, 7), 0);
    v = hl_i32(21);
    CHECK_INT(hl_call(b1, "CallTwice", HL_I32, &v, 1, &v), HL_OK);
    CHECK_INT(v.v.i32, 42);
    /* ... and restores to it */
    CHECK_INT(call_u64(b1, "Incr"), 3);
    CHECK_INT(fill(b1, 16, 9), 16);
    v = hl_str("changed");
    CHECK_INT(hl_call(b1, "SetStr", HL_VOID, &v, 1, &v), HL_OK);
    CHECK_INT(hl_sandbox_restore(b1, la), HL_OK);
    CHECK_INT(call_u64(b1, "Get"), 2);
    CHECK_INT(bad_pages(b1, 7), 0);
    CHECK_STR(get_str(b1), "before");
    CHECK_INT(hl_call(b1, "Crash", HL_VOID, NULL, 0, &v), HL_ERR_FAULT);
    CHECK_INT(hl_sandbox_restore(b1, la), HL_OK);
    CHECK_INT(call_u64(b1, "Get"), 2);
    /* a snapshot of it continues the generations */
    CHECK_INT(call_u64(b1, "Incr"), 3);
    CHECK_INT(hl_snapshot_take(b1, &c), HL_OK);
    CHECK_INT(hl_snapshot_generation(c), 2);
    CHECK_INT(call_u64(b1, "Generation"), 1);
    CHECK_INT(hl_sandbox_restore(b1, c), HL_OK);
    CHECK_INT(call_u64(b1, "Generation"), 2);
    CHECK_INT(call_u64(b1, "Get"), 3);
    /* c mixes pages of the file and of its own memfd: save and load it too */
    CHECK(c->img.n > 1);
    CHECK_INT(hl_snapshot_save(c, tmp("c.snap")), HL_OK);
    CHECK_INT(hl_snapshot_load(&l2, tmp("c.snap")), HL_OK);
    CHECK_INT(hl_snapshot_generation(l2), 2);
    CHECK(hl_checksum(l2->view, l2->lo.total) == hl_checksum(c->view, c->lo.total));
    CHECK_INT(hl_sandbox_new_from_snapshot(&b2, l2, cfg), HL_OK);
    CHECK_INT(call_u64(b2, "Get"), 3);
    CHECK_INT(call_u64(b2, "Generation"), 2);
    CHECK_INT(bad_pages(b2, 7), 0);

    /* The ORIGINAL sandbox restores to the loaded snapshot: same layout, same code and page
     * tables (slot 0), so it is compatible, and it must work. */
    CHECK_INT(call_u64(sb, "Incr"), 3);
    CHECK_INT(fill(sb, 32, 5), 32);
    CHECK_INT(hl_sandbox_restore(sb, la), HL_OK);
    CHECK_INT(call_u64(sb, "Get"), 2);
    CHECK_INT(call_u64(sb, "Generation"), 1);
    CHECK_INT(bad_pages(sb, 7), 0);
    CHECK_STR(get_str(sb), "before");
    CHECK_INT(hl_sandbox_restore(sb, l2), HL_OK); /* and to the loaded c, another file */
    CHECK_INT(call_u64(sb, "Get"), 3);
    CHECK_INT(hl_sandbox_restore(sb, a), HL_OK); /* and back to the in-memory original */
    CHECK_INT(call_u64(sb, "Get"), 2);
    CHECK_INT(hl_sandbox_restore(sb, la), HL_OK);
    CHECK_INT(call_u64(sb, "Incr"), 3);
    /* ... and a loaded snapshot restores a sandbox made from the in-memory one */
    CHECK_INT(hl_sandbox_new_from_snapshot(&b3, a, cfg), HL_OK);
    CHECK_INT(call_u64(b3, "Incr"), 3);
    CHECK_INT(hl_sandbox_restore(b3, l2), HL_OK);
    CHECK_INT(call_u64(b3, "Get"), 3);
    CHECK_INT(call_u64(b3, "Generation"), 2);
    /* an incompatible sandbox refuses it */
    {
        hl_config *big = hl_config_new();
        hl_config_set_heap_size(big, 8u << 20);
        hl_config_register_host_fn(big, "Twice", HL_I32, &i32, 1, twice, NULL);
        hl_sandbox *other = must_sandbox("snap_guest", big);
        CHECK_INT(hl_sandbox_restore(other, la), HL_ERR_INVALID_ARG);
        CHECK_STR(hl_last_error(other), "snapshot is incompatible with this sandbox: heap size differs");
        hl_sandbox_free(other);
        hl_config_free(big);
    }
    /* host functions are checked against the configuration as for any snapshot */
    {
        hl_config *bare = hl_config_new();
        hl_sandbox *x = NULL;
        CHECK_INT(hl_sandbox_new_from_snapshot(&x, la, bare), HL_ERR_INVALID_ARG);
        CHECK_STR(hl_last_error(NULL),
                  "configuration lacks 1 host function the snapshot needs: Twice(i32) -> i32 (missing)");
        hl_config_free(bare);
    }

    /* saving over a file that is in use replaces it (rename): the loaded snapshot and its
     * sandboxes keep the old contents */
    CHECK_INT(hl_snapshot_save(c, tmp("a.snap")), HL_OK);
    CHECK_INT(hl_sandbox_restore(b1, la), HL_OK);
    CHECK_INT(call_u64(b1, "Get"), 2);
    CHECK(hl_checksum(la->view, la->lo.total) == sum_a);
    CHECK_INT(hl_snapshot_load(&l3, tmp("a.snap")), HL_OK);
    CHECK_INT(hl_snapshot_generation(l3), 2);
    hl_snapshot_free(l3);
    CHECK_INT(hl_snapshot_save(a, tmp("a.snap")), HL_OK);

    /* Two loads of one file share its page-cache pages: the views are file-backed (no
     * anonymous memory), pages read through both are mapped twice, and are the same frames. */
    CHECK_INT(hl_snapshot_load(&lb, tmp("a.snap")), HL_OK);
    {
        hl_snapshot *lc;
        CHECK_INT(hl_snapshot_load(&lc, tmp("a.snap")), HL_OK);
        long anon = smaps_field(lb->view, "Anonymous"), rss = smaps_field(lb->view, "Rss"),
             shared = smaps_field(lb->view, "Shared_Clean");
        printf("     loaded view: Rss %ld kB, Shared_Clean %ld kB, Anonymous %ld kB\n", rss, shared, anon);
        CHECK_INT(anon, 0);
        CHECK(rss > 4096); /* the arena pages, read by the checksum */
        CHECK(shared > 4096);
        const uint8_t *p1 = lb->view + lb->lo.ro_end, *p2 = lc->view + lc->lo.ro_end;
        volatile uint8_t x = *p1 + *p2;
        (void)x;
        uint64_t f1 = pfn_of(p1), f2 = pfn_of(p2);
        if (f1 && f2) CHECK(f1 == f2);
        else printf("     (pagemap frame numbers unavailable: not compared)\n");
        hl_snapshot_free(lc);
    }
    hl_snapshot_free(lb);

    /* init data is part of the memory image: it round-trips; mapped files are not, and a
     * snapshot that maps files cannot be saved */
    {
        static const char blob[] = "init data for the snapshot file";
        hl_config *ic = hl_config_new();
        hl_sandbox *is, *is2;
        hl_snapshot *isnap, *iload;
        hl_config_register_host_fn(ic, "Twice", HL_I32, &i32, 1, twice, NULL);
        CHECK_INT(hl_config_set_init_data(ic, blob, sizeof blob), HL_OK);
        is = must_sandbox("snap_guest", ic);
        CHECK_INT(call_u64(is, "Incr"), 1);
        CHECK_INT(hl_snapshot_take(is, &isnap), HL_OK);
        CHECK_INT(hl_snapshot_save(isnap, tmp("init.snap")), HL_OK);
        CHECK_INT(hl_snapshot_load(&iload, tmp("init.snap")), HL_OK);
        CHECK(memcmp(&iload->lo, &isnap->lo, sizeof iload->lo) == 0);
        CHECK_INT(iload->lo.sizes.init, sizeof blob);
        CHECK(memcmp(iload->view + iload->lo.init, blob, sizeof blob) == 0);
        CHECK_INT(hl_sandbox_new_from_snapshot(&is2, iload, ic), HL_OK);
        CHECK_INT(call_u64(is2, "Incr"), 2);
        CHECK_INT(hl_sandbox_restore(is, iload), HL_OK);
        CHECK_INT(call_u64(is, "Get"), 1);
        CHECK_INT(hl_sandbox_restore(sb, iload), HL_ERR_INVALID_ARG); /* no init data there */
        CHECK_STR(hl_last_error(sb), "snapshot is incompatible with this sandbox: init data size differs");
        hl_sandbox_free(is2);
        hl_snapshot_free(iload);
        hl_snapshot_free(isnap);
        hl_sandbox_free(is);

        hl_config *fc = hl_config_new();
        hl_sandbox *fs;
        hl_snapshot *fsnap;
        hl_config_register_host_fn(fc, "Twice", HL_I32, &i32, 1, twice, NULL);
        CHECK_INT(hl_config_map_file(fc, guest_path("demo"), "demo"), HL_OK);
        fs = must_sandbox("snap_guest", fc);
        CHECK_INT(hl_snapshot_take(fs, &fsnap), HL_OK);
        CHECK_INT(hl_snapshot_save(fsnap, tmp("files.snap")), HL_ERR_INVALID_ARG);
        snprintf(msg0, sizeof msg0,
                 "snapshot file '%s': the snapshot maps 1 host file, which a snapshot file cannot "
                 "hold (they are not part of its memory)",
                 tmp("files.snap"));
        CHECK_STR(hl_last_error(NULL), msg0);
        CHECK(access(tmp("files.snap"), F_OK) < 0);
        hl_snapshot_free(fsnap);
        hl_sandbox_free(fs);
        hl_config_free(fc);
        hl_config_free(ic);
    }

    /* ---- load errors ---- */
    int fds1 = fd_count();
    uint64_t meta_end = get64(good, OFF_META_END), moff = mem_offset_of(good);
    char msg[512];
    g_heap_byte = moff + a->lo.heap + a->lo.sizes.heap - 100; /* a zero page, so a hole */
    EXPECT_LOAD_ERROR(tmp("nonexistent.snap"), HL_ERR_IO, "cannot open: No such file or directory");
    EXPECT_LOAD_ERROR(dir, HL_ERR_IO, "is a directory");
    EXPECT_LOAD_ERROR("/dev/null", HL_ERR_IO, "not a regular file");
    CHECK_INT(mkfifo(tmp("fifo"), 0600), 0); /* no writer: an open without O_NONBLOCK would hang */
    EXPECT_LOAD_ERROR(tmp("fifo"), HL_ERR_IO, "not a regular file");
    write_file(tmp("empty.snap"), "", 0);
    EXPECT_LOAD_ERROR(tmp("empty.snap"), HL_ERR_BAD_GUEST, "empty file");
    /* truncated: inside the magic, inside the header, inside the metadata, at and inside
     * the memory, one byte short */
    size_t cuts[] = { 5,
                      8,
                      100,
                      4095,
                      4096,
                      4097,
                      meta_end - 1,
                      meta_end,
                      moff,
                      moff + 4096,
                      moff + HL_IMAGE_BASE + 7,
                      len / 2,
                      len - 4096,
                      len - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        size_t cut = cuts[i];
        if (cut < 4096) snprintf(msg, sizeof msg, "truncated: %zu bytes, but the header alone is 4096", cut);
        else if (cut < meta_end)
            snprintf(msg, sizeof msg, "truncated: %zu bytes, but the metadata ends at %llu", cut,
                     (unsigned long long)meta_end);
        else snprintf(msg, sizeof msg, "truncated: %zu bytes, but the memory image ends at %zu", cut, len);
        expect_variant("cut.snap", good, len, cut, NULL, HL_ERR_BAD_GUEST, msg, __LINE__);
    }
    expect_variant("regions.snap", good, len, len, edit_region_count, HL_ERR_BAD_GUEST,
                   "bad layout: 40 regions (at most 36)", __LINE__);
    expect_variant("hdr.snap", good, len, len, edit_header_byte, HL_ERR_BAD_GUEST,
                   "corrupt header (checksum mismatch)", __LINE__);
    expect_variant("hdr.snap", good, len, len, edit_reserved_byte, HL_ERR_BAD_GUEST,
                   "corrupt header (checksum mismatch)", __LINE__);
    expect_variant("meta.snap", good, len, len, edit_meta_byte, HL_ERR_BAD_GUEST,
                   "corrupt function tables (checksum mismatch)", __LINE__);
    expect_variant("pad.snap", good, len, len, edit_padding, HL_ERR_BAD_GUEST,
                   "corrupt padding after the function tables (not zero)", __LINE__);
    expect_variant("mem.snap", good, len, len, edit_memory_byte, HL_ERR_BAD_GUEST,
                   "corrupt memory image (checksum mismatch)", __LINE__);
    expect_variant("mem.snap", good, len, len, edit_code_byte, HL_ERR_BAD_GUEST,
                   "corrupt memory image (checksum mismatch)", __LINE__);
    expect_variant("fmt.snap", good, len, len, edit_format, HL_ERR_BAD_GUEST,
                   "format version 2, but this library reads version 1", __LINE__);
    expect_variant("fmt.snap", good, len, 100, edit_format, HL_ERR_BAD_GUEST,
                   "format version 2, but this library reads version 1", __LINE__);
    {
        char abi_msg[96];
        snprintf(abi_msg, sizeof abi_msg, "made for guest ABI version 7, but this library implements version %u",
                 HL_ABI_VERSION);
        expect_variant("abi.snap", good, len, len, edit_abi, HL_ERR_BAD_GUEST, abi_msg, __LINE__);
    }
    expect_variant("magic.snap", good, len, len, edit_magic, HL_ERR_BAD_GUEST, "not a hyperlight snapshot (bad magic)",
                   __LINE__);
    EXPECT_LOAD_ERROR(guest_path("snap_guest"), HL_ERR_BAD_GUEST, "not a hyperlight snapshot (bad magic)");
    {
        uint8_t *b = malloc(len + 2);
        memcpy(b, good, len);
        b[len] = 0;
        write_file(tmp("long.snap"), b, len + 1);
        EXPECT_LOAD_ERROR(tmp("long.snap"), HL_ERR_BAD_GUEST, "unexpected data after the memory image (1 bytes)");
        free(b);
    }
    /* crafted: checksums right, contents wrong */
    expect_variant("craft.snap", good, len, len, edit_heap_size, HL_ERR_BAD_GUEST,
                   "bad layout: heap size 12345 outside 65536..268435456 or not whole pages", __LINE__);
    expect_variant("craft.snap", good, len, len, edit_rip, HL_ERR_BAD_GUEST,
                   "bad vCPU state: rip 0x1000 is not in executable memory", __LINE__);
    snprintf(msg, sizeof msg, "bad vCPU state: rsp 0x10 is not in the stack 0x%llx..0x%llx",
             (unsigned long long)a->lo.stack, (unsigned long long)(a->lo.stack + a->lo.sizes.scratch));
    expect_variant("craft.snap", good, len, len, edit_rsp, HL_ERR_BAD_GUEST, msg, __LINE__);
    expect_variant("craft.snap", good, len, len, edit_dup_name, HL_ERR_BAD_GUEST,
                   "bad function table: guest function 'Incr' appears twice", __LINE__);
    expect_variant("craft.snap", good, len, len, edit_bad_type, HL_ERR_BAD_GUEST,
                   "bad function table: guest function 'Incr': invalid return type 10", __LINE__);
    expect_variant("craft.snap", good, len, len, edit_host_param, HL_ERR_BAD_GUEST,
                   "bad function table: host function 'Twice': invalid type 0 for parameter 0", __LINE__);
    expect_variant("craft.snap", good, len, len, edit_empty_name, HL_ERR_BAD_GUEST,
                   "bad function table: guest function 0: empty name", __LINE__);
    snprintf(msg, sizeof msg, "memory length 0x%llx is not the layout's total 0x%llx",
             (unsigned long long)a->lo.total + 4096, (unsigned long long)a->lo.total);
    expect_variant("craft.snap", good, len, len, edit_mem_length, HL_ERR_BAD_GUEST, msg, __LINE__);
    snprintf(msg, sizeof msg, "bad layout: stack 0x%llx is not 0x%llx", (unsigned long long)a->lo.stack + 4096,
             (unsigned long long)a->lo.stack);
    expect_variant("craft.snap", good, len, len, edit_stack_gpa, HL_ERR_BAD_GUEST, msg, __LINE__);
    snprintf(msg, sizeof msg,
             "bad layout: region 1 (code at 0x%llx+0x%llx, permissions 7) is not the code at 0x%llx+0x%llx "
             "(permissions 5)",
             (unsigned long long)a->lo.regions[1].gpa, (unsigned long long)a->lo.regions[1].size,
             (unsigned long long)a->lo.regions[1].gpa, (unsigned long long)a->lo.regions[1].size);
    expect_variant("craft.snap", good, len, len, edit_code_perm, HL_ERR_BAD_GUEST, msg, __LINE__);
    snprintf(msg, sizeof msg, "bad layout: page-table end 0x%llx is not 0x%llx",
             (unsigned long long)a->lo.pt_end + 4096, (unsigned long long)a->lo.pt_end);
    expect_variant("craft.snap", good, len, len, edit_pt_end, HL_ERR_BAD_GUEST, msg, __LINE__);
    expect_variant("craft.snap", good, len, len, edit_entry, HL_ERR_BAD_GUEST,
                   "bad layout: entry point 0x1ff000 is not in code", __LINE__);
    CHECK_INT(fd_count(), fds1);
    /* the good file still loads after all of that */
    {
        hl_snapshot *ok = NULL;
        CHECK_INT(hl_snapshot_load(&ok, tmp("a.snap")), HL_OK);
        hl_snapshot_free(ok);
        CHECK_INT(fd_count(), fds1);
    }

    /* ---- save errors ---- */
    CHECK_INT(hl_snapshot_save(NULL, tmp("x.snap")), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_last_error(NULL), "hl_snapshot_save: snapshot and path are required");
    CHECK_INT(hl_snapshot_save(a, NULL), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_snapshot_save(a, tmp("no/such/dir.snap")), HL_ERR_IO);
    CHECK_HAS(hl_last_error(NULL), "/no/such/dir.snap': cannot create '");
    CHECK_HAS(hl_last_error(NULL), "': No such file or directory");
    CHECK_INT(hl_snapshot_load(NULL, tmp("a.snap")), HL_ERR_INVALID_ARG);
    CHECK_INT(fd_count(), fds1);

    /* ---- timings ---- */
    {
        hl_snapshot *t;
        hl_sandbox *ts;
        double s = 0, l = 0, nw = 0, cl = 0;
        const int n = 20;
        for (int i = 0; i < n; i++) {
            t0 = test_now_ms();
            hl_snapshot_save(a, tmp("t.snap"));
            s += test_now_ms() - t0;
            t0 = test_now_ms();
            hl_snapshot_load(&t, tmp("t.snap"));
            l += test_now_ms() - t0;
            t0 = test_now_ms();
            hl_sandbox_new_from_snapshot(&ts, t, cfg);
            nw += test_now_ms() - t0;
            t0 = test_now_ms();
            call_u64(ts, "Get");
            cl += test_now_ms() - t0;
            hl_sandbox_free(ts);
            hl_snapshot_free(t);
        }
        printf("     first: save %.2f ms, load %.2f ms, sandbox %.2f ms, first call %.2f ms\n", t_save, t_load, t_new,
               t_call);
        printf("     mean of %d (warm page cache): save %.2f ms, load %.2f ms, sandbox %.2f ms, first call %.2f ms\n",
               n, s / n, l / n, nw / n, cl / n);
    }

    test_cli();
    test_cli_options();

    free(good);
    hl_snapshot_free(a);
    hl_snapshot_free(la);
    hl_snapshot_free(c);
    hl_snapshot_free(l2);
    hl_sandbox_free(sb);
    hl_sandbox_free(b1);
    hl_sandbox_free(b2);
    hl_sandbox_free(b3);
    hl_config_free(cfg);
    CHECK_INT(fd_count(), fds_start);
    if (getenv("HL_KEEP_TMP")) {
        printf("     files kept in %s\n", dir);
    } else {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    }
    return check_exit("snapfile");
}

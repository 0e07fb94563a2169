/* make_snapfile_seeds.c - writes the seed corpus of fuzz_snapfile.c (tests/fuzz/corpus/snapfile/).
 *
 * Run it again whenever the snapshot format or the guest ABI changes (needs KVM):
 *   make fuzz-seeds
 * or by hand, after `make tests`:
 *   build/tests/fuzz/make_snapfile_seeds tests/fuzz/corpus/snapfile [BUILD_DIR]
 * BUILD_DIR (default $HL_BUILD, else "build") holds guests/demo.elf and the test guests
 * (tests/guests/NAME.elf). The seeds are written only if every one passes its check below.
 *
 * Each seed is the header and metadata of a real snapshot file, cut at its memory offset
 * (fuzz_snapfile zero-extends an input to the length its header claims and recomputes the
 * three checksums), or a corrupted variant of one. The snapshots are made the way
 * `hyperlight snapshot` makes them (sandbox from the ELF, snapshot taken right after the
 * initialisation, hl_snapshot_save), with the smallest sizes so that the claimed memory stays
 * small. A corruption changes one thing and leaves the checksums as they are: loaded as it
 * is, a seed stops at a header checksum or the truncation; sealed, it reaches its check.
 * Before writing anything, each seed is loaded sealed (as the fuzzer's second load does) and
 * the loader's message is compared with the check the seed is named for, so a format change
 * that makes a seed miss its check fails here, not silently in the fuzzer's coverage.
 *
 * Offsets are those of docs/snapshots.md (struct snap_header in src/host/snapfile.c). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hyperlight.h"
#include "internal.h"

#include "snapfile_bytes.h"

static const char *out_dir, *build_dir;
static char tmp_dir[] = "/tmp/make_snapfile_seeds.XXXXXX";
static int failures;

/* Removes the temporary files (at exit, also after die). */
static void cleanup(void)
{
    static const char *const names[] = { "snap", "check", "mapped" };
    char path[1100];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, names[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "make_snapfile_seeds: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

/* A snapshot file read back: its bytes [0, len) (the memory is mostly holes, read as zeros). */
typedef struct file {
    uint8_t *b;
    size_t len;
} file;

static file read_path(const char *path)
{
    file f = { NULL, 0 };
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) die("cannot read %s", path);
    f.len = (size_t)st.st_size;
    if (!(f.b = malloc(f.len ? f.len : 1))) die("out of memory");
    for (size_t done = 0; done < f.len;) {
        ssize_t r = pread(fd, f.b + done, f.len - done, (off_t)done);
        if (r <= 0) die("reading %s failed", path);
        done += (size_t)r;
    }
    close(fd);
    return f;
}

static void write_path(const char *path, const uint8_t *b, size_t len, size_t file_len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("cannot create %s", path);
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, b + done, len - done);
        if (w <= 0) die("writing %s failed", path);
        done += (size_t)w;
    }
    if (ftruncate(fd, (off_t)file_len) < 0 || close(fd) < 0) die("writing %s failed", path);
}

/* ---- real snapshots ---- */
static int get_weekday(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    *ret = hl_str("Monday");
    return 0;
}

static int init_hook(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    *ret = hl_i32(42);
    return 0;
}

typedef struct guest_opts {
    const char *elf;      /* relative to build_dir */
    bool init_hook;       /* register InitHook() -> i32 (init_guest calls it while initialising) */
    const char *init;     /* init data (a string), or NULL */
    const char *map_file; /* map a 100-byte file under this label, or NULL */
} guest_opts;

static hl_sandbox *new_sandbox(const guest_opts *o)
{
    char path[1024], fpath[1100];
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb = NULL;
    if (!cfg) die("out of memory");
    snprintf(path, sizeof path, "%s/%s", build_dir, o->elf);
    /* The smallest sizes: the memory the header claims is what the fuzzer zero-extends to. */
    if (hl_config_set_heap_size(cfg, HL_HEAP_MIN) || hl_config_set_scratch_size(cfg, HL_SCRATCH_MIN) ||
        hl_config_set_input_size(cfg, HL_BUFFER_MIN) || hl_config_set_output_size(cfg, HL_BUFFER_MIN))
        die("%s", hl_config_error(cfg));
    /* The host function the CLI offers every guest (the demo's SayHello calls it). */
    if (hl_config_register_host_fn(cfg, "GetWeekday", HL_STRING, NULL, 0, get_weekday, NULL))
        die("%s", hl_config_error(cfg));
    if (o->init_hook && hl_config_register_host_fn(cfg, "InitHook", HL_I32, NULL, 0, init_hook, NULL))
        die("%s", hl_config_error(cfg));
    if (o->init && hl_config_set_init_data(cfg, o->init, strlen(o->init))) die("%s", hl_config_error(cfg));
    if (o->map_file) {
        uint8_t data[100];
        memset(data, 'x', sizeof data);
        snprintf(fpath, sizeof fpath, "%s/mapped", tmp_dir);
        write_path(fpath, data, sizeof data, sizeof data);
        if (hl_config_map_file(cfg, fpath, o->map_file)) die("%s", hl_config_error(cfg));
    }
    if (hl_sandbox_new_from_file(&sb, path, cfg) != HL_OK) die("%s: %s", path, hl_last_error(NULL));
    hl_config_free(cfg);
    if (o->map_file) unlink(fpath);
    return sb;
}

/* Makes the snapshot file of o's guest right after its initialisation, and reads it back. */
static file snapshot_file(const guest_opts *o)
{
    char path[1100];
    hl_sandbox *sb = new_sandbox(o);
    hl_snapshot *s = NULL;
    file f;
    snprintf(path, sizeof path, "%s/snap", tmp_dir);
    if (hl_snapshot_take(sb, &s) != HL_OK) die("%s: taking a snapshot: %s", o->elf, hl_last_error(sb));
    if (hl_snapshot_save(s, path) != HL_OK) die("%s: %s", o->elf, hl_last_error(NULL));
    hl_snapshot_free(s);
    hl_sandbox_free(sb);
    f = read_path(path);
    unlink(path);
    if (f.len < HEADER || get64(f.b, OFF_MEM_OFFSET) > f.len) die("%s: short snapshot file", o->elf);
    return f;
}

/* The header and metadata of a snapshot file: a copy of its first mem_offset bytes, with
 * room for `extra` more bytes of the file. */
static file prefix(const file *f, size_t extra)
{
    file p;
    p.len = (size_t)get64(f->b, OFF_MEM_OFFSET) + extra;
    if (p.len > f->len) die("prefix beyond the file");
    if (!(p.b = malloc(p.len))) die("out of memory");
    memcpy(p.b, f->b, p.len);
    return p;
}

/* Offset of guest function `name` in the metadata of p (its length byte), or die. */
static size_t find_fn(const file *p, const char *name)
{
    size_t n = strlen(name), end = (size_t)get64(p->b, OFF_META_END);
    uint32_t count = get32(p->b, OFF_NGUEST) + get32(p->b, OFF_NHOST);
    size_t at = HEADER;
    for (uint32_t i = 0; i < count && at < end; i++) {
        size_t len = p->b[at];
        if (len == n && !memcmp(p->b + at + 1, name, n)) return at;
        at += 1 + len + 2 + p->b[at + 1 + len + 1];
    }
    die("no function '%s' in the metadata", name);
}

/* ---- checking and writing seeds ---- */

/* Loads b[0, len) (file length file_len) and returns hl_snapshot_load's verdict: "" if it
 * loads, else the message after "snapshot file '...': ". */
static const char *verdict(const uint8_t *b, size_t len, size_t file_len, char *buf, size_t blen)
{
    char path[1100];
    hl_snapshot *s = NULL;
    const char *msg, *at;
    snprintf(path, sizeof path, "%s/check", tmp_dir);
    write_path(path, b, len, file_len);
    if (hl_snapshot_load(&s, path) == HL_OK) {
        hl_snapshot_free(s);
        snprintf(buf, blen, "%s", "");
    } else {
        msg = hl_last_error(NULL);
        at = strstr(msg, "': ");
        snprintf(buf, blen, "%s", at ? at + 3 : msg);
    }
    unlink(path);
    return buf;
}

/* What fuzz_snapfile's second load does: zero-extend to the claimed length, recompute the
 * checksums. Returns the verdict on that (or on the input itself if it is shorter than a
 * header, which the fuzzer loads only as it is). */
static const char *sealed_verdict(const file *p, char *buf, size_t blen)
{
    uint64_t mem_off, mem_len;
    size_t len;
    uint8_t *b;
    if (p->len < HEADER) return verdict(p->b, p->len, p->len, buf, blen);
    mem_off = get64(p->b, OFF_MEM_OFFSET);
    mem_len = get64(p->b, OFF_MEM_LENGTH);
    len = mem_off + mem_len > p->len ? (size_t)(mem_off + mem_len) : p->len;
    if (!(b = calloc(1, len))) die("out of memory");
    memcpy(b, p->b, p->len);
    snapfile_reseal(b, len);
    verdict(b, p->len, len, buf, blen);
    free(b);
    return buf;
}

/* The seeds, written at the end if all passed. */
static struct {
    const char *name;
    file p;
} seeds[32];
static int nseeds;

/* Keeps seed `name` if, sealed, the loader says `expect` (a prefix of its message; "" for a
 * snapshot that loads). Takes p. */
static void seed(const char *name, file p, const char *expect)
{
    char got[HL_ERR_LEN];
    sealed_verdict(&p, got, sizeof got);
    if (strncmp(got, expect, strlen(expect)) || (!*expect && *got)) {
        fprintf(stderr, "make_snapfile_seeds: %s: expected \"%s\", the loader says \"%s\"\n", name,
                *expect ? expect : "(loads)", *got ? got : "(loads)");
        failures++;
        free(p.b);
        return;
    }
    if (nseeds == (int)(sizeof seeds / sizeof seeds[0])) die("too many seeds");
    seeds[nseeds].name = name;
    seeds[nseeds++].p = p;
    printf("  %-14s %6zu bytes  sealed: %s\n", name, p.len, *got ? got : "loads");
}

int main(int argc, char **argv)
{
    const char *env = getenv("HL_BUILD");
    file demo, calls, snap, init, mapped, p;
    size_t at;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: make_snapfile_seeds OUT_DIR [BUILD_DIR]\n");
        return 2;
    }
    out_dir = argv[1];
    build_dir = argc == 3 ? argv[2] : env && *env ? env : "build";
    if (!mkdtemp(tmp_dir)) die("cannot create a temporary directory");
    atexit(cleanup);

    demo = snapshot_file(&(guest_opts){ .elf = "guests/demo.elf" });
    calls = snapshot_file(&(guest_opts){ .elf = "tests/guests/calls_guest.elf" });
    snap = snapshot_file(&(guest_opts){ .elf = "tests/guests/snap_guest.elf" });
    /* init_guest calls the host while it initialises; init data adds the init region. */
    init = snapshot_file(
        &(guest_opts){ .elf = "tests/guests/init_guest.elf", .init_hook = true, .init = "seed init data" });

    /* Real snapshots, cut at the memory offset: all load once sealed. */
    seed("demo_prefix", prefix(&demo, 0), "");
    seed("calls_prefix", prefix(&calls, 0), "");
    seed("snap_prefix", prefix(&snap, 0), "");
    seed("init_prefix", prefix(&init, 0), "");
    /* The memory through the end of the page tables (page 0 is a hole, then the tables):
     * the checksum and the save's round trip see data pages, not only holes. */
    seed("demo_with_pt", prefix(&demo, (size_t)get64(demo.b, OFF_PT_END)), "");

    /* Cut short: the size checks before the header checksum. */
    p = prefix(&demo, 0);
    p.len = 100;
    seed("cut_100", p, "truncated: 100 bytes, but the header alone is 4096");
    p = prefix(&demo, 0);
    p.len = HEADER - 1;
    seed("cut_header", p, "truncated: 4095 bytes, but the header alone is 4096");

    /* One header field each. */
    p = prefix(&demo, 0);
    memcpy(p.b, "HLSNAP02", 8);
    seed("bad_magic", p, "not a hyperlight snapshot (bad magic)");
    p = prefix(&demo, 0);
    put32(p.b, OFF_FORMAT, get32(p.b, OFF_FORMAT) + 1);
    seed("bad_format", p, "format version ");
    p = prefix(&demo, 0);
    put32(p.b, OFF_ABI, HL_ABI_VERSION + 1);
    seed("bad_abi", p, "made for guest ABI version ");
    p = prefix(&demo, 0);
    put64(p.b, OFF_HEAP_SIZE, 0);
    seed("bad_heap_size", p, "bad layout: heap size 0 ");
    p = prefix(&demo, 0);
    put64(p.b, OFF_CPU + offsetof(hl_cpu_state, regs) + 8 * HL_REG_RIP, HL_PT_GPA);
    seed("bad_rip", p, "bad vCPU state: rip 0x1000 is not in executable memory");

    /* The function tables. */
    p = prefix(&demo, 0);
    at = find_fn(&p, "Add");
    p.b[at + 1 + strlen("Add")] = 0xff; /* its return type */
    seed("bad_ret_type", p, "bad function table: guest function 'Add': invalid return type 255");
    p = prefix(&snap, 0);
    at = find_fn(&p, "Fill");
    memcpy(p.b + at + 1, "Incr", 4);
    seed("dup_guest_fn", p, "bad function table: guest function 'Incr' appears twice");

    /* A mapped file. hl_snapshot_save refuses a snapshot that maps files, so the layout comes
     * from the snapshot of a sandbox that maps one, written into the demo's header: the
     * layout is then one the loader accepts, and it stops at the mapped file itself. */
    {
        hl_sandbox *sb = new_sandbox(&(guest_opts){ .elf = "guests/demo.elf", .map_file = "f" });
        hl_snapshot *s = NULL;
        const hl_layout *lo;
        if (hl_snapshot_take(sb, &s) != HL_OK) die("mapped file: taking a snapshot: %s", hl_last_error(sb));
        lo = &s->lo;
        if (lo->sizes.nfiles != 1 || lo->total != get64(demo.b, OFF_TOTAL))
            die("mapped file: unexpected layout (%d files, total 0x%llx)", lo->sizes.nfiles,
                (unsigned long long)lo->total);
        mapped = prefix(&demo, 0);
        put64(mapped.b, OFF_END, lo->end);
        put64(mapped.b, OFF_PT_END, lo->pt_end);
        put32(mapped.b, OFF_NFILES, 1);
        memset(mapped.b + OFF_FILES, 0, FILE_SLOT);
        put64(mapped.b, OFF_FILES, lo->file_gpa[0]);
        put64(mapped.b, OFF_FILES + 8, lo->sizes.file_size[0]);
        memcpy(mapped.b + OFF_FILES + 16, lo->sizes.file_label[0], strlen(lo->sizes.file_label[0]));
        put32(mapped.b, OFF_NREGIONS, (uint32_t)lo->nregions);
        for (int i = 0; i < lo->nregions; i++) {
            uint8_t *r = mapped.b + OFF_REGIONS + (size_t)i * REGION_SLOT;
            put32(r, 0, (uint32_t)lo->regions[i].kind);
            put32(r, 4, lo->regions[i].perm);
            put64(r, 8, lo->regions[i].gpa);
            put64(r, 16, lo->regions[i].size);
        }
        hl_snapshot_free(s);
        hl_sandbox_free(sb);
        seed("mapped_file", mapped, "maps 1 host files, which snapshot files do not support");
    }

    if (failures) die("%d seed%s missed their check; nothing written", failures, failures == 1 ? "" : "s");
    for (int i = 0; i < nseeds; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", out_dir, seeds[i].name);
        write_path(path, seeds[i].p.b, seeds[i].p.len, seeds[i].p.len);
        free(seeds[i].p.b);
    }
    printf("make_snapfile_seeds: %d seeds written to %s\n", nseeds, out_dir);
    free(demo.b);
    free(calls.b);
    free(snap.b);
    free(init.b);
    return 0;
}

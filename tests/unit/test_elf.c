/* test_elf.c - unit tests for src/host/elf.c: the real demo guest, then malformed ELFs, each
 * refused with HL_ERR_BAD_GUEST and its exact message; then hl_elf_load. No VM.
 *
 * Reads $HL_BUILD/guests/demo.elf (HL_BUILD defaults to "build"; `make all` builds it).
 * Malformed inputs are mutated copies of demo.elf or minimal ELFs built here; every input is
 * handed over in a heap block of exactly its size, so AddressSanitizer (when built with it)
 * catches any read past the end.
 *
 * Build and run: make build/tests/unit/test_elf && build/tests/unit/test_elf
 * With sanitizers:
 *   gcc -std=gnu11 -O1 -g -fsanitize=address,undefined -Iinclude -Isrc/common -Isrc/host -Itests \
 *       tests/unit/test_elf.c src/host/elf.c src/host/layout.c src/host/pagetable.c \
 *       src/host/hostfn.c src/common/wire.c -o /tmp/test_elf && /tmp/test_elf
 * HL_ELF_SEEDS=DIR writes demo.elf (whole, and cut after its loaded data) and the minimal ELFs
 * built here into DIR: the seeds of tests/fuzz/corpus/elf (`make fuzz-seeds`). */
#include <elf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

/* ---- helpers -------------------------------------------------------------------------- */

static uint8_t *dup_exact(const void *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (!d) abort();
    if (n) memcpy(d, p, n);
    return d;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t)n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static const char *seed_dir;

static void save_seed(const char *name, const uint8_t *data, size_t len)
{
    char path[1024];
    FILE *f;
    if (!seed_dir) return;
    snprintf(path, sizeof path, "%s/%s", seed_dir, name);
    f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, len, f);
    fclose(f);
}

static Elf64_Ehdr get_eh(const uint8_t *d)
{
    Elf64_Ehdr eh;
    memcpy(&eh, d, sizeof eh);
    return eh;
}
static void put_eh(uint8_t *d, const Elf64_Ehdr *eh) { memcpy(d, eh, sizeof *eh); }
static Elf64_Phdr get_ph(const uint8_t *d, int i)
{
    Elf64_Phdr ph;
    memcpy(&ph, d + get_eh(d).e_phoff + (size_t)i * sizeof ph, sizeof ph);
    return ph;
}
static void put_ph(uint8_t *d, int i, const Elf64_Phdr *ph)
{
    memcpy(d + get_eh(d).e_phoff + (size_t)i * sizeof *ph, ph, sizeof *ph);
}

/* Parses data[0, len) from an exact-size heap copy. */
static hl_status parse(const uint8_t *data, size_t len, hl_elf *out, char *err)
{
    uint8_t *copy = dup_exact(data, len);
    hl_status st;
    err[0] = 0;
    st = hl_elf_parse(copy, len, out, err);
    free(copy);
    return st;
}

/* data must be refused with HL_ERR_BAD_GUEST and a message containing want. */
static void expect_bad(const char *what, const uint8_t *data, size_t len, const char *want)
{
    hl_elf elf;
    char err[HL_ERR_LEN];
    hl_status st = parse(data, len, &elf, err);
    int before = check_failures;
    CHECK_INT(st, HL_ERR_BAD_GUEST);
    CHECK_HAS(err, want);
    CHECK(strlen(err) < HL_ERR_LEN);
    if (check_failures != before) fprintf(stderr, "    ^ case: %s (message: \"%s\")\n", what, err);
}

static void expect_ok(const char *what, const uint8_t *data, size_t len, hl_elf *out)
{
    char err[HL_ERR_LEN];
    hl_elf tmp;
    hl_status st = parse(data, len, out ? out : &tmp, err);
    CHECK_INT(st, HL_OK);
    if (st != HL_OK) fprintf(stderr, "    ^ case: %s: %s\n", what, err);
}

/* ---- minimal ELFs ----------------------------------------------------------------------- */

typedef struct mseg {
    uint32_t type; /* PT_*; PT_NOTE gets the note bytes as its data */
    uint64_t vaddr, memsz, filesz;
    uint32_t flags;
} mseg;

/* The ABI note: namesz 11, descsz 4, type 1, "Hyperlight\0" + pad, version. */
static size_t make_note(uint8_t *p, uint32_t namesz, uint32_t descsz, uint32_t type, const char *name, uint32_t version)
{
    size_t n = 0, nl = HL_ALIGN_UP((uint64_t)strlen(name) + 1, 4);
    memcpy(p + n, &namesz, 4);
    memcpy(p + n + 4, &descsz, 4);
    memcpy(p + n + 8, &type, 4);
    n += 12;
    memset(p + n, 0, nl);
    memcpy(p + n, name, strlen(name));
    n += nl;
    memcpy(p + n, &version, 4);
    return n + 4;
}

static uint8_t std_note[28];
static size_t std_note_len;

/* An ELF with program headers s[0..n), each segment's data following the headers (8-aligned,
 * filled with bytes 0x11 * (index + 1)), PT_NOTE segments holding note[0, note_len) (their
 * filesz/memsz are set from note_len). */
static uint8_t *mini_elf(const mseg *s, int n, uint64_t entry, const uint8_t *note, size_t note_len, size_t *out_len)
{
    size_t len = sizeof(Elf64_Ehdr) + (size_t)n * sizeof(Elf64_Phdr), off;
    uint8_t *d;
    Elf64_Ehdr eh;
    for (int i = 0; i < n; i++) len = HL_ALIGN_UP(len, 8) + (s[i].type == PT_NOTE ? note_len : s[i].filesz);
    d = calloc(1, len);
    if (!d) abort();
    memset(&eh, 0, sizeof eh);
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = entry;
    eh.e_phoff = sizeof eh;
    eh.e_ehsize = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = (uint16_t)n;
    put_eh(d, &eh);
    off = sizeof(Elf64_Ehdr) + (size_t)n * sizeof(Elf64_Phdr);
    for (int i = 0; i < n; i++) {
        Elf64_Phdr ph = { 0 };
        off = HL_ALIGN_UP(off, 8);
        ph.p_type = s[i].type;
        ph.p_flags = s[i].flags;
        ph.p_offset = off;
        ph.p_vaddr = ph.p_paddr = s[i].vaddr;
        ph.p_align = 8;
        if (s[i].type == PT_NOTE) {
            ph.p_filesz = ph.p_memsz = note_len;
            memcpy(d + off, note, note_len);
            off += note_len;
        } else {
            ph.p_filesz = s[i].filesz;
            ph.p_memsz = s[i].memsz;
            memset(d + off, 0x11 * (i + 1), s[i].filesz);
            off += s[i].filesz;
        }
        put_ph(d, i, &ph);
    }
    *out_len = len;
    return d;
}

#define NOTE_SEG               \
    {                          \
        PT_NOTE, 0, 0, 0, PF_R \
    }
#define RX PF_R | PF_X
#define RO PF_R
#define RW PF_R | PF_W

/* ---- the real guest ------------------------------------------------------------------- */

static void test_demo(const uint8_t *demo, size_t len)
{
    hl_elf elf;
    Elf64_Ehdr eh = get_eh(demo);
    int loads[8], nload = 0;

    expect_ok("demo.elf", demo, len, &elf);
    CHECK_INT(elf.nseg, 3);
    CHECK_INT(elf.abi_version, HL_ABI_VERSION);
    CHECK_INT(elf.entry, eh.e_entry);
    CHECK_INT(elf.entry, HL_IMAGE_BASE); /* _start is the first thing in .text */
    CHECK_INT(elf.seg[0].flags, HL_SEG_R | HL_SEG_X);
    CHECK_INT(elf.seg[1].flags, HL_SEG_R);
    CHECK_INT(elf.seg[2].flags, HL_SEG_R | HL_SEG_W);
    CHECK_INT(elf.seg[0].vaddr, HL_IMAGE_BASE);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(elf.seg[i].vaddr % HL_PAGE, 0); /* the linker script page-aligns them */
        CHECK(elf.seg[i].memsz > 0);
        CHECK(elf.seg[i].filesz <= elf.seg[i].memsz);
        if (i) CHECK(elf.seg[i].vaddr >= HL_ALIGN_UP(elf.seg[i - 1].vaddr + elf.seg[i - 1].memsz, HL_PAGE));
    }
    CHECK(elf.seg[2].memsz > elf.seg[2].filesz); /* .bss */
    CHECK(elf.entry >= elf.seg[0].vaddr && elf.entry < elf.seg[0].vaddr + elf.seg[0].memsz);
    CHECK_INT(elf.ro_end, elf.seg[2].vaddr);
    CHECK_INT(elf.end, HL_ALIGN_UP(elf.seg[2].vaddr + elf.seg[2].memsz, HL_PAGE));

    /* Against the program headers as read here. */
    CHECK_INT(eh.e_phnum, 4);
    for (int i = 0; i < eh.e_phnum && nload < 8; i++)
        if (get_ph(demo, i).p_type == PT_LOAD) loads[nload++] = i;
    CHECK_INT(nload, 3);
    for (int i = 0; i < nload && i < 3; i++) {
        Elf64_Phdr ph = get_ph(demo, loads[i]);
        CHECK_INT(elf.seg[i].vaddr, ph.p_vaddr);
        CHECK_INT(elf.seg[i].memsz, ph.p_memsz);
        CHECK_INT(elf.seg[i].offset, ph.p_offset);
        CHECK_INT(elf.seg[i].filesz, ph.p_filesz);
        CHECK_INT(elf.seg[i].flags, ph.p_flags);
    }
    CHECK_INT(get_ph(demo, 3).p_type, PT_NOTE);
    /* The note lives in the read-only data segment. */
    CHECK(get_ph(demo, 3).p_vaddr >= elf.seg[1].vaddr &&
          get_ph(demo, 3).p_vaddr + get_ph(demo, 3).p_memsz <= elf.seg[1].vaddr + elf.seg[1].memsz);

    /* The layout of the real guest with default sizes. */
    {
        hl_layout lo;
        char err[HL_ERR_LEN];
        hl_sizes sz = { .heap = HL_HEAP_DEFAULT,
                        .scratch = HL_SCRATCH_DEFAULT,
                        .input = HL_BUFFER_DEFAULT,
                        .output = HL_BUFFER_DEFAULT };
        CHECK_INT(hl_layout_build(&lo, &elf, &sz, err), HL_OK);
        CHECK_INT(lo.ro_end, elf.ro_end);
        CHECK_INT(lo.meta, elf.end);
        CHECK_INT(lo.entry, elf.entry);
    }

    /* Cut after the last segment's file data (no section headers, symbols or debug
     * information): still a whole guest. Both are fuzzing seeds. */
    {
        size_t cut = 0;
        for (int i = 0; i < elf.nseg; i++)
            if (elf.seg[i].offset + elf.seg[i].filesz > cut) cut = elf.seg[i].offset + elf.seg[i].filesz;
        expect_ok("demo.elf cut after its last segment's data", demo, cut, NULL);
        save_seed("demo.elf", demo, len);
        save_seed("demo_cut", demo, cut);
    }
}

/* Malformed variants of demo.elf. */
static void test_demo_mutations(const uint8_t *demo, size_t len)
{
    uint8_t *m = dup_exact(demo, len);
    Elf64_Ehdr eh;
    Elf64_Phdr ph;
    char want[256];
#define RESET() memcpy(m, demo, len)

    expect_bad("NULL data", NULL, 0, "file too short (0 bytes)");
    {
        hl_elf elf;
        char err[HL_ERR_LEN] = "";
        CHECK_INT(hl_elf_parse(NULL, 100, &elf, err), HL_ERR_BAD_GUEST);
        CHECK_HAS(err, "file too short");
    }
    expect_bad("empty", demo, 0, "file too short (0 bytes)");
    expect_bad("63 bytes", demo, sizeof(Elf64_Ehdr) - 1, "file too short (63 bytes)");
    expect_bad("header only", demo, sizeof(Elf64_Ehdr), "program headers beyond end of file");

    RESET();
    m[0] = 0x7e;
    expect_bad("bad magic byte 0", m, len, "not an ELF file (bad magic)");
    RESET();
    m[3] = 'G';
    expect_bad("bad magic byte 3", m, len, "not an ELF file (bad magic)");
    RESET();
    m[EI_CLASS] = ELFCLASS32;
    expect_bad("32-bit class", m, len, "not a 64-bit little-endian x86-64 ELF");
    RESET();
    m[EI_CLASS] = ELFCLASSNONE;
    expect_bad("class none", m, len, "not a 64-bit little-endian x86-64 ELF");
    RESET();
    m[EI_DATA] = ELFDATA2MSB;
    expect_bad("big-endian", m, len, "not a 64-bit little-endian x86-64 ELF");
    RESET();
    eh = get_eh(m);
    eh.e_machine = EM_AARCH64;
    put_eh(m, &eh);
    expect_bad("aarch64", m, len, "not a 64-bit little-endian x86-64 ELF");
    RESET();
    eh = get_eh(m);
    eh.e_machine = EM_386;
    put_eh(m, &eh);
    expect_bad("i386", m, len, "not a 64-bit little-endian x86-64 ELF");
    RESET();
    eh = get_eh(m);
    eh.e_type = ET_DYN;
    put_eh(m, &eh);
    expect_bad("ET_DYN", m, len, "type 3 is not ET_EXEC");
    RESET();
    eh = get_eh(m);
    eh.e_type = ET_REL;
    put_eh(m, &eh);
    expect_bad("ET_REL", m, len, "type 1 is not ET_EXEC");

    /* Program header table. */
    RESET();
    eh = get_eh(m);
    eh.e_phentsize = 32;
    put_eh(m, &eh);
    expect_bad("phentsize 32", m, len, "bad program header table (4 x 32 bytes)");
    RESET();
    eh = get_eh(m);
    eh.e_phentsize = 64;
    put_eh(m, &eh);
    expect_bad("phentsize 64", m, len, "bad program header table (4 x 64 bytes)");
    RESET();
    eh = get_eh(m);
    eh.e_phnum = 0;
    put_eh(m, &eh);
    expect_bad("phnum 0", m, len, "bad program header table (0 x 56 bytes)");
    RESET();
    eh = get_eh(m);
    eh.e_phnum = 65;
    put_eh(m, &eh);
    expect_bad("phnum 65", m, len, "bad program header table (65 x 56 bytes)");
    RESET();
    eh = get_eh(m);
    eh.e_phnum = 0xffff;
    put_eh(m, &eh);
    expect_bad("phnum 65535", m, len, "bad program header table (65535 x 56 bytes)");
    RESET();
    eh = get_eh(m);
    eh.e_phoff = len - 4 * sizeof(Elf64_Phdr) + 1;
    put_eh(m, &eh);
    expect_bad("phdrs one byte past EOF", m, len, "program headers beyond end of file");
    RESET();
    eh = get_eh(m);
    eh.e_phoff = len + 1;
    put_eh(m, &eh);
    expect_bad("phoff past EOF", m, len, "program headers beyond end of file");
    RESET();
    eh = get_eh(m);
    eh.e_phoff = UINT64_MAX - 8;
    put_eh(m, &eh);
    expect_bad("phoff near 2^64", m, len, "program headers beyond end of file");
    expect_bad("truncated inside the phdrs", demo, sizeof(Elf64_Ehdr) + 3 * sizeof(Elf64_Phdr) + 10,
               "program headers beyond end of file");
    RESET();
    eh = get_eh(m);
    eh.e_phoff = len - 4 * sizeof(Elf64_Phdr); /* the table moved to the very end: fine */
    put_eh(m, &eh);
    for (int i = 0; i < 4; i++) {
        Elf64_Phdr p = get_ph(demo, i);
        memcpy(m + eh.e_phoff + (size_t)i * sizeof p, &p, sizeof p);
    }
    expect_ok("phdrs at the very end of the file", m, len, NULL);

    /* Dynamic linking. */
    RESET();
    ph = get_ph(m, 3);
    ph.p_type = PT_INTERP;
    put_ph(m, 3, &ph);
    expect_bad("PT_INTERP", m, len, "dynamically linked (segment 3)");
    RESET();
    ph = get_ph(m, 1);
    ph.p_type = PT_DYNAMIC;
    put_ph(m, 1, &ph);
    expect_bad("PT_DYNAMIC", m, len, "dynamically linked (segment 1)");

    /* Segment sizes and file ranges. */
    RESET();
    ph = get_ph(m, 2);
    ph.p_filesz = ph.p_memsz + 1;
    put_ph(m, 2, &ph);
    expect_bad("filesz > memsz", m, len, "segment 2 file size exceeds memory size");
    RESET();
    ph = get_ph(m, 2);
    ph.p_offset = len - ph.p_filesz + 1;
    put_ph(m, 2, &ph);
    expect_bad("segment data one byte past EOF", m, len, "segment 2 data beyond end of file");
    RESET();
    ph = get_ph(m, 0);
    ph.p_offset = len + 0x1000;
    put_ph(m, 0, &ph);
    expect_bad("segment offset past EOF", m, len, "segment 0 data beyond end of file");
    RESET();
    ph = get_ph(m, 2);
    ph.p_offset = UINT64_MAX - 1; /* + filesz 4 wraps to 2 */
    put_ph(m, 2, &ph);
    expect_bad("offset + filesz wraps", m, len, "segment 2 data beyond end of file");
    RESET();
    ph = get_ph(m, 2);
    ph.p_offset = 16;
    ph.p_filesz = UINT64_MAX - 15; /* offset + filesz == 2^64 */
    ph.p_memsz = UINT64_MAX;
    put_ph(m, 2, &ph);
    expect_bad("offset + filesz == 2^64", m, len, "segment 2 data beyond end of file");
    RESET();
    ph = get_ph(m, 2);
    ph.p_offset = len - ph.p_filesz; /* data ends exactly at EOF: fine */
    put_ph(m, 2, &ph);
    expect_ok("segment data ending at EOF", m, len, NULL);

    /* Addresses. */
    RESET();
    ph = get_ph(m, 0);
    ph.p_vaddr = HL_IMAGE_BASE - HL_PAGE;
    put_ph(m, 0, &ph);
    snprintf(want, sizeof want, "segment 0 at 0x1ff000+0x%llx outside the image area 0x200000..0x20200000",
             (unsigned long long)ph.p_memsz);
    expect_bad("vaddr below the image base", m, len, want);
    RESET();
    ph = get_ph(m, 0);
    ph.p_vaddr = 0;
    put_ph(m, 0, &ph);
    expect_bad("vaddr 0", m, len, "segment 0 at 0x0+");
    RESET();
    ph = get_ph(m, 0);
    ph.p_vaddr = HL_IMAGE_BASE - 1;
    put_ph(m, 0, &ph);
    expect_bad("vaddr one below the image base", m, len, "outside the image area");
    RESET();
    ph = get_ph(m, 2);
    ph.p_vaddr = UINT64_MAX - 0xfff;
    put_ph(m, 2, &ph);
    expect_bad("vaddr + memsz wraps", m, len, "segment 2 at 0xfffffffffffff000+");
    RESET();
    ph = get_ph(m, 2);
    ph.p_memsz = UINT64_MAX - ph.p_vaddr + 1; /* vaddr + memsz == 2^64 */
    put_ph(m, 2, &ph);
    expect_bad("vaddr + memsz == 2^64", m, len, "outside the image area");
    RESET();
    ph = get_ph(m, 2);
    ph.p_memsz = HL_IMAGE_BASE + HL_ELF_MAX_SPAN - ph.p_vaddr + 1;
    put_ph(m, 2, &ph);
    expect_bad("segment one byte beyond the image area", m, len, "segment 2 at 0x");
    expect_bad("segment one byte beyond the image area", m, len, "outside the image area 0x200000..0x20200000");
    RESET();
    ph = get_ph(m, 2);
    ph.p_memsz = HL_IMAGE_BASE + HL_ELF_MAX_SPAN - ph.p_vaddr; /* ends exactly at the limit */
    put_ph(m, 2, &ph);
    {
        hl_elf elf;
        expect_ok("segment ending at the image limit", m, len, &elf);
        CHECK_INT(elf.end, HL_IMAGE_BASE + HL_ELF_MAX_SPAN);
    }
    RESET();
    ph = get_ph(m, 2);
    ph.p_vaddr = 0x30000000;
    put_ph(m, 2, &ph);
    expect_bad("segment starting beyond the image area", m, len, "outside the image area");

    /* Order and overlap. */
    RESET();
    ph = get_ph(m, 1);
    ph.p_vaddr = get_ph(m, 0).p_vaddr + get_ph(m, 0).p_memsz - 8;
    put_ph(m, 1, &ph);
    expect_bad("rodata overlapping code", m, len, "segment 1 overlaps or shares a page with the one before");
    RESET();
    ph = get_ph(m, 1);
    ph.p_vaddr = get_ph(m, 0).p_vaddr + get_ph(m, 0).p_memsz + 8; /* after, same page */
    put_ph(m, 1, &ph);
    expect_bad("rodata sharing code's last page", m, len, "segment 1 overlaps or shares a page");
    RESET();
    ph = get_ph(m, 2);
    ph.p_vaddr = get_ph(m, 0).p_vaddr;
    put_ph(m, 2, &ph);
    expect_bad("data on top of code", m, len, "segment 2 overlaps or shares a page");
    {
        /* Segments in descending order. */
        Elf64_Phdr p0 = get_ph(demo, 0), p1 = get_ph(demo, 1);
        RESET();
        put_ph(m, 0, &p1);
        put_ph(m, 1, &p0);
        expect_bad("descending segments", m, len, "segment 1 overlaps or shares a page");
    }

    /* Permissions. */
    RESET();
    ph = get_ph(m, 2);
    ph.p_flags = PF_R | PF_W | PF_X;
    put_ph(m, 2, &ph);
    expect_bad("RWX data", m, len, "segment 2 is writable and executable");
    RESET();
    ph = get_ph(m, 0);
    ph.p_flags = PF_W | PF_X;
    put_ph(m, 0, &ph);
    expect_bad("WX code", m, len, "segment 0 is writable and executable");
    RESET();
    ph = get_ph(m, 1);
    ph.p_flags = PF_R | PF_W;
    put_ph(m, 1, &ph);
    ph = get_ph(m, 2);
    ph.p_flags = PF_R;
    put_ph(m, 2, &ph);
    expect_bad("read-only after writable", m, len, "read-only segment 2 follows a writable one");
    RESET();
    ph = get_ph(m, 0);
    ph.p_flags = PF_R | PF_W;
    put_ph(m, 0, &ph);
    expect_bad("writable code segment, then read-only", m, len, "read-only segment 1 follows a writable one");
    RESET();
    ph = get_ph(m, 1);
    ph.p_flags = PF_R | PF_W;
    put_ph(m, 1, &ph);
    {
        hl_elf elf;
        expect_ok("rodata made writable", m, len, &elf);
        CHECK_INT(elf.ro_end, get_ph(demo, 1).p_vaddr);
    }

    /* Loadable segments. */
    RESET();
    for (int i = 0; i < 3; i++) {
        ph = get_ph(m, i);
        ph.p_type = PT_NULL;
        put_ph(m, i, &ph);
    }
    expect_bad("no PT_LOAD", m, len, "no loadable segment");
    RESET();
    for (int i = 0; i < 3; i++) {
        ph = get_ph(m, i);
        ph.p_memsz = ph.p_filesz = 0;
        put_ph(m, i, &ph);
    }
    expect_bad("only empty PT_LOADs", m, len, "no loadable segment");

    /* The ABI note. */
    RESET();
    ph = get_ph(m, 3);
    ph.p_type = PT_NULL;
    put_ph(m, 3, &ph);
    expect_bad("no PT_NOTE", m, len, "no hyperlight ABI note (not built with the hyperlight guest SDK)");
    {
        uint64_t noff = get_ph(demo, 3).p_offset;
        uint32_t v;
        RESET();
        char abi_want[96];
        v = HL_ABI_VERSION + 1;
        memcpy(m + noff + 24, &v, 4);
        snprintf(abi_want, sizeof abi_want, "built for ABI version %u, this host speaks version %u",
                 HL_ABI_VERSION + 1, HL_ABI_VERSION);
        expect_bad("ABI version + 1", m, len, abi_want);
        RESET();
        v = 0;
        memcpy(m + noff + 24, &v, 4);
        expect_bad("ABI version 0", m, len, "ABI version 0");
        RESET();
        ph = get_ph(m, 3);
        ph.p_filesz = 27; /* the descriptor is cut short */
        put_ph(m, 3, &ph);
        expect_bad("note truncated by a byte", m, len, "no hyperlight ABI note");
        RESET();
        ph = get_ph(m, 3);
        ph.p_filesz = 11; /* not even a header */
        put_ph(m, 3, &ph);
        expect_bad("note shorter than its header", m, len, "no hyperlight ABI note");
        RESET();
        ph = get_ph(m, 3);
        ph.p_filesz = 0;
        put_ph(m, 3, &ph);
        expect_bad("empty note segment", m, len, "no hyperlight ABI note");
        RESET();
        m[noff + 12 + 9] = 'T'; /* "HyperlighT" */
        expect_bad("note name garbled", m, len, "no hyperlight ABI note");
        RESET();
        v = 10; /* namesz without the NUL */
        memcpy(m + noff, &v, 4);
        expect_bad("note namesz 10", m, len, "no hyperlight ABI note");
        RESET();
        v = 8; /* descsz 8 */
        memcpy(m + noff + 4, &v, 4);
        expect_bad("note descsz 8", m, len, "no hyperlight ABI note");
        RESET();
        v = 2; /* type 2 */
        memcpy(m + noff + 8, &v, 4);
        expect_bad("note type 2", m, len, "no hyperlight ABI note");
        RESET();
        v = 0xffffffff;
        memcpy(m + noff, &v, 4);
        expect_bad("note namesz 2^32-1", m, len, "no hyperlight ABI note");
        RESET();
        v = 0xfffffffd;
        memcpy(m + noff + 4, &v, 4);
        expect_bad("note descsz 2^32-3", m, len, "no hyperlight ABI note");
        RESET();
        ph = get_ph(m, 3);
        ph.p_offset = len - 27;
        put_ph(m, 3, &ph);
        expect_bad("note data one byte past EOF", m, len, "note segment 3 beyond end of file");
        RESET();
        ph = get_ph(m, 3);
        ph.p_offset = UINT64_MAX - 4;
        put_ph(m, 3, &ph);
        expect_bad("note offset near 2^64", m, len, "note segment 3 beyond end of file");
        RESET();
        ph = get_ph(m, 3);
        ph.p_filesz = UINT64_MAX;
        put_ph(m, 3, &ph);
        expect_bad("note filesz 2^64-1", m, len, "note segment 3 beyond end of file");
    }

    /* The entry point. */
    RESET();
    eh = get_eh(m);
    eh.e_entry = get_ph(demo, 1).p_vaddr;
    put_eh(m, &eh);
    snprintf(want, sizeof want, "entry point 0x%llx is not inside an executable segment",
             (unsigned long long)eh.e_entry);
    expect_bad("entry in rodata", m, len, want);
    RESET();
    eh = get_eh(m);
    eh.e_entry = get_ph(demo, 0).p_vaddr + get_ph(demo, 0).p_memsz;
    put_eh(m, &eh);
    expect_bad("entry one past the code", m, len, "is not inside an executable segment");
    RESET();
    eh = get_eh(m);
    eh.e_entry = get_ph(demo, 0).p_vaddr + get_ph(demo, 0).p_memsz - 1;
    put_eh(m, &eh);
    expect_ok("entry at the code's last byte", m, len, NULL);
    RESET();
    eh = get_eh(m);
    eh.e_entry = 0;
    put_eh(m, &eh);
    expect_bad("entry 0", m, len, "entry point 0x0 is not inside an executable segment");
    RESET();
    eh = get_eh(m);
    eh.e_entry = get_ph(demo, 2).p_vaddr;
    put_eh(m, &eh);
    expect_bad("entry in data", m, len, "is not inside an executable segment");
    RESET();
    eh = get_eh(m);
    eh.e_entry = UINT64_MAX;
    put_eh(m, &eh);
    expect_bad("entry 2^64-1", m, len, "is not inside an executable segment");

    /* Fields the loader ignores. */
    RESET();
    eh = get_eh(m);
    eh.e_shoff = UINT64_MAX;
    eh.e_shnum = 0xffff;
    eh.e_ident[EI_OSABI] = 0x42;
    put_eh(m, &eh);
    expect_ok("garbage section headers", m, len, NULL);
    free(m);
#undef RESET
}

/* Malformed and edge cases that are easier to build from scratch. */
/* The ABI note, then a sizes note (HL_NOTE_TYPE_DEFAULTS) with descriptor descsz bytes of
 * stack, heap (as the SDK's HL_GUEST_DEFAULTS writes them), twice if twice. */
static size_t defaults_notes(uint8_t *p, uint32_t descsz, uint64_t stack, uint64_t heap, bool twice)
{
    size_t n = make_note(p, 11, 4, HL_NOTE_TYPE_ABI, "Hyperlight", HL_ABI_VERSION);
    for (int k = 0; k < (twice ? 2 : 1); k++) {
        uint32_t hdr[3] = { 11, descsz, HL_NOTE_TYPE_DEFAULTS };
        memcpy(p + n, hdr, 12);
        memcpy(p + n + 12, "Hyperlight\0\0", 12);
        memset(p + n + 24, 0, 16);
        memcpy(p + n + 24, &stack, 8);
        memcpy(p + n + 32, &heap, 8);
        n += 24 + HL_ALIGN_UP(descsz, 4);
    }
    return n;
}

/* The stack and heap sizes a guest declares: read, checked against the setters' limits. */
static void test_defaults(void)
{
    uint8_t note[128];
    size_t n, len;
    uint8_t *d;
    hl_elf elf;
    const mseg s[] = { { PT_LOAD, 0x200000, 0x100, 0x100, RX }, NOTE_SEG };
    struct {
        const char *what;
        uint32_t descsz;
        uint64_t stack, heap;
        bool twice;
        const char *bad; /* NULL: accepted */
        uint64_t want_stack, want_heap;
    } cases[] = {
        { "1 MiB / 32 MiB", 16, 1u << 20, 32u << 20, false, NULL, 1u << 20, 32u << 20 },
        { "stack only", 16, 1u << 20, 0, false, NULL, 1u << 20, 0 },
        { "the limits", 16, HL_SCRATCH_MAX, HL_HEAP_MIN, false, NULL, HL_SCRATCH_MAX, HL_HEAP_MIN },
        { "descriptor of 8 bytes: not ours", 8, 1u << 20, 32u << 20, false, NULL, 0, 0 },
        { "huge stack", 16, 1ull << 40, 0, false,
          "guest ELF: declared stack size 1099511627776 is outside 65536..67108864", 0, 0 },
        { "tiny heap", 16, 0, 1, false, "guest ELF: declared heap size 1 is outside 65536..268435456", 0, 0 },
        { "heap above the maximum", 16, 0, (uint64_t)HL_HEAP_MAX + 1, false,
          "guest ELF: declared heap size 268435457 is outside 65536..268435456", 0, 0 },
        { "two declarations", 16, 1u << 20, 32u << 20, true, "guest ELF: more than one stack and heap declaration", 0,
          0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        n = defaults_notes(note, cases[i].descsz, cases[i].stack, cases[i].heap, cases[i].twice);
        d = mini_elf(s, 2, 0x200000, note, n, &len);
        if (cases[i].bad) {
            expect_bad(cases[i].what, d, len, cases[i].bad);
            char seed[32];
            snprintf(seed, sizeof seed, "bad_defaults_%zu", i);
            save_seed(seed, d, len);
        } else {
            expect_ok(cases[i].what, d, len, &elf);
            CHECK_INT(elf.stack_default, cases[i].want_stack);
            CHECK_INT(elf.heap_default, cases[i].want_heap);
        }
        free(d);
    }
}

static void test_minimal(void)
{
    uint8_t *d;
    size_t len;
    hl_elf elf;

    {
        const mseg s[] = { { PT_LOAD, 0x200000, 0x100, 0x100, RX }, NOTE_SEG };
        d = mini_elf(s, 2, 0x200000, std_note, std_note_len, &len);
        expect_ok("minimal: one code segment", d, len, &elf);
        CHECK_INT(elf.nseg, 1);
        CHECK_INT(elf.end, 0x201000);
        CHECK_INT(elf.ro_end, 0x201000);
        CHECK_INT(elf.abi_version, HL_ABI_VERSION);
        save_seed("min_code_only", d, len);
        free(d);
    }
    {
        const mseg s[] = { NOTE_SEG,
                           { PT_LOAD, 0x200000, 0x100, 0x100, RX },
                           { PT_LOAD, 0x201000, 0x10, 0x10, RO },
                           { PT_LOAD, 0x203000, 0x3000, 3, RW } };
        d = mini_elf(s, 4, 0x200010, std_note, std_note_len, &len);
        expect_ok("minimal: note first, code, rodata, data+bss", d, len, &elf);
        CHECK_INT(elf.nseg, 3);
        CHECK_INT(elf.ro_end, 0x203000);
        CHECK_INT(elf.end, 0x206000);
        save_seed("min_three", d, len);
        free(d);
    }
    {
        /* A segment not starting on a page boundary. */
        const mseg s[] = { { PT_LOAD, 0x200000, 0x100, 0x100, RX }, { PT_LOAD, 0x201234, 0x10, 0x10, RW }, NOTE_SEG };
        d = mini_elf(s, 3, 0x200000, std_note, std_note_len, &len);
        expect_ok("minimal: data mid-page", d, len, &elf);
        CHECK_INT(elf.ro_end, 0x201000);
        CHECK_INT(elf.end, 0x202000);
        free(d);
    }
    {
        /* Sharing a page, in both directions of alignment. */
        const mseg s[] = { { PT_LOAD, 0x200000, 0x100, 0x100, RX }, { PT_LOAD, 0x200800, 0x100, 0x100, RO }, NOTE_SEG };
        d = mini_elf(s, 3, 0x200000, std_note, std_note_len, &len);
        expect_bad("minimal: segments sharing a page", d, len,
                   "segment 1 overlaps or shares a page with the one before (segments must ascend and be page-aligned)");
        save_seed("bad_shared_page", d, len);
        free(d);
    }
    {
        const mseg s[] = { { PT_LOAD, 0x200000, 0x1001, 0x100, RX }, { PT_LOAD, 0x201800, 0x100, 0x100, RW }, NOTE_SEG };
        d = mini_elf(s, 3, 0x200000, std_note, std_note_len, &len);
        expect_bad("minimal: code's last page shared with data", d, len, "segment 1 overlaps or shares a page");
        free(d);
    }
    {
        /* A PT_LOAD with memsz 0 is ignored wherever it points. */
        const mseg s[] = { { PT_LOAD, 0, 0, 0, PF_R | PF_W | PF_X }, { PT_LOAD, 0x200000, 0x100, 0x100, RX }, NOTE_SEG };
        d = mini_elf(s, 3, 0x200000, std_note, std_note_len, &len);
        expect_ok("minimal: empty PT_LOAD at 0", d, len, &elf);
        CHECK_INT(elf.nseg, 1);
        free(d);
    }
    {
        /* 64 program headers are allowed. */
        mseg s[64];
        memset(s, 0, sizeof s);
        s[0] = (mseg){ PT_LOAD, 0x200000, 0x100, 0x100, RX };
        s[1] = (mseg)NOTE_SEG;
        for (int i = 2; i < 64; i++) s[i] = (mseg){ PT_NULL, 0, 0, 0, 0 };
        d = mini_elf(s, 64, 0x200000, std_note, std_note_len, &len);
        expect_ok("minimal: 64 program headers", d, len, NULL);
        free(d);
    }
    {
        /* 16 loadable segments are allowed, 17 are not. */
        mseg s[18];
        for (int i = 0; i < 17; i++)
            s[i] = (mseg){ PT_LOAD, 0x200000 + (uint64_t)i * 0x1000, 0x800, 0x10, i == 0 ? RX : i < 8 ? RO : RW };
        s[16] = (mseg)NOTE_SEG;
        d = mini_elf(s, 17, 0x200000, std_note, std_note_len, &len);
        expect_ok("minimal: 16 PT_LOAD", d, len, &elf);
        CHECK_INT(elf.nseg, 16);
        CHECK_INT(elf.ro_end, 0x208000);
        CHECK_INT(elf.end, 0x210000);
        save_seed("min_16_segments", d, len);
        free(d);
        s[16] = (mseg){ PT_LOAD, 0x200000 + 16 * 0x1000, 0x800, 0x10, RW };
        s[17] = (mseg)NOTE_SEG;
        d = mini_elf(s, 18, 0x200000, std_note, std_note_len, &len);
        expect_bad("minimal: 17 PT_LOAD", d, len, "more than 16 loadable segments");
        save_seed("bad_17_segments", d, len);
        free(d);
    }
    {
        /* Several notes in one segment; ours is not the first. */
        uint8_t note[64];
        size_t n = make_note(note, 4, 4, 3, "GNU", 0x12345678);
        n += make_note(note + n, 11, 4, HL_NOTE_TYPE_ABI, "Hyperlight", HL_ABI_VERSION);
        const mseg s[] = { { PT_LOAD, 0x200000, 0x100, 0x100, RX }, NOTE_SEG };
        d = mini_elf(s, 2, 0x200000, note, n, &len);
        expect_ok("minimal: ABI note after a GNU note", d, len, &elf);
        CHECK_INT(elf.abi_version, HL_ABI_VERSION);
        save_seed("min_two_notes", d, len);
        free(d);
        /* The same note, but a Hyperlight note of another type in front. */
        n = make_note(note, 11, 4, 2, "Hyperlight", 7);
        n += make_note(note + n, 11, 4, HL_NOTE_TYPE_ABI, "Hyperlight", HL_ABI_VERSION);
        d = mini_elf(s, 2, 0x200000, note, n, &len);
        expect_ok("minimal: ABI note after another Hyperlight note", d, len, &elf);
        free(d);
        /* A first note whose size runs past the segment hides the rest. */
        n = make_note(note, 0x100, 4, 3, "GNU", 0);
        n += make_note(note + n, 11, 4, HL_NOTE_TYPE_ABI, "Hyperlight", HL_ABI_VERSION);
        d = mini_elf(s, 2, 0x200000, note, n, &len);
        expect_bad("minimal: garbled first note", d, len, "no hyperlight ABI note");
        save_seed("bad_garbled_note", d, len);
        free(d);
    }
    {
        /* Two note segments: a garbled one, then a good one. */
        const mseg s[] = { { PT_LOAD, 0x200000, 0x100, 0x100, RX }, NOTE_SEG, NOTE_SEG };
        d = mini_elf(s, 3, 0x200000, std_note, std_note_len, &len);
        memcpy(d + get_ph(d, 1).p_offset + 12, "hyperlight", 10);
        expect_ok("minimal: second PT_NOTE holds the note", d, len, NULL);
        free(d);
    }
    {
        uint8_t note[28];
        size_t n = make_note(note, 11, 4, HL_NOTE_TYPE_ABI, "Hyperlight", HL_ABI_VERSION + 1);
        const mseg s[] = { { PT_LOAD, 0x200000, 0x100, 0x100, RX }, NOTE_SEG };
        d = mini_elf(s, 2, 0x200000, note, n, &len);
        char want[32];
        snprintf(want, sizeof want, "ABI version %u,", HL_ABI_VERSION + 1);
        expect_bad("minimal: ABI version + 1", d, len, want);
        save_seed("bad_abi_version", d, len);
        free(d);
    }
    {
        const mseg s[] = { { PT_LOAD, 0x200000, 0x100, 0x100, RX } };
        d = mini_elf(s, 1, 0x200000, NULL, 0, &len);
        expect_bad("minimal: no note", d, len, "no hyperlight ABI note");
        free(d);
    }
    {
        /* Only an executable segment can hold the entry, even when R+X comes later. */
        const mseg s[] = { { PT_LOAD, 0x200000, 0x100, 0x100, RO }, { PT_LOAD, 0x201000, 0x100, 0x100, RX }, NOTE_SEG };
        d = mini_elf(s, 3, 0x200000, std_note, std_note_len, &len);
        expect_bad("minimal: entry in a read-only first segment", d, len, "entry point 0x200000 is not inside");
        free(d);
        d = mini_elf(s, 3, 0x201080, std_note, std_note_len, &len);
        expect_ok("minimal: entry in the second segment", d, len, NULL);
        free(d);
    }
    {
        const mseg s[] = { { PT_LOAD, 0x200000, 0x100, 0x100, RX },
                           { PT_LOAD, 0x201000, 0x100, 0x100, RW },
                           { PT_LOAD, 0x202000, 0x100, 0x100, RO },
                           NOTE_SEG };
        d = mini_elf(s, 4, 0x200000, std_note, std_note_len, &len);
        expect_bad("minimal: read-only after writable", d, len, "read-only segment 2 follows a writable one");
        save_seed("bad_ro_after_rw", d, len);
        free(d);
    }
    {
        const mseg s[] = { { PT_LOAD, 0x200000, 0x100, 0x100, RX }, { PT_INTERP, 0x201000, 0x10, 0x10, RO }, NOTE_SEG };
        d = mini_elf(s, 3, 0x200000, std_note, std_note_len, &len);
        expect_bad("minimal: PT_INTERP", d, len, "dynamically linked (segment 1)");
        save_seed("bad_interp", d, len);
        free(d);
    }
    {
        const mseg s[] = { { PT_LOAD, 0x1ff000, 0x2000, 0x10, RX }, NOTE_SEG };
        d = mini_elf(s, 2, 0x200000, std_note, std_note_len, &len);
        expect_bad("minimal: segment straddling the image base", d, len, "outside the image area");
        save_seed("bad_below_base", d, len);
        free(d);
    }
}

/* hl_elf_load copies filesz bytes and zero-fills to memsz, and touches nothing else. */
static void test_load(const uint8_t *demo, size_t demo_len)
{
    hl_elf elf;
    char err[HL_ERR_LEN];
    if (demo) {
        uint8_t *data = dup_exact(demo, demo_len);
        if (hl_elf_parse(data, demo_len, &elf, err) == HL_OK) {
            size_t mem_len = elf.end + HL_PAGE;
            uint8_t *mem = malloc(mem_len);
            int bad = 0;
            memset(mem, 0xcc, mem_len);
            hl_elf_load(&elf, data, mem, mem_len);
            for (int i = 0; i < elf.nseg; i++) {
                const hl_segment *s = &elf.seg[i];
                CHECK(memcmp(mem + s->vaddr, data + s->offset, s->filesz) == 0);
                for (uint64_t a = s->vaddr + s->filesz; a < s->vaddr + s->memsz; a++) bad += mem[a] != 0;
                for (uint64_t a = s->vaddr + s->memsz; a < HL_ALIGN_UP(s->vaddr + s->memsz, HL_PAGE); a++)
                    bad += mem[a] != 0xcc;
            }
            for (uint64_t a = 0; a < HL_IMAGE_BASE; a++) bad += mem[a] != 0xcc;
            for (uint64_t a = elf.end; a < mem_len; a++) bad += mem[a] != 0xcc;
            CHECK_INT(bad, 0);
            CHECK(elf.seg[2].memsz > elf.seg[2].filesz);

            /* Memory too small for the last segment: it is skipped, the others load. */
            memset(mem, 0xcc, mem_len);
            hl_elf_load(&elf, data, mem, elf.seg[2].vaddr + elf.seg[2].memsz - 1);
            CHECK(memcmp(mem + elf.seg[0].vaddr, data + elf.seg[0].offset, elf.seg[0].filesz) == 0);
            CHECK(memcmp(mem + elf.seg[1].vaddr, data + elf.seg[1].offset, elf.seg[1].filesz) == 0);
            CHECK_INT(mem[elf.seg[2].vaddr], 0xcc);
            /* Exactly enough memory. */
            memset(mem, 0xcc, mem_len);
            hl_elf_load(&elf, data, mem, elf.seg[2].vaddr + elf.seg[2].memsz);
            CHECK_INT(mem[elf.seg[2].vaddr + elf.seg[2].memsz - 1], 0);
            free(mem);
        }
        free(data);
    }
    {
        /* Pure bss, partial file data, full file data. */
        const mseg s[] = { { PT_LOAD, 0x200000, 0x1800, 0x1800, RX },
                           { PT_LOAD, 0x202010, 0x2000, 3, RW },
                           { PT_LOAD, 0x205000, 0x1000, 0, RW },
                           NOTE_SEG };
        size_t len;
        uint8_t *d = mini_elf(s, 4, 0x200000, std_note, std_note_len, &len);
        uint8_t *data = dup_exact(d, len);
        CHECK_INT(hl_elf_parse(data, len, &elf, err), HL_OK);
        {
            size_t mem_len = elf.end;
            uint8_t *mem = malloc(mem_len);
            int bad = 0;
            memset(mem, 0xcc, mem_len);
            hl_elf_load(&elf, data, mem, mem_len);
            for (uint64_t a = 0x200000; a < 0x201800; a++) bad += mem[a] != 0x11;
            for (uint64_t a = 0x201800; a < 0x202010; a++) bad += mem[a] != 0xcc;
            for (uint64_t a = 0x202010; a < 0x202013; a++) bad += mem[a] != 0x22;
            for (uint64_t a = 0x202013; a < 0x204010; a++) bad += mem[a] != 0;
            for (uint64_t a = 0x204010; a < 0x205000; a++) bad += mem[a] != 0xcc;
            for (uint64_t a = 0x205000; a < 0x206000; a++) bad += mem[a] != 0;
            CHECK_INT(bad, 0);
            free(mem);
        }
        free(data);
        free(d);
    }
}

int main(void)
{
    const char *build = getenv("HL_BUILD");
    char path[1024];
    uint8_t *demo;
    size_t len = 0;

    seed_dir = getenv("HL_ELF_SEEDS");
    std_note_len = make_note(std_note, 11, 4, HL_NOTE_TYPE_ABI, "Hyperlight", HL_ABI_VERSION);
    CHECK_INT(std_note_len, 28);

    snprintf(path, sizeof path, "%s/guests/demo.elf", build && *build ? build : "build");
    demo = read_file(path, &len);
    CHECK(demo != NULL);
    if (!demo) {
        fprintf(stderr, "test_elf: cannot read %s (run `make all` first)\n", path);
    } else {
        test_demo(demo, len);
        test_demo_mutations(demo, len);
    }
    test_minimal();
    test_defaults();
    test_load(demo, len);
    free(demo);
    return check_exit("test_elf");
}

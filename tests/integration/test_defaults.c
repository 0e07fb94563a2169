/* test_defaults.c - the stack and heap a guest declares (HL_GUEST_DEFAULTS): used where the
 * configuration set no size, overridden where it did, refused out of range, kept by snapshot
 * files, shown by `hyperlight info`; and the CLI's --map. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

static const char *sizes_of(hl_sandbox *sb)
{
    hl_value r;
    if (hl_call(sb, "Sizes", HL_STRING, NULL, 0, &r) != HL_OK) return hl_last_error(sb);
    return hl_value_str(&r);
}

/* The sandbox's sizes by hl_sandbox_sizes, as "stack=S heap=H". */
static const char *api_sizes(hl_sandbox *sb)
{
    static char s[64];
    uint64_t stack = 0, heap = 0;
    CHECK_INT(hl_sandbox_sizes(sb, &stack, &heap), HL_OK);
    snprintf(s, sizeof s, "stack=%llu heap=%llu", (unsigned long long)stack, (unsigned long long)heap);
    return s;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *d = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 && (d = malloc((size_t)n)) &&
        fread(d, 1, (size_t)n, f) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *len = d ? (size_t)n : 0;
    return d;
}

/* The offset of the sizes note's descriptor in the ELF image, or 0. */
static size_t find_defaults_desc(const uint8_t *d, size_t len)
{
    const uint8_t hdr[24] = { 11,  0,   0,   0,   16,  0,   0, 0, HL_NOTE_TYPE_DEFAULTS, 0, 0, 0, 'H', 'y', 'p', 'e',
                              'r', 'l', 'i', 'g', 'h', 't', 0, 0 };
    for (size_t i = 0; i + sizeof hdr + 16 <= len; i += 4)
        if (memcmp(d + i, hdr, sizeof hdr) == 0) return i + sizeof hdr;
    return 0;
}

/* Runs the CLI with args; its exit status, stdout+stderr in out. */
static int run_cli(const char *args, char *out, size_t outlen)
{
    char cmd[4096];
    const char *b = getenv("HL_BUILD");
    size_t n;
    FILE *p;
    snprintf(cmd, sizeof cmd, "timeout 60 %s/bin/hyperlight %s 2>&1", b ? b : "build", args);
    p = popen(cmd, "r");
    n = fread(out, 1, outlen - 1, p);
    out[n] = 0;
    return WEXITSTATUS(pclose(p));
}

static void cli_tests(void)
{
    char args[3000], out[8192], path[] = "/tmp/hl-defaults-XXXXXX";
    int fd = mkstemp(path);
    size_t at;
    CHECK(fd >= 0);
    CHECK_INT(write(fd, "hi\n", 3), 3);
    close(fd);
    snprintf(args, sizeof args, "info %s", guest_path("defaults_guest"));
    CHECK_INT(run_cli(args, out, sizeof out), 0);
    CHECK_STR(out, "Sizes() -> string\nstack 1048576 bytes\nheap 33554432 bytes\n");
    snprintf(args, sizeof args, "info --heap 8M %s", guest_path("defaults_guest"));
    CHECK_INT(run_cli(args, out, sizeof out), 0);
    CHECK_STR(out, "Sizes() -> string\nstack 1048576 bytes\nheap 8388608 bytes\n");
    snprintf(args, sizeof args, "info %s", guest_path("files_guest"));
    CHECK_INT(run_cli(args, out, sizeof out), 0);
    CHECK_HAS(out, "\nstack 262144 bytes\nheap 4194304 bytes\n");

    /* --map LABEL=PATH */
    snprintf(args, sizeof args, "call --map lib/x.lua=%s --map y=%s %s Stat ./lib/x.lua", path, path,
             guest_path("files_guest"));
    CHECK_INT(run_cli(args, out, sizeof out), 0);
    CHECK_STR(out, "stat=0 mode=100444 size=3 F=0 R=0 W=-1/30 X=-1/13\n");
    snprintf(args, sizeof args, "call --map y=/nonexistent/file %s Stat y", guest_path("files_guest"));
    CHECK_INT(run_cli(args, out, sizeof out), 1);
    CHECK_STR(out, "hyperlight: --map: map file '/nonexistent/file': No such file or directory\n");
    snprintf(args, sizeof args, "call --map y %s Stat y", guest_path("files_guest"));
    CHECK_INT(run_cli(args, out, sizeof out), 2);
    CHECK_HAS(out, "hyperlight: --map: 'y' is not LABEL=PATH\n");
    snprintf(args, sizeof args, "call --map =%s %s Stat y", path, guest_path("files_guest"));
    CHECK_INT(run_cli(args, out, sizeof out), 2);
    CHECK_HAS(out, "is not LABEL=PATH\n");
    snprintf(args, sizeof args, "call --map %048d=%s %s Stat y", 0, path, guest_path("files_guest"));
    CHECK_INT(run_cli(args, out, sizeof out), 2);
    CHECK_HAS(out, "hyperlight: --map: label '000000000000000000000000000000000000000000000000' is longer than 47 "
                   "bytes\n");
    snprintf(args, sizeof args, "call --map y=%s --map y=%s %s Stat y", path, path, guest_path("files_guest"));
    CHECK_INT(run_cli(args, out, sizeof out), 2);
    CHECK_HAS(out, "hyperlight: --map: map file '");
    CHECK_HAS(out, "': label 'y' is already used\n");
    at = (size_t)snprintf(args, sizeof args, "call");
    for (int i = 0; i <= HL_MAX_FILES; i++)
        at += (size_t)snprintf(args + at, sizeof args - at, " --map f%d=%s", i, path);
    snprintf(args + at, sizeof args - at, " %s Stat f0", guest_path("files_guest"));
    CHECK_INT(run_cli(args, out, sizeof out), 2);
    CHECK_HAS(out, "': at most 32 files per sandbox\n");
    CHECK_INT(run_cli("call --map", out, sizeof out), 2);
    CHECK_HAS(out, "hyperlight: option --map needs a value\n");

    /* a snapshot file has the sizes it was made with, and no mapped files */
    {
        char snap[] = "/tmp/hl-defaults-cli-XXXXXX";
        close(mkstemp(snap));
        snprintf(args, sizeof args, "snapshot %s %s", guest_path("defaults_guest"), snap);
        CHECK_INT(run_cli(args, out, sizeof out), 0);
        snprintf(args, sizeof args, "info %s", snap);
        CHECK_INT(run_cli(args, out, sizeof out), 0);
        CHECK_STR(out, "Sizes() -> string\nstack 1048576 bytes\nheap 33554432 bytes\n");
        snprintf(args, sizeof args, "call %s Sizes", snap);
        CHECK_INT(run_cli(args, out, sizeof out), 0);
        CHECK_STR(out, "stack=1048576 heap=33554432 bounds=ok\n");
        snprintf(args, sizeof args, "call --map y=%s %s Sizes", path, snap);
        CHECK_INT(run_cli(args, out, sizeof out), 2);
        CHECK_HAS(out, "hyperlight: --map does not apply to a snapshot file (snapshot files hold no mapped files)\n");
        unlink(snap);
    }
    unlink(path);
}

int main(void)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb;
    uint8_t *elf;
    size_t len, at;

    /* the declaration applies where the configuration set nothing */
    sb = must_sandbox("defaults_guest", cfg);
    CHECK_STR(sizes_of(sb), "stack=1048576 heap=33554432 bounds=ok");
    CHECK_STR(api_sizes(sb), "stack=1048576 heap=33554432");
    {
        /* a snapshot file keeps the sizes; a sandbox from it has them whatever its config */
        char path[] = "/tmp/hl-defaults-snap-XXXXXX";
        int fd = mkstemp(path);
        hl_snapshot *snap = NULL, *loaded = NULL;
        hl_config *other = hl_config_new();
        hl_sandbox *c = NULL;
        close(fd);
        CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
        CHECK_INT(hl_snapshot_save(snap, path), HL_OK);
        CHECK_INT(hl_snapshot_load(&loaded, path), HL_OK);
        CHECK_INT(hl_config_set_heap_size(other, 8u << 20), HL_OK);
        CHECK_INT(hl_sandbox_new_from_snapshot(&c, loaded, other), HL_OK);
        if (c) CHECK_STR(sizes_of(c), "stack=1048576 heap=33554432 bounds=ok");
        hl_sandbox_free(c);
        hl_snapshot_free(snap);
        hl_snapshot_free(loaded);
        hl_config_free(other);
        unlink(path);
    }
    hl_sandbox_free(sb);

    /* an explicit size wins, even one equal to the library's default; the other still applies */
    CHECK_INT(hl_config_set_scratch_size(cfg, HL_SCRATCH_DEFAULT), HL_OK);
    sb = must_sandbox("defaults_guest", cfg);
    CHECK_STR(sizes_of(sb), "stack=262144 heap=33554432 bounds=ok");
    hl_sandbox_free(sb);
    CHECK_INT(hl_config_set_heap_size(cfg, 6u << 20), HL_OK);
    sb = must_sandbox("defaults_guest", cfg);
    CHECK_STR(sizes_of(sb), "stack=262144 heap=6291456 bounds=ok");
    CHECK_STR(api_sizes(sb), "stack=262144 heap=6291456");
    hl_sandbox_free(sb);
    /* a refused setter call does not count as setting the size */
    hl_config_free(cfg);
    cfg = hl_config_new();
    CHECK_INT(hl_config_set_heap_size(cfg, 1), HL_ERR_INVALID_ARG);
    sb = must_sandbox("defaults_guest", cfg);
    CHECK_STR(api_sizes(sb), "stack=1048576 heap=33554432");
    hl_sandbox_free(sb);
    /* a guest that declares nothing gets the defaults */
    sb = must_sandbox("files_guest", cfg);
    CHECK_STR(api_sizes(sb), "stack=262144 heap=4194304");
    hl_sandbox_free(sb);
    CHECK_INT(hl_sandbox_sizes(NULL, NULL, NULL), HL_ERR_INVALID_ARG);

    /* a hostile declaration: creation fails with the reason, before any VM exists */
    elf = read_all(guest_path("defaults_guest"), &len);
    CHECK(elf != NULL);
    at = elf ? find_defaults_desc(elf, len) : 0;
    CHECK(at != 0);
    if (at) {
        uint64_t huge = 1ull << 40, small = 4096, ok = 1u << 20;
        memcpy(elf + at, &huge, 8);
        CHECK_INT(hl_sandbox_new_from_memory(&sb, elf, len, cfg), HL_ERR_BAD_GUEST);
        CHECK_STR(hl_last_error(NULL), "guest ELF: declared stack size 1099511627776 is outside 65536..67108864");
        CHECK(sb == NULL);
        /* even when the configuration sets the stack: the ELF itself is malformed */
        CHECK_INT(hl_config_set_scratch_size(cfg, 1u << 20), HL_OK);
        CHECK_INT(hl_sandbox_new_from_memory(&sb, elf, len, cfg), HL_ERR_BAD_GUEST);
        memcpy(elf + at, &ok, 8);
        memcpy(elf + at + 8, &small, 8);
        CHECK_INT(hl_sandbox_new_from_memory(&sb, elf, len, cfg), HL_ERR_BAD_GUEST);
        CHECK_STR(hl_last_error(NULL), "guest ELF: declared heap size 4096 is outside 65536..268435456");
        /* in range again: a heap of 64 KiB + 1 byte is rounded up to whole pages */
        small = (64u << 10) + 1;
        memcpy(elf + at + 8, &small, 8);
        CHECK_INT(hl_sandbox_new_from_memory(&sb, elf, len, cfg), HL_OK);
        if (sb) CHECK_STR(sizes_of(sb), "stack=1048576 heap=69632 bounds=ok");
        hl_sandbox_free(sb);
    }
    free(elf);
    hl_config_free(cfg);
    cli_tests();
    return check_exit("defaults");
}

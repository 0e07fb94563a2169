/* test_files.c - init data and host files mapped read-only into sandboxes: the guest reads
 * them exactly, cannot write them, snapshots and pools keep them, and bad input is refused. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static uint64_t fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t call_u64(hl_sandbox *sb, const char *fn, const char *arg)
{
    hl_value a = hl_str(arg ? arg : ""), r;
    if (hl_call(sb, fn, HL_U64, &a, arg ? 1 : 0, &r) != HL_OK) {
        fprintf(stderr, "%s: %s\n", fn, hl_last_error(sb));
        return 0;
    }
    return r.v.u64;
}

/* fn(arg1[, arg2]) -> string, compared with want exactly. */
static void expect_str(hl_sandbox *sb, const char *fn, const char *a1, const char *a2, const char *want)
{
    hl_value a[2] = { hl_str(a1), hl_str(a2 ? a2 : "") }, r;
    if (hl_call(sb, fn, HL_STRING, a, a2 ? 2 : 1, &r) != HL_OK) {
        fprintf(stderr, "%s(%s): %s\n", fn, a1, hl_last_error(sb));
        CHECK(0);
        return;
    }
    CHECK_STR(hl_value_str(&r), want);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    if (len) fwrite(data, 1, len, f);
    fclose(f);
}

/* The mapped files as a file system (src/guest/files.c): exact results and errnos, in
 * picolibc's numbers: ENOENT 2, EBADF 9, EACCES 13, EEXIST 17, ENOTDIR 20, EISDIR 21,
 * EINVAL 22, EMFILE 24, ESPIPE 29, EROFS 30 (as Linux's), ENAMETOOLONG 91 (Linux: 36). */
static void posix_files(const char *dir, const char *b_path, const unsigned char *a_data, size_t a_len,
                        const char *a_path)
{
    char lines_path[256], empty_path[256], mod_path[256], longp[400];
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb;
    snprintf(lines_path, sizeof lines_path, "%s/lines.txt", dir);
    snprintf(empty_path, sizeof empty_path, "%s/empty", dir);
    snprintf(mod_path, sizeof mod_path, "%s/mod.lua", dir);
    write_file(lines_path, "first line\nsecond\n\nlast, no newline", 35);
    write_file(empty_path, "", 0);
    write_file(mod_path, "return 42\n", 10);
    CHECK_INT(hl_config_map_file(cfg, b_path, "beta"), HL_OK);
    CHECK_INT(hl_config_map_file(cfg, lines_path, "lines.txt"), HL_OK);
    CHECK_INT(hl_config_map_file(cfg, empty_path, "empty"), HL_OK);
    CHECK_INT(hl_config_map_file(cfg, mod_path, "lib/mod.lua"), HL_OK);
    CHECK_INT(hl_config_map_file(cfg, a_path, "/abs/alpha"), HL_OK);
    sb = must_sandbox("files_guest", cfg);

    expect_str(sb, "Seq", "beta", NULL,
               "open=3 read=2 [he] cur=2 end-1=4 read=1 [o] eof=0 set100=100 past=0 pread=3 [ell] pread-neg=-1/22 "
               "cur-200=-1/22 whence7=-1/22 fstat=0 mode=100444 size=5 write=-1/9 close=0 close=-1/9 read=-1/9 "
               "lseek=-1/9 fstat=-1/9 read0=0 read1=-1/9 lseek0=-1/29 fstat1=0 mode=20222 read-1=-1/9 read99=-1/9");
    CHECK_INT(call_u64(sb, "Sum", "/abs/alpha"), fnv(a_data, a_len)); /* a leading '/' is the root */
    CHECK_INT(call_u64(sb, "Sum", "abs//./alpha"), fnv(a_data, a_len));
    CHECK_INT(call_u64(sb, "Sum", "./lib/mod.lua"), fnv((const unsigned char *)"return 42\n", 10));
    CHECK_INT(call_u64(sb, "Sum", "lib/../lib/mod.lua"), fnv((const unsigned char *)"return 42\n", 10));
    CHECK_INT(call_u64(sb, "Sum", "empty"), fnv(NULL, 0));
    expect_str(sb, "Seq", "empty", NULL,
               "open=3 read=0 [] cur=0 end-1=-1/22 read=0 [] eof=0 set100=100 past=0 pread=0 [] pread-neg=-1/22 "
               "cur-200=-1/22 whence7=-1/22 fstat=0 mode=100444 size=0 write=-1/9 close=0 close=-1/9 read=-1/9 "
               "lseek=-1/9 fstat=-1/9 read0=0 read1=-1/9 lseek0=-1/29 fstat1=0 mode=20222 read-1=-1/9 read99=-1/9");

    /* opening: read-only access only; write modes of a mapped file are EROFS, a missing path ENOENT */
    expect_str(sb, "Open", "beta", "r", "open=3");
    expect_str(sb, "Open", "./beta", "rc", "open=3"); /* O_CREAT of an existing file: it exists */
    expect_str(sb, "Open", "beta", "w", "open=-1/30");
    expect_str(sb, "Open", "beta", "b", "open=-1/30");
    expect_str(sb, "Open", "beta", "rt", "open=-1/30");
    expect_str(sb, "Open", "beta", "rcx", "open=-1/17");
    expect_str(sb, "Open", "beta", "rd", "open=-1/20");
    expect_str(sb, "Open", "nope", "r", "open=-1/2");
    expect_str(sb, "Open", "nope", "w", "open=-1/2");
    expect_str(sb, "Open", "nope", "wc", "open=-1/30"); /* nothing can be created */
    expect_str(sb, "Open", "", "r", "open=-1/2");
    expect_str(sb, "Open", "Beta", "r", "open=-1/2");   /* names are case-sensitive */
    expect_str(sb, "Open", "beta/", "r", "open=-1/20"); /* a file is not a directory */
    expect_str(sb, "Open", "lib", "r", "open=-1/21");
    expect_str(sb, "Open", "lib/", "w", "open=-1/21");
    memset(longp, 'a', 300);
    longp[300] = 0;
    expect_str(sb, "Open", longp, "r", "open=-1/91");

    /* stat and access: files 0444, directories (prefixes of labels) 0555, write access EROFS */
    expect_str(sb, "Stat", "lib/mod.lua", NULL, "stat=0 mode=100444 size=10 F=0 R=0 W=-1/30 X=-1/13");
    expect_str(sb, "Stat", "/lines.txt", NULL, "stat=0 mode=100444 size=35 F=0 R=0 W=-1/30 X=-1/13");
    expect_str(sb, "Stat", "empty", NULL, "stat=0 mode=100444 size=0 F=0 R=0 W=-1/30 X=-1/13");
    expect_str(sb, "Stat", "lib", NULL, "stat=0 mode=40555 size=0 F=0 R=0 W=-1/30 X=0");
    expect_str(sb, "Stat", "/abs/", NULL, "stat=0 mode=40555 size=0 F=0 R=0 W=-1/30 X=0");
    expect_str(sb, "Stat", ".", NULL, "stat=0 mode=40555 size=0 F=0 R=0 W=-1/30 X=0");
    expect_str(sb, "Stat", "li", NULL, "stat=-1/2 F=-1/2 R=-1/2 W=-1/2 X=-1/2");
    expect_str(sb, "Stat", "lib/mod", NULL, "stat=-1/2 F=-1/2 R=-1/2 W=-1/2 X=-1/2");

    /* descriptors 3..63; the 62nd open is EMFILE; closing frees them all */
    expect_str(sb, "Emfile", "beta", NULL, "opened=61 first=3 last=63 errno=24 again=3");

    /* picolibc's stdio over them */
    expect_str(sb, "Stdio", "lines.txt", NULL,
               "<first line> <second> <> <last, no newline> feof=1 ftell=35 fseek=0 fread=5 [t lin] ftell=9 "
               "fclose=0 w=NULL/30 r+=NULL/30 missing=NULL/2");
    expect_str(sb, "Stdio", "./lib/mod.lua", NULL,
               "<return 42> feof=1 ftell=10 fseek=0 fread=5 [rn 42] ftell=9 fclose=0 w=NULL/30 r+=NULL/30 "
               "missing=NULL/2");

    /* an empty file mapped: hl_guest_file finds it with length 0; an unknown label is NULL */
    expect_str(sb, "Raw", "empty", NULL, "found len=0");
    expect_str(sb, "Raw", "beta", NULL, "found len=5");
    expect_str(sb, "Raw", "./beta", NULL, "NULL len=0"); /* hl_guest_file takes the label itself */

    /* an open file and its offset are guest memory: a restore puts them back */
    {
        hl_snapshot *snap = NULL;
        hl_value v = hl_u32(6), r;
        expect_str(sb, "Keep", "lines.txt", NULL, "open=3");
        CHECK_INT(hl_call(sb, "Take", HL_STRING, &v, 1, &r), HL_OK);
        CHECK_STR(hl_value_str(&r), "read=6 [first ]");
        CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
        v = hl_u32(4);
        CHECK_INT(hl_call(sb, "Take", HL_STRING, &v, 1, &r), HL_OK);
        CHECK_STR(hl_value_str(&r), "read=4 [line]");
        CHECK_INT(hl_call(sb, "Take", HL_STRING, &v, 1, &r), HL_OK);
        CHECK_STR(hl_value_str(&r), "read=4 [\nsec]");
        CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
        CHECK_INT(hl_call(sb, "Take", HL_STRING, &v, 1, &r), HL_OK);
        CHECK_STR(hl_value_str(&r), "read=4 [line]");
        hl_snapshot_free(snap);
    }
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    unlink(lines_path);
    unlink(empty_path);
    unlink(mod_path);
}

int main(void)
{
    char dir[] = "/tmp/hl-files-XXXXXX", a_path[256], b_path[256];
    unsigned char *a_data, init[10000];
    size_t a_len = 3 * 4096 + 123, b_len = 5;
    int fds0 = test_count_fds();
    hl_value v;
    CHECK(mkdtemp(dir) != NULL);
    snprintf(a_path, sizeof a_path, "%s/a.bin", dir);
    snprintf(b_path, sizeof b_path, "%s/b.txt", dir);
    a_data = malloc(a_len);
    for (size_t i = 0; i < a_len; i++) a_data[i] = (unsigned char)(i * 31 + 7);
    FILE *f = fopen(a_path, "wb");
    fwrite(a_data, 1, a_len, f);
    fclose(f);
    f = fopen(b_path, "wb");
    fwrite("hello", 1, b_len, f);
    fclose(f);
    for (size_t i = 0; i < sizeof init; i++) init[i] = (unsigned char)(i ^ 0x5a);

    hl_config *cfg = hl_config_new();
    CHECK_INT(hl_config_set_init_data(cfg, init, sizeof init), HL_OK);
    CHECK_INT(hl_config_map_file(cfg, a_path, "alpha"), HL_OK);
    CHECK_INT(hl_config_map_file(cfg, b_path, "beta"), HL_OK);

    /* refusals */
    CHECK_INT(hl_config_map_file(cfg, b_path, "beta"), HL_ERR_INVALID_ARG);
    CHECK_HAS(hl_config_error(cfg), "label 'beta' is already used");
    CHECK_INT(hl_config_map_file(cfg, "/nonexistent/file", "gamma"), HL_ERR_IO);
    CHECK_STR(hl_config_error(cfg), "map file '/nonexistent/file': No such file or directory");
    CHECK_INT(hl_config_map_file(cfg, dir, "gamma"), HL_ERR_IO);
    CHECK_HAS(hl_config_error(cfg), "not a regular file");
    CHECK_INT(hl_config_map_file(cfg, a_path, ""), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_config_map_file(cfg, a_path, "a-label-that-is-much-longer-than-forty-seven-bytes"), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_config_set_init_data(cfg, init, (size_t)HL_INIT_DATA_MAX + 1), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_config_set_init_data(cfg, NULL, 5), HL_ERR_INVALID_ARG);
    {
        hl_config *many = hl_config_new();
        char label[16];
        for (int i = 0; i < HL_MAX_FILES; i++) {
            snprintf(label, sizeof label, "f%d", i);
            CHECK_INT(hl_config_map_file(many, b_path, label), HL_OK);
        }
        CHECK_INT(hl_config_map_file(many, b_path, "one-too-many"), HL_ERR_INVALID_ARG);
        CHECK_HAS(hl_config_error(many), "at most 32 files per sandbox");
        hl_sandbox *sb = must_sandbox("snap_guest", many);
        CHECK_INT(call_u64(sb, "FileSum", "f31"), fnv((const unsigned char *)"hello", 5));
        hl_sandbox_free(sb);
        hl_config_free(many);
    }

    /* the guest reads both exactly; a missing label is the guest's own error */
    hl_sandbox *sb = must_sandbox("snap_guest", cfg);
    CHECK_INT(call_u64(sb, "InitSum", NULL), fnv(init, sizeof init));
    CHECK_INT(call_u64(sb, "FileSum", "alpha"), fnv(a_data, a_len));
    CHECK_INT(call_u64(sb, "FileSum", "beta"), fnv((const unsigned char *)"hello", 5));
    v = hl_str("nope");
    CHECK_INT(hl_call(sb, "FileSum", HL_U64, &v, 1, &v), HL_ERR_GUEST);
    CHECK_HAS(hl_last_error(sb), "no file labelled 'nope'");

    /* snapshots and sandboxes made from them keep the files */
    hl_snapshot *snap;
    hl_sandbox *c;
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    CHECK_INT(hl_sandbox_new_from_snapshot(&c, snap, cfg), HL_OK);
    CHECK_INT(call_u64(c, "FileSum", "alpha"), fnv(a_data, a_len));
    CHECK_INT(call_u64(c, "InitSum", NULL), fnv(init, sizeof init));

    /* the guest cannot write a mapped file, nor its init data: a fault, the file unchanged */
    v = hl_str("alpha");
    CHECK_INT(hl_call(c, "FileWrite", HL_VOID, &v, 1, &v), HL_ERR_FAULT);
    CHECK_HAS(hl_last_error(c), "guest fault: write to read-only memory (mapped file)");
    CHECK_INT(hl_sandbox_restore(c, snap), HL_OK);
    CHECK_INT(call_u64(c, "FileSum", "alpha"), fnv(a_data, a_len));
    {
        unsigned char back[8];
        int fd = open(a_path, O_RDONLY);
        CHECK_INT(read(fd, back, 8), 8);
        close(fd);
        CHECK_INT(back[0], a_data[0]);
    }

    /* a sandbox without the same files cannot be restored to the snapshot */
    hl_config *plain = hl_config_new();
    hl_sandbox *p = must_sandbox("snap_guest", plain);
    CHECK_INT(hl_sandbox_restore(p, snap), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_last_error(p), "snapshot is incompatible with this sandbox: init data size differs");
    CHECK_INT(call_u64(p, "InitSum", NULL), 0);
    v = hl_str("alpha");
    CHECK_INT(hl_call(p, "FileSum", HL_U64, &v, 1, &v), HL_ERR_GUEST);

    /* pools copy the configuration, files included */
    hl_pool *pool;
    hl_sandbox *q;
    CHECK_INT(hl_pool_new(&pool, snap, cfg, 2, false), HL_OK);
    CHECK_INT(hl_pool_get(pool, &q), HL_OK);
    CHECK_INT(call_u64(q, "FileSum", "beta"), fnv((const unsigned char *)"hello", 5));
    CHECK_INT(hl_pool_put(pool, q), HL_OK);
    hl_pool_free(pool);

    posix_files(dir, b_path, a_data, a_len, a_path);

    hl_snapshot_free(snap);
    hl_sandbox_free(c);
    hl_sandbox_free(sb);
    hl_sandbox_free(p);
    hl_config_free(cfg);
    hl_config_free(plain);
    CHECK_INT(test_count_fds(), fds0); /* every descriptor of every file was closed */
    unlink(a_path);
    unlink(b_path);
    rmdir(dir);
    free(a_data);
    return check_exit("files");
}

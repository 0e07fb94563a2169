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
        CHECK_HAS(hl_config_error(many), "at most 8 files per sandbox");
        hl_sandbox *sb = must_sandbox("snap_guest", many);
        CHECK_INT(call_u64(sb, "FileSum", "f7"), fnv((const unsigned char *)"hello", 5));
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

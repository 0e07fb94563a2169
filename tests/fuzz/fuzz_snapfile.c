/* fuzz_snapfile.c - libFuzzer harness for hl_snapshot_load (snapshot files are hostile input).
 *
 * Build and run (new corpus entries go to the first directory, seeds are read from the second):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc/common -Isrc/host \
 *       tests/fuzz/fuzz_snapfile.c src/host/*.c src/common/wire.c -o /tmp/fuzz_snapfile -pthread
 *   mkdir -p /tmp/fuzz_snapfile_corpus
 *   /tmp/fuzz_snapfile -max_total_time=60 /tmp/fuzz_snapfile_corpus tests/fuzz/corpus/snapfile/
 *
 * A real snapshot file is megabytes (guest memory starts at HL_IMAGE_BASE = 2 MiB), far too
 * big to mutate usefully, and three checksums stop almost every mutation at the first one.
 * So each input is loaded twice:
 *   1. as it is (written to a memfd, loaded through /proc/self/fd/N): every prefix,
 *      corruption and checksum path of the loader;
 *   2. "sealed": if it holds at least a header page, zero-extended to the length its header
 *      claims (at most 16 MiB; the extension is a hole, so the memory is zeros beyond the
 *      input) and with its three checksums recomputed. This reaches every structural check
 *      behind the checksums: layout, vCPU state, function tables, and the mapping.
 * FUZZ_SNAPFILE_VERBOSE=1 prints the outcome of each load (to triage a seed).
 * The seeds (tests/fuzz/corpus/snapfile/) are therefore header+metadata prefixes of real
 * snapshot files, cut at the memory offset, plus corrupted variants. They carry the format and
 * ABI versions: after a change to either, regenerate them with `make fuzz-seeds`
 * (tests/fuzz/make_snapfile_seeds.c), or every seed stops at the version check.
 *
 * Properties (a violation aborts, which libFuzzer reports as a crash):
 *   - a failed load returns NULL with a "snapshot file '...': " message and leaks no fd;
 *   - a loaded snapshot is consistent (layout total = claimed memory length, vCPU state, function
 *     counts as in the header), and hl_snapshot_save writes it back byte for byte: the loader
 *     accepts only canonical files. The saved file loads again. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define ASSERT(c)                                                                         \
    do {                                                                                  \
        if (!(c)) {                                                                       \
            fprintf(stderr, "fuzz_snapfile.c:%d: property violated: %s\n", __LINE__, #c); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

#include "snapfile_bytes.h"

#define EXTEND_MAX (16u << 20)

static char save_path[64];

static int fd_count(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static int to_memfd(const uint8_t *b, size_t len, size_t file_len)
{
    int fd = memfd_create("fuzz-snapfile", MFD_CLOEXEC);
    size_t done = 0;
    ASSERT(fd >= 0);
    while (done < len) {
        ssize_t w = write(fd, b + done, len - done);
        ASSERT(w > 0);
        done += (size_t)w;
    }
    ASSERT(ftruncate(fd, (off_t)file_len) == 0);
    return fd;
}

/* Loads the file in fd; checks the properties; returns the snapshot or NULL. */
static hl_snapshot *load(int fd)
{
    char path[64];
    hl_snapshot *s = (hl_snapshot *)1;
    int before = fd_count();
    hl_status st;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    st = hl_snapshot_load(&s, path);
    if (getenv("FUZZ_SNAPFILE_VERBOSE")) fprintf(stderr, "load: %s %s\n", hl_status_name(st), hl_last_error(NULL));
    if (st != HL_OK) {
        ASSERT(s == NULL);
        ASSERT(st == HL_ERR_BAD_GUEST || st == HL_ERR_IO || st == HL_ERR_NO_MEMORY);
        ASSERT(!strncmp(hl_last_error(NULL), "snapshot file '/proc/self/fd/", 29));
        ASSERT(fd_count() == before);
        return NULL;
    }
    ASSERT(s && s->has_cpu && s->view && s->refs == 1);
    ASSERT(fd_count() == before + 1);
    return s;
}

/* Saves s, checks the file equals want[0, len) (of which the input supplied the first
 * `given` bytes), and loads it again. */
static void round_trip(hl_snapshot *s, const uint8_t *want, size_t len)
{
    const char *path = save_path;
    struct stat st;
    uint8_t *got;
    hl_snapshot *again = NULL;
    int fd;
    ASSERT(hl_snapshot_save(s, path) == HL_OK);
    ASSERT(stat(path, &st) == 0 && (size_t)st.st_size == len);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    ASSERT(fd >= 0);
    got = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    ASSERT(got != MAP_FAILED);
    ASSERT(memcmp(got, want, len) == 0);
    munmap(got, len);
    close(fd);
    ASSERT(hl_snapshot_load(&again, path) == HL_OK);
    ASSERT(again->lo.total == s->lo.total && again->generation == s->generation);
    hl_snapshot_free(again);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hl_snapshot *s;
    uint8_t *b;
    uint64_t mem_off, mem_len, end;
    size_t len;
    int fd;

    if (!save_path[0])
        snprintf(save_path, sizeof save_path, "%s/fuzz_snapfile.%d.snap",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());

    /* 1. the input as it is */
    fd = to_memfd(data, size, size);
    s = load(fd);
    hl_snapshot_free(s);
    close(fd);

    /* 2. zero-extended to the claimed length, checksums recomputed */
    if (size < HEADER) return 0;
    mem_off = get64(data, OFF_MEM_OFFSET);
    mem_len = get64(data, OFF_MEM_LENGTH);
    end = mem_off + mem_len;
    len = size;
    if (mem_off <= EXTEND_MAX && mem_len <= EXTEND_MAX && end <= EXTEND_MAX && end > size) len = (size_t)end;
    b = calloc(1, len);
    ASSERT(b);
    memcpy(b, data, size);
    snapfile_reseal(b, len);
    fd = to_memfd(b, size, len);
    s = load(fd);
    close(fd);
    if (s) {
        ASSERT(s->lo.total == mem_len && len == end);
        ASSERT(s->nguestfns == (int)get32(b, OFF_NGUEST) && s->nhostfns == (int)get32(b, OFF_NHOST));
        ASSERT(!memcmp(&s->cpu, b + OFF_CPU, sizeof s->cpu));
        ASSERT(hl_checksum(s->view, s->lo.total) == get64(b, OFF_MEM_SUM));
        round_trip(s, b, len);
        hl_snapshot_free(s);
    }
    free(b);
    return 0;
}

/* native_main.c - build/native/micropython: the Python guest's interpreter (the same embed
 * package, configuration and port, lang/python/mpy_port.c) as a host program, the reference
 * for the MicroPython test suite and the benchmark.
 *   micropython [-X heapsize=N] FILE [ARG...] | -c CODE [ARG...]
 * runs FILE (or CODE) as __main__ with sys.argv [FILE] + ARGs; an uncaught exception is
 * printed to stderr as MicroPython prints it and the exit status is 1 (SystemExit: its code).
 * The GC heap (42 MiB) and the stack limit are the guest's with its default sizes (48 MiB
 * heap, 1 MiB stack), so memory and recursion limits compare. There is no host: `host` knows no function. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hyperlight_guest.h"
#include "lang/python/mpy_port.h"
#include "py/runtime.h"

extern const mp_obj_module_t hlpy_host_module;

/* The guest SDK's host-function calls, here with no host. */
const hl_host_fn_info *hl_host_fn_lookup(const char *name) { return NULL; }
int hl_call_host(const char *name, hl_type ret_type, const hl_value *args, int nargs, hl_value *ret) { return -1; }
const char *hl_host_error(void) { return "no host"; }
void hl_value_free(hl_value *v) {}

void hlpy_fatal(const char *what)
{
    fprintf(stderr, "%s\n", what);
    abort();
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

static int run(const char *src, size_t len, const char *name, int argc, char **argv)
{
    mp_obj_t out;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t args = mp_obj_new_list(0, NULL);
        for (int i = 0; i < argc; i++) mp_obj_list_append(args, mp_obj_new_str(argv[i], strlen(argv[i])));
        hlpy_set_argv(name, args);
        mp_obj_dict_store(MP_OBJ_FROM_PTR(mp_globals_get()), MP_OBJ_NEW_QSTR(MP_QSTR___file__),
                          mp_obj_new_str(name, strlen(name)));
        nlr_pop();
    }
    if (hlpy_run(src, len, name, MP_PARSE_FILE_INPUT, &out)) return 0;
    int code;
    if (hlpy_system_exit(out, &code)) return code;
    /* formatted outside the GC heap, which may be full (a MemoryError) */
    static char tb_buf[1u << 20];
    vstr_t tb;
    vstr_init_fixed_buf(&tb, sizeof tb_buf, tb_buf);
    if (nlr_push(&nlr) == 0) {
        hlpy_exc_format(out, &tb, NULL);
        nlr_pop();
    } else {
        tb.len = (size_t)snprintf(tb_buf, sizeof tb_buf, "%s", qstr_str(mp_obj_get_type(out)->name));
    }
    fprintf(stderr, "%.*s\n", (int)tb.len, tb.buf);
    return 1;
}

int main(int argc, char **argv)
{
    size_t heap = 42u << 20, stack = 1u << 20; /* the guest's GC heap with its 48 MiB default */
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-X") == 0 && strncmp(argv[i + 1], "heapsize=", 9) == 0) {
        heap = strtoull(argv[i + 1] + 9, NULL, 0);
        i += 2;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: micropython [-X heapsize=N] FILE [ARG...] | -c CODE [ARG...]\n");
        return 2;
    }
    void *gc_heap = malloc(heap);
    volatile char top;
    hlpy_init(gc_heap, heap, (void *)&top, stack - (64u << 10), MP_OBJ_FROM_PTR(&hlpy_host_module));
    int rc;
    if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
        rc = run(argv[i + 1], strlen(argv[i + 1]), "<stdin>", argc - i - 2, argv + i + 2);
    } else {
        size_t len;
        char *src = read_file(argv[i], &len);
        if (!src) {
            fprintf(stderr, "micropython: can't open file '%s'\n", argv[i]);
            return 2;
        }
        rc = run(src, len, argv[i], argc - i - 1, argv + i + 1);
        free(src);
    }
    fflush(stdout);
    return rc;
}

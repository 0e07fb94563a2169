/* mpy_port.c - the MicroPython port both builds share (the guest python.elf and the native
 * build/native/micropython): output to file descriptors 1 and 2, sys.stdin/stdout/stderr,
 * time from clock_gettime, random seeds from getentropy, import from files over
 * open/read, a read-only open(), input() that raises EOFError, garbage collection, running
 * source text as __main__ and formatting exceptions as MicroPython prints them. */
#include "lang/python/mpy_port.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "py/builtin.h"
#include "py/compile.h"
#include "py/gc.h"
#include "py/lexer.h"
#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/objlist.h"
#include "py/objstr.h"
#include "py/runtime.h"
#include "py/stackctrl.h"
#include "py/stream.h"
#include "shared/runtime/gchelper.h"

/* ---- output and time ---- */
void hlpy_write_fd(int fd, const char *str, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, str, len);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            return;
        }
        str += n, len -= (size_t)n;
    }
}

mp_uint_t mp_hal_stdout_tx_strn(const char *str, size_t len)
{
    hlpy_write_fd(1, str, len);
    return len;
}
void mp_hal_stdout_tx_strn_cooked(const char *str, size_t len) { hlpy_write_fd(1, str, len); }
void mp_hal_stdout_tx_str(const char *str) { hlpy_write_fd(1, str, strlen(str)); }
int mp_hal_stdin_rx_chr(void) { return -1; }

/* Nanoseconds on clock id, or 0 when the clock fails (a sandbox with HL_CLOCK_OFF). */
static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
uint64_t mp_hal_time_ns(void) { return clock_ns(CLOCK_REALTIME); }
mp_uint_t mp_hal_ticks_ms(void) { return clock_ns(CLOCK_MONOTONIC) / 1000000u; }
mp_uint_t mp_hal_ticks_us(void) { return clock_ns(CLOCK_MONOTONIC) / 1000u; }
mp_uint_t mp_hal_ticks_cpu(void) { return (mp_uint_t)__builtin_ia32_rdtsc(); }

/* Busy-waits on the clock (the guest SDK's nanosleep would do the same). Without a clock it
 * returns at once. */
void mp_hal_delay_us(mp_uint_t us)
{
    uint64_t start = clock_ns(CLOCK_MONOTONIC);
    if (start == 0) return;
    while (clock_ns(CLOCK_MONOTONIC) - start < (uint64_t)us * 1000u) {
    }
}
void mp_hal_delay_ms(mp_uint_t ms) { mp_hal_delay_us(ms * 1000u); }

/* The random module's default seed: getentropy, or the time-stamp counter should it fail, so
 * two sandboxes at least differ. */
uint32_t hlpy_random_seed(void)
{
    uint32_t seed;
    if (getentropy(&seed, sizeof seed) == 0) return seed;
    uint64_t t = __builtin_ia32_rdtsc();
    return (uint32_t)(t ^ (t >> 32)) * 2654435761u;
}

/* ---- sys.stdin, sys.stdout, sys.stderr ---- */
typedef struct hlpy_stdio {
    mp_obj_base_t base;
    int fd;
} hlpy_stdio;

static mp_uint_t stdio_read(mp_obj_t self_in, void *buf, mp_uint_t size, int *errcode)
{
    hlpy_stdio *self = MP_OBJ_TO_PTR(self_in);
    (void)buf, (void)size;
    if (self->fd == 0) return 0; /* stdin is always at its end */
    *errcode = MP_EBADF;
    return MP_STREAM_ERROR;
}

static mp_uint_t stdio_write(mp_obj_t self_in, const void *buf, mp_uint_t size, int *errcode)
{
    hlpy_stdio *self = MP_OBJ_TO_PTR(self_in);
    if (self->fd == 0) {
        *errcode = MP_EBADF;
        return MP_STREAM_ERROR;
    }
    hlpy_write_fd(self->fd, buf, size);
    return size;
}

static mp_uint_t stdio_ioctl(mp_obj_t self_in, mp_uint_t request, uintptr_t arg, int *errcode)
{
    (void)self_in, (void)arg;
    if (request == MP_STREAM_FLUSH || request == MP_STREAM_CLOSE) return 0;
    *errcode = MP_EINVAL;
    return MP_STREAM_ERROR;
}

static void stdio_print(const mp_print_t *print, mp_obj_t self_in, mp_print_kind_t kind)
{
    hlpy_stdio *self = MP_OBJ_TO_PTR(self_in);
    (void)kind;
    mp_printf(print, "<io.TextIOWrapper %d>", self->fd);
}

static const mp_rom_map_elem_t stdio_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_read), MP_ROM_PTR(&mp_stream_read_obj) },
    { MP_ROM_QSTR(MP_QSTR_readinto), MP_ROM_PTR(&mp_stream_readinto_obj) },
    { MP_ROM_QSTR(MP_QSTR_readline), MP_ROM_PTR(&mp_stream_unbuffered_readline_obj) },
    { MP_ROM_QSTR(MP_QSTR_readlines), MP_ROM_PTR(&mp_stream_unbuffered_readlines_obj) },
    { MP_ROM_QSTR(MP_QSTR_write), MP_ROM_PTR(&mp_stream_write_obj) },
    { MP_ROM_QSTR(MP_QSTR_flush), MP_ROM_PTR(&mp_stream_flush_obj) },
    { MP_ROM_QSTR(MP_QSTR_close), MP_ROM_PTR(&mp_stream_close_obj) },
    { MP_ROM_QSTR(MP_QSTR___enter__), MP_ROM_PTR(&mp_identity_obj) },
    { MP_ROM_QSTR(MP_QSTR___exit__), MP_ROM_PTR(&mp_stream___exit___obj) },
};
static MP_DEFINE_CONST_DICT(stdio_locals_dict, stdio_locals_table);

static const mp_stream_p_t stdio_stream_p = {
    .read = stdio_read,
    .write = stdio_write,
    .ioctl = stdio_ioctl,
    .is_text = true,
};

MP_DEFINE_CONST_OBJ_TYPE(hlpy_stdio_type, MP_QSTR_TextIOWrapper, MP_TYPE_FLAG_ITER_IS_STREAM, print, stdio_print,
                         protocol, &stdio_stream_p, locals_dict, &stdio_locals_dict);

const hlpy_stdio mp_sys_stdin_obj = { { &hlpy_stdio_type }, 0 };
const hlpy_stdio mp_sys_stdout_obj = { { &hlpy_stdio_type }, 1 };
const hlpy_stdio mp_sys_stderr_obj = { { &hlpy_stdio_type }, 2 };

/* ---- files: import and open() ---- */
mp_import_stat_t mp_import_stat(const char *path)
{
#ifdef HLPY_NATIVE
    struct stat st;
    if (stat(path, &st) != 0) return MP_IMPORT_STAT_NO_EXIST;
    return S_ISDIR(st.st_mode) ? MP_IMPORT_STAT_DIR : MP_IMPORT_STAT_FILE;
#else
    /* The guest's files are the host files mapped by label (no directories). */
    int fd = open(path, O_RDONLY);
    if (fd < 0) return MP_IMPORT_STAT_NO_EXIST;
    close(fd);
    return MP_IMPORT_STAT_FILE;
#endif
}

/* open(file, mode='r'): the whole file read at once into an io.StringIO ('r') or io.BytesIO
 * ('rb'); the sandbox's files are read-only, so a mode that writes is OSError EROFS. */
static mp_obj_t hlpy_open(size_t n_args, const mp_obj_t *args, mp_map_t *kw)
{
    static const mp_arg_t allowed[] = {
        { MP_QSTR_file, MP_ARG_REQUIRED | MP_ARG_OBJ, { .u_rom_obj = MP_ROM_NONE } },
        { MP_QSTR_mode, MP_ARG_OBJ, { .u_rom_obj = MP_ROM_QSTR(MP_QSTR_r) } },
        { MP_QSTR_buffering, MP_ARG_INT, { .u_int = -1 } },
        { MP_QSTR_encoding, MP_ARG_OBJ, { .u_rom_obj = MP_ROM_NONE } },
    };
    mp_arg_val_t a[MP_ARRAY_SIZE(allowed)];
    mp_arg_parse_all(n_args, args, kw, MP_ARRAY_SIZE(allowed), allowed, a);
    const char *path = mp_obj_str_get_str(a[0].u_obj);
    const char *mode = mp_obj_str_get_str(a[1].u_obj);
    if (strpbrk(mode, "wax+")) mp_raise_OSError(MP_EROFS);
    int fd = open(path, O_RDONLY);
    if (fd < 0) mp_raise_OSError_with_filename(errno, path);
    vstr_t v;
    vstr_init(&v, 4096);
    for (;;) {
        char *p = vstr_add_len(&v, 4096);
        ssize_t n = read(fd, p, 4096);
        if (n < 0) {
            int e = errno;
            close(fd);
            mp_raise_OSError_with_filename(e, path);
        }
        vstr_cut_tail_bytes(&v, 4096 - (size_t)n);
        if (n == 0) break;
    }
    close(fd);
    bool binary = strchr(mode, 'b') != NULL;
    mp_obj_t data = binary ? mp_obj_new_bytes_from_vstr(&v) : mp_obj_new_str_from_vstr(&v);
    return mp_call_function_1(MP_OBJ_FROM_PTR(binary ? &mp_type_bytesio : &mp_type_stringio), data);
}
MP_DEFINE_CONST_FUN_OBJ_KW(mp_builtin_open_obj, 1, hlpy_open);

/* input([prompt]): a sandbox has no terminal; stdin is empty, as at the end of a file. */
static mp_obj_t hlpy_input(size_t n_args, const mp_obj_t *args)
{
    if (n_args == 1) mp_obj_print(args[0], PRINT_STR);
    mp_raise_msg(&mp_type_EOFError, MP_ERROR_TEXT("EOF when reading a line"));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(hlpy_input_obj, 0, 1, hlpy_input);

/* ---- the runtime ---- */
void gc_collect(void)
{
    gc_collect_start();
    gc_helper_collect_regs_and_stack();
    gc_collect_end();
}

void nlr_jump_fail(void *val)
{
    (void)val;
    hlpy_fatal("MicroPython: uncaught exception outside every handler (nlr_jump_fail)");
}

static void list_clear(mp_obj_t list)
{
    mp_obj_list_t *l = MP_OBJ_TO_PTR(list);
    memset(l->items, 0, l->len * sizeof l->items[0]);
    l->len = 0;
}

void hlpy_init(void *heap, size_t heap_size, void *stack_top, size_t stack_limit, mp_obj_t host_module)
{
    mp_stack_set_top(stack_top);
    mp_stack_set_limit(stack_limit);
    gc_init(heap, (char *)heap + heap_size);
    mp_init();
    /* sys.path is [''] (the mapped files / the current directory); no frozen modules. */
    mp_sys_path = mp_obj_new_list(0, NULL);
    mp_obj_list_init(MP_OBJ_TO_PTR(mp_sys_argv), 0);
    mp_obj_list_append(mp_sys_path, MP_OBJ_NEW_QSTR(MP_QSTR_));
    mp_obj_t over = mp_obj_new_dict(4);
    mp_obj_dict_store(over, MP_OBJ_NEW_QSTR(MP_QSTR_input), MP_OBJ_FROM_PTR(&hlpy_input_obj));
    if (host_module != MP_OBJ_NULL) mp_obj_dict_store(over, MP_OBJ_NEW_QSTR(MP_QSTR_host), host_module);
    MP_STATE_VM(mp_module_builtins_override_dict) = MP_OBJ_TO_PTR(over);
}

void hlpy_set_argv(const char *name, mp_obj_t args)
{
    mp_obj_t argv = mp_sys_argv;
    list_clear(argv);
    mp_obj_list_append(argv, mp_obj_new_str(name, strlen(name)));
    if (args == MP_OBJ_NULL) return;
    size_t n;
    mp_obj_t *items;
    mp_obj_list_get(args, &n, &items);
    for (size_t i = 0; i < n; i++) mp_obj_list_append(argv, items[i]);
}

mp_obj_t hlpy_compile(const char *src, size_t len, const char *name, mp_parse_input_kind_t kind)
{
    qstr qname = qstr_from_str(name);
    mp_lexer_t *lex = mp_lexer_new_from_str_len(qname, src, len, 0);
    mp_parse_tree_t tree = mp_parse(lex, kind);
    return mp_compile(&tree, qname, kind == MP_PARSE_SINGLE_INPUT);
}

bool hlpy_run(const char *src, size_t len, const char *name, mp_parse_input_kind_t kind, mp_obj_t *out)
{
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t fun = hlpy_compile(src, len, name, kind);
        *out = mp_call_function_0(fun);
        nlr_pop();
        return true;
    }
    *out = MP_OBJ_FROM_PTR(nlr.ret_val);
    return false;
}

static void fd2_strn(void *data, const char *str, size_t len) { hlpy_write_fd(2, str, len); }

bool hlpy_system_exit(mp_obj_t exc, int *code)
{
    if (!mp_obj_is_subclass_fast(MP_OBJ_FROM_PTR(mp_obj_get_type(exc)), MP_OBJ_FROM_PTR(&mp_type_SystemExit)))
        return false;
    mp_obj_t val = mp_obj_exception_get_value(exc);
    if (val == mp_const_none) {
        *code = 0;
    } else if (mp_obj_is_int(val)) {
        *code = (int)mp_obj_get_int(val);
    } else { /* sys.exit("message"): the message to stderr, status 1, as CPython does */
        mp_print_t p = { NULL, fd2_strn };
        mp_obj_print_helper(&p, val, PRINT_STR);
        mp_print_str(&p, "\n");
        *code = 1;
    }
    return true;
}

static void vstr_print_strn(void *data, const char *str, size_t len) { vstr_add_strn(data, str, len); }

void hlpy_exc_format(mp_obj_t exc, vstr_t *traceback, vstr_t *message)
{
    mp_print_t p = { traceback, vstr_print_strn };
    mp_obj_print_exception(&p, exc);
    while (traceback->len > 0 && traceback->buf[traceback->len - 1] == '\n') traceback->len--;
    if (message) {
        mp_print_t m = { message, vstr_print_strn };
        mp_obj_print_helper(&m, exc, PRINT_STR);
    }
}

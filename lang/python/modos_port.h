/* modos_port.h - the port half of MicroPython's os module (included by extmod/modos.c through
 * MICROPY_PY_OS_INCLUDEFILE). A sandbox has no environment: getenv gives the default (None),
 * putenv and unsetenv change nothing visible (OSError ENOSYS would break portable scripts
 * that only set a variable for a child process, which a sandbox never has). urandom comes
 * from getentropy; errno is the C library's. */
#include <errno.h>
#include <unistd.h>

static mp_obj_t mp_os_getenv(size_t n_args, const mp_obj_t *args)
{
    (void)mp_obj_str_get_str(args[0]);
    return n_args > 1 ? args[1] : mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(mp_os_getenv_obj, 1, 2, mp_os_getenv);

static mp_obj_t mp_os_putenv(mp_obj_t key, mp_obj_t value)
{
    (void)mp_obj_str_get_str(key), (void)mp_obj_str_get_str(value);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(mp_os_putenv_obj, mp_os_putenv);

static mp_obj_t mp_os_unsetenv(mp_obj_t key)
{
    (void)mp_obj_str_get_str(key);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(mp_os_unsetenv_obj, mp_os_unsetenv);

/* getentropy gives at most 256 bytes per call (POSIX). */
static mp_obj_t mp_os_urandom(mp_obj_t n_in)
{
    mp_int_t n = mp_obj_get_int(n_in);
    if (n < 0) mp_raise_ValueError(MP_ERROR_TEXT("negative count"));
    vstr_t v;
    vstr_init_len(&v, n);
    for (mp_int_t off = 0; off < n; off += 256) {
        size_t chunk = n - off < 256 ? (size_t)(n - off) : 256;
        if (getentropy(v.buf + off, chunk) != 0) mp_raise_OSError(errno);
    }
    return mp_obj_new_bytes_from_vstr(&v);
}
static MP_DEFINE_CONST_FUN_OBJ_1(mp_os_urandom_obj, mp_os_urandom);

static mp_obj_t mp_os_errno(size_t n_args, const mp_obj_t *args)
{
    if (n_args == 0) return MP_OBJ_NEW_SMALL_INT(errno);
    errno = mp_obj_get_int(args[0]);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(mp_os_errno_obj, 0, 1, mp_os_errno);

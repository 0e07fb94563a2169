/* hlpy_host.c - the Python `host` module (also a builtin name): host.NAME is the embedder's
 * host function NAME (hl_host_fn_lookup), a callable that checks and converts each argument
 * against the registered signature and raises a catchable exception with an exact message
 * on a mismatch (TypeError, OverflowError), an unknown name (AttributeError) or the host
 * function's own error (RuntimeError). */
#include <string.h>

#include "hyperlight_guest.h"
#include "py/obj.h"
#include "py/objstr.h"
#include "py/runtime.h"

static const char *type_name(hl_type t)
{
    static const char *const names[] = { "void", "i32", "u32", "i64", "u64", "f32", "f64", "bool", "string", "bytes" };
    return (unsigned)t <= HL_TYPE_MAX ? names[t] : "?";
}

typedef struct hostfn_obj {
    mp_obj_base_t base;
    qstr name;
} hostfn_obj;

static NORETURN void arg_type_error(const char *fn, size_t i, hl_type want, mp_obj_t got)
{
    mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("host.%s: argument %d must be %s, got %s"), fn, (int)i + 1,
                      type_name(want), mp_obj_get_type_str(got));
}

static bool is_plain_int(mp_obj_t o) { return mp_obj_is_int(o) && !mp_obj_is_bool(o); }

/* An int argument of integer type t, range-checked. */
static hl_value int_arg(const char *fn, size_t i, hl_type t, mp_obj_t o)
{
    static const long long lo[] = { [HL_I32] = INT32_MIN, [HL_U32] = 0, [HL_I64] = INT64_MIN, [HL_U64] = 0 };
    static const unsigned long long hi[] = {
        [HL_I32] = INT32_MAX, [HL_U32] = UINT32_MAX, [HL_I64] = INT64_MAX, [HL_U64] = UINT64_MAX
    };
    if (!is_plain_int(o)) arg_type_error(fn, i, t, o);
    if (mp_obj_is_true(mp_binary_op(MP_BINARY_OP_LESS, o, mp_obj_new_int_from_ll(lo[t]))) ||
        mp_obj_is_true(mp_binary_op(MP_BINARY_OP_MORE, o, mp_obj_new_int_from_ull(hi[t]))))
        mp_raise_msg_varg(&mp_type_OverflowError, MP_ERROR_TEXT("host.%s: argument %d out of range for %s"), fn,
                          (int)i + 1, type_name(t));
    hl_value v;
    memset(&v, 0, sizeof v);
    v.type = t;
    if (t == HL_U64) v.v.u64 = mp_obj_int_get_uint_checked(o);
    else if (t == HL_I64) v.v.i64 = mp_obj_int_get_checked(o);
    else if (t == HL_U32) v.v.u32 = (uint32_t)mp_obj_int_get_checked(o);
    else v.v.i32 = (int32_t)mp_obj_int_get_checked(o);
    return v;
}

static hl_value to_value(const char *fn, size_t i, hl_type t, mp_obj_t o)
{
    hl_value v;
    memset(&v, 0, sizeof v);
    v.type = t;
    switch (t) {
    case HL_I32:
    case HL_U32:
    case HL_I64:
    case HL_U64: return int_arg(fn, i, t, o);
    case HL_F32:
    case HL_F64:
        if (!mp_obj_is_float(o) && !is_plain_int(o)) arg_type_error(fn, i, t, o);
        if (t == HL_F32) v.v.f32 = (float)mp_obj_get_float(o);
        else v.v.f64 = mp_obj_get_float(o);
        return v;
    case HL_BOOL:
        if (!mp_obj_is_bool(o)) arg_type_error(fn, i, t, o);
        v.v.b = o == mp_const_true;
        return v;
    case HL_STRING: {
        if (!mp_obj_is_str(o)) arg_type_error(fn, i, t, o);
        size_t len;
        v.v.buf.ptr = mp_obj_str_get_data(o, &len);
        v.v.buf.len = len;
        if (memchr(v.v.buf.ptr, 0, len))
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("host.%s: argument %d contains a NUL character"), fn,
                              (int)i + 1);
        return v;
    }
    case HL_BYTES: {
        mp_buffer_info_t bi;
        if (mp_obj_is_str(o) || !mp_get_buffer(o, &bi, MP_BUFFER_READ)) arg_type_error(fn, i, t, o);
        v.v.buf.ptr = bi.buf;
        v.v.buf.len = bi.len;
        return v;
    }
    default: arg_type_error(fn, i, t, o);
    }
}

static mp_obj_t from_value(const hl_value *v)
{
    switch (v->type) {
    case HL_I32: return mp_obj_new_int(v->v.i32);
    case HL_U32: return mp_obj_new_int_from_uint(v->v.u32);
    case HL_I64: return mp_obj_new_int_from_ll(v->v.i64);
    case HL_U64: return mp_obj_new_int_from_ull(v->v.u64);
    case HL_F32: return mp_obj_new_float(v->v.f32);
    case HL_F64: return mp_obj_new_float(v->v.f64);
    case HL_BOOL: return mp_obj_new_bool(v->v.b);
    case HL_STRING: return mp_obj_new_str(v->v.buf.ptr, v->v.buf.len);
    case HL_BYTES: return mp_obj_new_bytes(v->v.buf.ptr, v->v.buf.len);
    default: return mp_const_none;
    }
}

static mp_obj_t hostfn_call(mp_obj_t self_in, size_t n_args, size_t n_kw, const mp_obj_t *args)
{
    hostfn_obj *self = MP_OBJ_TO_PTR(self_in);
    const char *fn = qstr_str(self->name);
    const hl_host_fn_info *info = hl_host_fn_lookup(fn);
    if (!info) mp_raise_msg_varg(&mp_type_AttributeError, MP_ERROR_TEXT("host has no function '%s'"), fn);
    if (n_kw) mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("host.%s: keyword arguments are not supported"), fn);
    if (n_args != (size_t)info->nparams)
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("host.%s: expected %d argument%s, got %d"), fn,
                          info->nparams, info->nparams == 1 ? "" : "s", (int)n_args);
    hl_value in[HL_MAX_ARGS], out;
    for (size_t i = 0; i < n_args; i++) in[i] = to_value(fn, i, info->params[i], args[i]);
    memset(&out, 0, sizeof out);
    if (hl_call_host(fn, info->ret, in, (int)n_args, &out) != 0)
        mp_raise_msg_varg(&mp_type_RuntimeError, MP_ERROR_TEXT("host.%s: %s"), fn, hl_host_error());
    mp_obj_t r = MP_OBJ_NULL;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) { /* a MemoryError must not leak the host's value */
        r = from_value(&out);
        nlr_pop();
    }
    hl_value_free(&out);
    if (r == MP_OBJ_NULL) nlr_jump(nlr.ret_val);
    return r;
}

static void hostfn_print(const mp_print_t *print, mp_obj_t self_in, mp_print_kind_t kind)
{
    hostfn_obj *self = MP_OBJ_TO_PTR(self_in);
    (void)kind;
    mp_printf(print, "<host function %q>", self->name);
}

static MP_DEFINE_CONST_OBJ_TYPE(hostfn_type, MP_QSTR_host_function, MP_TYPE_FLAG_NONE, call, hostfn_call, print,
                                hostfn_print);

/* The module is an object of its own type rather than a module with __getattr__: import
 * probes a builtin module for __init__, and a __getattr__ cannot answer "no such
 * attribute" without raising. Dunder names are simply absent; any other name is a host
 * function or AttributeError. */
static void host_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest)
{
    if (dest[0] != MP_OBJ_NULL) return; /* no stores or deletes */
    if (attr == MP_QSTR___name__) {
        dest[0] = MP_OBJ_NEW_QSTR(MP_QSTR_host);
        return;
    }
    const char *name = qstr_str(attr);
    if (name[0] == '_' && name[1] == '_') return;
    if (!hl_host_fn_lookup(name))
        mp_raise_msg_varg(&mp_type_AttributeError, MP_ERROR_TEXT("host has no function '%q'"), attr);
    hostfn_obj *o = mp_obj_malloc(hostfn_obj, &hostfn_type);
    o->name = attr;
    dest[0] = MP_OBJ_FROM_PTR(o);
}

static void host_print(const mp_print_t *print, mp_obj_t self_in, mp_print_kind_t kind)
{
    (void)self_in, (void)kind;
    mp_print_str(print, "<module 'host'>");
}

static MP_DEFINE_CONST_OBJ_TYPE(host_module_type, MP_QSTR_module, MP_TYPE_FLAG_NONE, attr, host_attr, print, host_print);

static const mp_rom_map_elem_t host_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_host) },
};
static MP_DEFINE_CONST_DICT(host_globals, host_globals_table);

const mp_obj_module_t hlpy_host_module = {
    .base = { &host_module_type },
    .globals = (mp_obj_dict_t *)&host_globals,
};
MP_REGISTER_MODULE(MP_QSTR_host, hlpy_host_module);

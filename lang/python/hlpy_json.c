/* hlpy_json.c - Python values to JSON text for Eval and Handle results. MicroPython's own
 * json.dumps prints any object (a function as "<function f at 0x...>", NaN as nan), so the
 * guest has this strict encoder: None, bool, int, finite float, str, list, tuple and dict
 * (keys str, int, float, bool or None, as CPython converts them); anything else raises
 * TypeError or ValueError with CPython's message and sets hlpy_json_failed. */
#include "lang/python/hlpy_json.h"

#include <math.h>

#include "py/objstr.h"
#include "py/runtime.h"

#define MAX_DEPTH 200

bool hlpy_json_failed;

static void vstr_strn(void *data, const char *str, size_t len) { vstr_add_strn(data, str, len); }

static NORETURN void json_raise(const mp_obj_type_t *type, const char *fmt, const char *arg)
{
    hlpy_json_failed = true;
    mp_raise_msg_varg(type, MP_ERROR_TEXT(fmt), arg);
}

static void encode(const mp_print_t *p, mp_obj_t o, mp_obj_t *stack, int depth);

/* A dict key as a JSON string. */
static void encode_key(const mp_print_t *p, mp_obj_t k)
{
    if (mp_obj_is_str(k)) {
        size_t len;
        const char *s = mp_obj_str_get_data(k, &len);
        mp_str_print_json(p, (const byte *)s, len);
    } else if (k == mp_const_none || mp_obj_is_bool(k) || mp_obj_is_int(k) || mp_obj_is_float(k)) {
        mp_print_str(p, "\"");
        encode(p, k, NULL, 0);
        mp_print_str(p, "\"");
    } else {
        json_raise(&mp_type_TypeError, "keys must be str, int, float, bool or None, not %s", mp_obj_get_type_str(k));
    }
}

static void encode_container(const mp_print_t *p, mp_obj_t o, mp_obj_t *stack, int depth)
{
    for (int i = 0; i < depth; i++)
        if (stack[i] == o) json_raise(&mp_type_ValueError, "Circular reference detected%s", "");
    if (depth >= MAX_DEPTH) json_raise(&mp_type_ValueError, "nesting deeper than 200 levels%s", "");
    stack[depth] = o;
    if (mp_obj_is_type(o, &mp_type_dict)) {
        mp_map_t *map = mp_obj_dict_get_map(o);
        bool first = true;
        mp_print_str(p, "{");
        for (size_t i = 0; i < map->alloc; i++) {
            if (!mp_map_slot_is_filled(map, i)) continue;
            if (!first) mp_print_str(p, ", ");
            first = false;
            encode_key(p, map->table[i].key);
            mp_print_str(p, ": ");
            encode(p, map->table[i].value, stack, depth + 1);
        }
        mp_print_str(p, "}");
        return;
    }
    size_t n;
    mp_obj_t *items;
    mp_obj_get_array(o, &n, &items);
    mp_print_str(p, "[");
    for (size_t i = 0; i < n; i++) {
        if (i) mp_print_str(p, ", ");
        encode(p, items[i], stack, depth + 1);
    }
    mp_print_str(p, "]");
}

static void encode(const mp_print_t *p, mp_obj_t o, mp_obj_t *stack, int depth)
{
    if (o == mp_const_none) mp_print_str(p, "null");
    else if (o == mp_const_true) mp_print_str(p, "true");
    else if (o == mp_const_false) mp_print_str(p, "false");
    else if (mp_obj_is_int(o)) mp_obj_print_helper(p, o, PRINT_REPR);
    else if (mp_obj_is_float(o)) {
        if (!isfinite(mp_obj_get_float(o)))
            json_raise(&mp_type_ValueError, "Out of range float values are not JSON compliant%s", "");
        mp_obj_print_helper(p, o, PRINT_REPR);
    } else if (mp_obj_is_str(o)) {
        size_t len;
        const char *s = mp_obj_str_get_data(o, &len);
        mp_str_print_json(p, (const byte *)s, len);
    } else if (mp_obj_is_type(o, &mp_type_dict) || mp_obj_is_type(o, &mp_type_list) ||
               mp_obj_is_type(o, &mp_type_tuple)) {
        encode_container(p, o, stack, depth);
    } else {
        json_raise(&mp_type_TypeError, "Object of type %s is not JSON serializable", mp_obj_get_type_str(o));
    }
}

void hlpy_json_encode(vstr_t *out, mp_obj_t o)
{
    mp_obj_t stack[MAX_DEPTH];
    mp_print_t p = { out, vstr_strn };
    hlpy_json_failed = false;
    encode(&p, o, stack, 0);
}

mp_obj_t hlpy_json_decode(const char *text, size_t len)
{
    mp_obj_t json = mp_import_name(MP_QSTR_json, mp_const_none, MP_OBJ_NEW_SMALL_INT(0));
    mp_obj_t loads = mp_load_attr(json, MP_QSTR_loads);
    hlpy_json_failed = true; /* a ValueError from loads is the text's fault */
    mp_obj_t r = mp_call_function_1(loads, mp_obj_new_str(text, len));
    hlpy_json_failed = false;
    return r;
}

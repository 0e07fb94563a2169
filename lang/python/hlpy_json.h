/* hlpy_json.h - JSON text to and from Python values (lang/python/hlpy_json.c). */
#ifndef HLPY_JSON_H
#define HLPY_JSON_H

#include <stdbool.h>

#include "py/obj.h"

/* Set when the last exception raised by hlpy_json_encode/decode is the value's fault (no
 * JSON form, or invalid JSON text), not a MemoryError or the like. */
extern bool hlpy_json_failed;

/* Appends o as JSON text to out. Raises TypeError/ValueError for a value without a JSON form. */
void hlpy_json_encode(vstr_t *out, mp_obj_t o);
/* json.loads(text). Raises ValueError for invalid JSON. */
mp_obj_t hlpy_json_decode(const char *text, size_t len);

#endif

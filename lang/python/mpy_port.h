/* mpy_port.h - what lang/python/mpy_port.c gives the guest (python_guest.c) and the native
 * runner (native_main.c): starting MicroPython, running source text, formatting errors. */
#ifndef HLPY_MPY_PORT_H
#define HLPY_MPY_PORT_H

#include <stdbool.h>
#include <stddef.h>

#include "py/obj.h"
#include "py/parse.h"

/* Starts MicroPython with its GC heap [heap, heap + heap_size), the C stack growing down
 * from stack_top and at most stack_limit bytes of it, sys.path [''], and the builtins
 * input() and host (host_module, unless MP_OBJ_NULL). */
void hlpy_init(void *heap, size_t heap_size, void *stack_top, size_t stack_limit, mp_obj_t host_module);
/* sys.argv = [name] + args (a list of str, or MP_OBJ_NULL for none). Raises on error. */
void hlpy_set_argv(const char *name, mp_obj_t args);
/* Compiles src (len bytes) named name as kind; raises SyntaxError. */
mp_obj_t hlpy_compile(const char *src, size_t len, const char *name, mp_parse_input_kind_t kind);
/* Compiles and runs src in the __main__ module: true with *out its value (None for
 * statements), or false with *out the exception. */
bool hlpy_run(const char *src, size_t len, const char *name, mp_parse_input_kind_t kind, mp_obj_t *out);
/* Whether exc is a SystemExit; then *code is its exit status: 0 for None, the int, or 1 for
 * anything else (which is printed to stderr, as CPython does). */
bool hlpy_system_exit(mp_obj_t exc, int *code);
/* Appends the traceback as MicroPython prints it (no final newline) to traceback, and
 * str(exc) to message (unless NULL). */
void hlpy_exc_format(mp_obj_t exc, vstr_t *traceback, vstr_t *message);

/* Defined by each build: ends the program (the guest: hl_abort). Does not return. */
void hlpy_fatal(const char *what) __attribute__((noreturn));

#endif

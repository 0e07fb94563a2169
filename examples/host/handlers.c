/* handlers.c - a Python handler in a sandbox, called with a JSON event, with a restore after
 * every request, and a host function the handler calls (docs/languages.md, "From C").
 * Run: build/bin/handlers [build/guests/python.elf] */
#include <stdio.h>

#include "hyperlight.h"
#include "hyperlight/lang.h"

static int add_fn(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    (void)call, (void)nargs;
    *ret = hl_i32(args[0].v.i32 + args[1].v.i32);
    return 0;
}

int main(int argc, char **argv)
{
    static const char code[] = "count = 0\n"
                               "def greet(e):\n"
                               "    global count\n"
                               "    count += 1\n"
                               "    return [e['name'], host.Add(1, 2), count]\n";
    const char *guest = argc > 1 ? argv[1] : "build/guests/python.elf";
    hl_type two_i32[] = { HL_I32, HL_I32 };
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb;
    hl_snapshot *ready;
    hl_value r;
    int rc = 0;
    hl_config_register_host_fn(cfg, "Add", HL_I32, two_i32, 2, add_fn, NULL);
    if (hl_sandbox_new_from_file(&sb, guest, cfg) != HL_OK) {
        fprintf(stderr, "%s\n", hl_last_error(NULL));
        return 1;
    }
    if (hl_call(sb, HL_LANG_FN_LOAD, HL_VOID, (hl_value[]){ hl_str(code), hl_str("handlers.py") }, 2, &r) != HL_OK ||
        hl_snapshot_take(sb, &ready) != HL_OK) {
        fprintf(stderr, "%s\n", hl_last_error(sb));
        return 1;
    }
    for (int i = 0; i < 3 && rc == 0; i++) {
        hl_value req[] = { hl_str("greet"), hl_str(i < 2 ? "{\"name\": \"Ada\"}" : "{}") };
        if (hl_call(sb, HL_LANG_FN_HANDLE, HL_STRING, req, 2, &r) == HL_OK) {
            puts(hl_value_str(&r)); /* ["Ada", 3, 1]: count is 1 again after each restore */
            fflush(stdout);
        } else if (hl_last_error_code(sb) > 0) {
            fprintf(stderr, "%s\n", hl_last_guest_message(sb)); /* the KeyError's traceback */
        } else {
            fprintf(stderr, "%s\n", hl_last_error(sb));
            rc = 1;
        }
        hl_sandbox_restore(sb, ready);
    }
    hl_snapshot_free(ready);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    return rc;
}

/* test_lua_printf.c - the Lua guest's float formatting at full precision, as the host's
 * lua5.4 (glibc) prints it: string.format("%.17g", 0.1) is "0.10000000000000001". Kept apart
 * from test_lua because picolibc's printf prints at most 17 significant digits and then
 * zeros, so this fails until the guest's printf is fixed. Guest: build/guests/lua.elf. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hyperlight/lang.h"

static void eval_is(hl_sandbox *sb, const char *code, const char *want)
{
    hl_value arg = hl_str(code), ret;
    hl_status st = hl_call(sb, HL_LANG_FN_EVAL, HL_STRING, &arg, 1, &ret);
    if (st != HL_OK) fprintf(stderr, "%s: %s\n", code, hl_last_error(sb));
    CHECK_INT(st, HL_OK);
    CHECK_STR(st == HL_OK ? hl_value_str(&ret) : "", want);
}

int main(void)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb = NULL;
    char path[512];
    const char *b = getenv("HL_BUILD");
    snprintf(path, sizeof path, "%s/guests/lua.elf", b ? b : "build");
    if (!cfg || hl_sandbox_new_from_file(&sb, path, cfg) != HL_OK) {
        fprintf(stderr, "cannot create the Lua sandbox: %s\n", hl_last_error(NULL));
        return 1;
    }
    eval_is(sb, "string.format('%.17g', 0.1)", "\"0.10000000000000001\"");
    eval_is(sb, "string.format('%.20f', 0.1)", "\"0.10000000000000000555\"");
    eval_is(sb, "string.format('%.18g', 2^-1074)", "\"4.94065645841246544e-324\"");
    eval_is(sb, "string.format('%.17g', 1/3)", "\"0.33333333333333331\"");
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    return check_exit("test_lua_printf");
}

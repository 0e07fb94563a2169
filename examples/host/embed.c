/* embed.c - the example host program: embeds hyperlight-c, registers a host function, and
 * calls the demo guest. Usage: build/bin/embed [GUEST.elf] (default build/guests/demo.elf).
 * Build your own with: cc embed.c $(pkg-config --cflags --libs hyperlight) */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hyperlight.h"

/* GetWeekday() -> string, called by the guest's SayHello. */
static int get_weekday(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    static const char *const days[] = { "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday" };
    const char *fixed = hl_host_call_user(call); /* user pointer given at registration */
    time_t now = time(NULL);
    struct tm tm;
    if (fixed) {
        *ret = hl_str(fixed);
        return 0;
    }
    if (!localtime_r(&now, &tm)) return hl_host_call_error(call, 1, "localtime failed");
    *ret = hl_str(days[tm.tm_wday]);
    return 0;
}

/* Guest stdout/stderr, prefixed so it is clear where it came from. */
static void print_guest(void *user, int stream, const char *data, size_t len)
{
    fprintf(stream == 2 ? stderr : stdout, "[guest] %.*s", (int)len, data);
}

static void log_guest(void *user, int level, const char *msg, const char *file, uint32_t line)
{
    fprintf(stderr, "[guest log %d] %s:%u: %s\n", level, file, line, msg);
}

int main(int argc, char **argv)
{
    const char *guest = argc > 1 ? argv[1] : "build/guests/demo.elf";
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb = NULL;
    hl_value args[2], ret;
    int rc = 1;

    if (!cfg) return 1;
    hl_config_set_print(cfg, print_guest, NULL);
    hl_config_set_log(cfg, log_guest, NULL);
    if (hl_config_set_heap_size(cfg, 8u << 20) != HL_OK ||
        hl_config_register_host_fn(cfg, "GetWeekday", HL_STRING, NULL, 0, get_weekday, NULL) != HL_OK) {
        fprintf(stderr, "config: %s\n", hl_config_error(cfg));
        goto out;
    }
    if (hl_sandbox_new_from_file(&sb, guest, cfg) != HL_OK) {
        fprintf(stderr, "sandbox: %s\n", hl_last_error(NULL));
        goto out;
    }
    args[0] = hl_str("embedder");
    if (hl_call(sb, "SayHello", HL_STRING, args, 1, &ret) != HL_OK) goto fail;
    printf("SayHello -> %s\n", hl_value_str(&ret));

    args[0] = hl_i32(20);
    args[1] = hl_i32(22);
    if (hl_call(sb, "Add", HL_I32, args, 2, &ret) != HL_OK) goto fail;
    printf("Add(20, 22) -> %d\n", ret.v.i32);

    args[0] = hl_u32(100000);
    if (hl_call(sb, "CountPrimes", HL_U32, args, 1, &ret) != HL_OK) goto fail;
    printf("CountPrimes(100000) -> %u\n", ret.v.u32);

    /* Errors name what went wrong; a bad call leaves the sandbox Ready. */
    args[0] = hl_str("not a number");
    hl_status st = hl_call(sb, "Add", HL_I32, args, 2, &ret);
    printf("Add(\"not a number\", 22) -> %s: %s\n", hl_status_name(st), hl_last_error(sb));
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "call failed: %s\n", hl_last_error(sb));
out:
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    return rc;
}

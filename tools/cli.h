/* cli.h - what the command-line tool's files share (tools/hyperlight.c: call, info,
 * snapshot; tools/run.c: run, repl; tools/serve/: serve). */
#ifndef HL_CLI_H
#define HL_CLI_H

#include <stdbool.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2

/* Parses an option's value: decimal digits, then (if sizes) an optional K, M or G, at most
 * max in all. Returns NULL with the value in *out, or what is wrong with s. */
const char *parse_count(const char *s, bool sizes, unsigned long long max, unsigned long long *out);

/* `hyperlight run ...` and `hyperlight repl ...` (argv[0] is the command). */
int cmd_run(int argc, char **argv);
int cmd_repl(int argc, char **argv);
/* `hyperlight serve ...`: the HTTP service (tools/serve/main.c, docs/serve.md). */
int cmd_serve(int argc, char **argv);

#endif

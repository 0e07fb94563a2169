/* hyperlight/lang.h - the protocol of the language guests (Lua, JavaScript, Python).
 *
 * Every interpreter guest (build/guests/lua.elf, javascript.elf, python.elf) registers the
 * same guest functions with the same signatures, so a host treats the languages alike.
 * docs/languages.md describes them in prose; this header is what hosts and guests share. */
#ifndef HYPERLIGHT_LANG_H
#define HYPERLIGHT_LANG_H

/* Guest functions (name, return type, parameters):
 *   Run(string code, string name, string argv_json) -> void
 *       runs code as a script called name; argv_json is a JSON array of strings (the
 *       script's arguments: Lua `arg`, JavaScript `scriptArgs`, Python `sys.argv[1:]`).
 *   Eval(string code) -> string
 *       evaluates code and returns its value as JSON text.
 *   Repl(string line) -> string
 *       runs one line of an interactive session and returns what the language's own REPL
 *       would show for it ("" for nothing).
 *   Load(string code, string name) -> void
 *       runs code that defines handlers (global functions), usually once before a snapshot.
 *   Handle(string handler, string event_json) -> string
 *       calls the global function handler with the decoded event; returns its result as JSON.
 *   LastError() -> string
 *       the last failed call's error as JSON: {"type": ..., "message": ..., "traceback": ...}
 *       ({} if none since the last restore).
 * A failed call's message is the whole error as the language prints it (type, message and
 * traceback), cut at HL_MAX_MESSAGE bytes; LastError gives it untruncated and structured. */
#define HL_LANG_FN_RUN "Run"
#define HL_LANG_FN_EVAL "Eval"
#define HL_LANG_FN_REPL "Repl"
#define HL_LANG_FN_LOAD "Load"
#define HL_LANG_FN_HANDLE "Handle"
#define HL_LANG_FN_LAST_ERROR "LastError"

/* Guest error codes of the language guests (> 0, the guest's own range). */
#define HL_LANG_ERR_SCRIPT 1     /* the script raised an error (a language exception) */
#define HL_LANG_ERR_NOT_JSON 2   /* a value has no JSON form, or the event is not valid JSON */
#define HL_LANG_ERR_NO_HANDLER 3 /* Handle: no global function of that name */
#define HL_LANG_ERR_SYNTAX 4     /* the code does not parse (the message is the parser's) */
#define HL_LANG_ERR_INCOMPLETE 5 /* Repl: the line is an incomplete statement; send it again with more */
/* The script called exit (os.exit, sys.exit, std.exit): the message is "exit N", N the status
 * a process would have exited with. */
#define HL_LANG_ERR_EXIT 6

#endif

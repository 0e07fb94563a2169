/* json.c - the Lua guest's JSON encoder and decoder (mapping: docs/languages.md, "Lua"). */
#include "json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"

/* ---- encoder ---- */

/* One step of the path from the top value to the one being encoded. */
struct seg {
    const char *key; /* NULL: an array index */
    size_t klen;
    lua_Integer index;
    const void *table; /* the table this step enters (cycle detection) */
};

struct enc {
    lua_State *L;
    char *buf;
    size_t len, cap;
    struct seg path[HL_JSON_MAX_DEPTH + 1];
    int depth;
    char *err;
    size_t errlen;
    int failed;
};

/* A key keeps its string as long as the table it came from is alive (it is on the stack). */
struct key {
    const char *s;
    size_t len;
};

static int put(struct enc *e, const char *s, size_t n)
{
    if (e->len + n > e->cap) {
        size_t cap = e->cap ? e->cap : 256;
        char *nb;
        while (cap < e->len + n) cap *= 2;
        nb = realloc(e->buf, cap);
        if (!nb) return -1;
        e->buf = nb, e->cap = cap;
    }
    memcpy(e->buf + e->len, s, n);
    e->len += n;
    return 0;
}

static int is_ident(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

/* Fails the encoding with "value at PATH WHAT" (the path as Lua would index it). */
static int fail(struct enc *e, const char *what)
{
    size_t n = 0;
    int w;
    if (e->failed) return -1;
    e->failed = 1;
    w = snprintf(e->err, e->errlen, "value at %s", e->depth ? "" : ".");
    n = w > 0 ? (size_t)w : 0;
    for (int i = 0; i < e->depth && n < e->errlen; i++) {
        const struct seg *s = &e->path[i];
        if (!s->key) w = snprintf(e->err + n, e->errlen - n, "[%lld]", (long long)s->index);
        else if (is_ident(s->key, s->klen)) w = snprintf(e->err + n, e->errlen - n, ".%.*s", (int)s->klen, s->key);
        else w = snprintf(e->err + n, e->errlen - n, "[\"%.*s\"]", (int)s->klen, s->key);
        n += w > 0 ? (size_t)w : 0;
    }
    if (n < e->errlen) snprintf(e->err + n, e->errlen - n, " %s", what);
    return -1;
}

static int nomem(struct enc *e) { return fail(e, "does not fit in memory"); }

/* UTF-8 well-formedness (RFC 3629: no overlongs, no surrogates, at most U+10FFFF). */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) k = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0) k = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0) k = 3, cp = c & 0x07, min = 0x10000;
        else return 0;
        if (n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += k + 1;
    }
    return 1;
}

static int enc_string(struct enc *e, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    if (!utf8_ok((const unsigned char *)s, n)) return fail(e, "is a string that is not valid UTF-8");
    if (put(e, "\"", 1)) return nomem(e);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7] = { '\\', 0 };
        size_t elen = 2;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            elen = 6;
        }
        if (put(e, s + start, i - start) || put(e, esc, elen)) return nomem(e);
        start = i + 1;
    }
    if (put(e, s + start, n - start) || put(e, "\"", 1)) return nomem(e);
    return 0;
}

/* The shortest of %.15g..%.17g that reads back as the same double, with ".0" added when it
 * would read as an integer, so a float stays a float (math.type) through JSON. */
static int enc_float(struct enc *e, double d)
{
    char b[40];
    if (isnan(d)) return fail(e, "is NaN");
    if (isinf(d)) return fail(e, d > 0 ? "is inf" : "is -inf");
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, d);
        if (strtod(b, NULL) == d) break;
    }
    if (!strpbrk(b, ".eE")) strcat(b, ".0");
    return put(e, b, strlen(b)) ? nomem(e) : 0;
}

static int enc_value(struct enc *e, int idx);

static int keycmp(const void *a, const void *b)
{
    const struct key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Counts the keys of the table at idx: *nint integer keys 1.. (their maximum in *imax),
 * *nstr string keys. Returns 0, or -1 on a key of another type. */
static int classify(struct enc *e, int idx, lua_Integer *nint, lua_Integer *imax, size_t *nstr)
{
    lua_State *L = e->L;
    *nint = *imax = 0, *nstr = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            (*nstr)++;
        } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
            lua_Integer k = lua_tointeger(L, -1);
            (*nint)++;
            if (k > *imax) *imax = k;
        } else {
            lua_pop(L, 1);
            return fail(e, "is a table with a key that is neither a string nor a positive integer");
        }
    }
    return 0;
}

static int enc_array(struct enc *e, int idx, lua_Integer n)
{
    lua_State *L = e->L;
    if (put(e, "[", 1)) return nomem(e);
    for (lua_Integer i = 1; i <= n; i++) {
        e->path[e->depth - 1].key = NULL;
        e->path[e->depth - 1].index = i;
        if (i > 1 && put(e, ",", 1)) return nomem(e);
        lua_rawgeti(L, idx, i);
        if (enc_value(e, lua_gettop(L))) return -1;
        lua_pop(L, 1);
    }
    return put(e, "]", 1) ? nomem(e) : 0;
}

static int enc_object(struct enc *e, int idx, size_t n)
{
    lua_State *L = e->L;
    struct key *keys = malloc(n * sizeof *keys);
    size_t k = 0;
    int rc = 0;
    if (!keys) return nomem(e);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        keys[k].s = lua_tolstring(L, -1, &keys[k].len);
        k++;
    }
    qsort(keys, n, sizeof *keys, keycmp);
    if (put(e, "{", 1)) rc = nomem(e);
    for (size_t i = 0; i < n && rc == 0; i++) {
        e->path[e->depth - 1].key = keys[i].s;
        e->path[e->depth - 1].klen = keys[i].len;
        if ((i > 0 && put(e, ",", 1)) || enc_string(e, keys[i].s, keys[i].len) || put(e, ":", 1)) {
            rc = e->failed ? -1 : nomem(e);
            break;
        }
        lua_pushlstring(L, keys[i].s, keys[i].len); /* cannot fail: the string exists */
        lua_rawget(L, idx);
        rc = enc_value(e, lua_gettop(L));
        lua_pop(L, 1);
    }
    free(keys);
    return rc || put(e, "}", 1) ? (e->failed ? -1 : nomem(e)) : 0;
}

static int enc_table(struct enc *e, int idx)
{
    const void *p = lua_topointer(e->L, idx);
    lua_Integer nint, imax;
    size_t nstr;
    int rc;
    for (int i = 0; i < e->depth; i++)
        if (e->path[i].table == p) return fail(e, "is a table that contains itself (a cycle)");
    if (e->depth == HL_JSON_MAX_DEPTH) return fail(e, "is nested too deeply (more than 200 levels)");
    if (!lua_checkstack(e->L, 4)) return nomem(e);
    if (classify(e, idx, &nint, &imax, &nstr)) return -1;
    if (nint && nstr) return fail(e, "is a table with both string and integer keys");
    if (nint && imax != nint) return fail(e, "is a table with integer keys that are not a sequence 1..n");
    e->path[e->depth].table = p;
    e->path[e->depth].key = NULL;
    e->path[e->depth].index = 0;
    e->depth++;
    rc = nstr ? enc_object(e, idx, nstr) : enc_array(e, idx, nint);
    e->depth--;
    return rc;
}

static int enc_value(struct enc *e, int idx)
{
    lua_State *L = e->L;
    char b[32];
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return put(e, "null", 4) ? nomem(e) : 0;
    case LUA_TBOOLEAN: return (lua_toboolean(L, idx) ? put(e, "true", 4) : put(e, "false", 5)) ? nomem(e) : 0;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            snprintf(b, sizeof b, "%lld", (long long)lua_tointeger(L, idx));
            return put(e, b, strlen(b)) ? nomem(e) : 0;
        }
        return enc_float(e, lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return enc_string(e, s, n);
    }
    case LUA_TTABLE: return enc_table(e, idx);
    default: {
        char what[40];
        snprintf(what, sizeof what, "is a %s", lua_typename(L, lua_type(L, idx)));
        return fail(e, what);
    }
    }
}

int hl_json_encode(lua_State *L, int idx, char **out, size_t *len, char *err, size_t errlen)
{
    struct enc *e = calloc(1, sizeof *e);
    int top = lua_gettop(L);
    if (!e) {
        snprintf(err, errlen, "not enough memory");
        return -1;
    }
    e->L = L, e->err = err, e->errlen = errlen;
    if (enc_value(e, lua_absindex(L, idx)) == 0 && put(e, "", 1) == 0) {
        *out = e->buf, *len = e->len - 1;
        free(e);
        return 0;
    }
    if (!e->failed) snprintf(err, errlen, "not enough memory");
    lua_settop(L, top);
    free(e->buf);
    free(e);
    return -1;
}

/* ---- decoder ---- */

struct dec {
    lua_State *L;
    const char *s;
    size_t len, pos;
    int depth;
};

static void dec_fail(struct dec *d, const char *what)
{
    luaL_error(d->L, "invalid JSON at byte %d: %s", (int)d->pos, what);
}

static void skip_ws(struct dec *d)
{
    while (d->pos < d->len &&
           (d->s[d->pos] == ' ' || d->s[d->pos] == '\t' || d->s[d->pos] == '\n' || d->s[d->pos] == '\r'))
        d->pos++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The four hex digits after "\u" at d->pos. */
static unsigned hex4(struct dec *d)
{
    unsigned v = 0;
    if (d->len - d->pos < 4) dec_fail(d, "truncated \\u escape");
    for (int i = 0; i < 4; i++) {
        int h = hexval(d->s[d->pos + i]);
        if (h < 0) dec_fail(d, "bad hex digit in \\u escape");
        v = v << 4 | (unsigned)h;
    }
    d->pos += 4;
    return v;
}

static void add_utf8(luaL_Buffer *b, unsigned cp)
{
    char u[4];
    int n;
    if (cp < 0x80) u[0] = (char)cp, n = 1;
    else if (cp < 0x800) u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f)), u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    else
        u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f)),
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    luaL_addlstring(b, u, (size_t)n);
}

static void dec_escape(struct dec *d, luaL_Buffer *b)
{
    char c = d->s[d->pos++];
    unsigned cp;
    switch (c) {
    case '"': luaL_addchar(b, '"'); return;
    case '\\': luaL_addchar(b, '\\'); return;
    case '/': luaL_addchar(b, '/'); return;
    case 'b': luaL_addchar(b, '\b'); return;
    case 'f': luaL_addchar(b, '\f'); return;
    case 'n': luaL_addchar(b, '\n'); return;
    case 'r': luaL_addchar(b, '\r'); return;
    case 't': luaL_addchar(b, '\t'); return;
    case 'u': break;
    default: d->pos--, dec_fail(d, "bad escape in string");
    }
    cp = hex4(d);
    if (cp >= 0xdc00 && cp <= 0xdfff) dec_fail(d, "lone low surrogate in \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        unsigned lo;
        if (d->len - d->pos < 2 || d->s[d->pos] != '\\' || d->s[d->pos + 1] != 'u')
            dec_fail(d, "high surrogate not followed by a low one");
        d->pos += 2;
        lo = hex4(d);
        if (lo < 0xdc00 || lo > 0xdfff) dec_fail(d, "high surrogate not followed by a low one");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    add_utf8(b, cp);
}

/* A string starting at the opening quote; pushes it. */
static void dec_string(struct dec *d)
{
    luaL_Buffer b;
    d->pos++;
    luaL_buffinit(d->L, &b);
    for (;;) {
        size_t start = d->pos;
        while (d->pos < d->len && d->s[d->pos] != '"' && d->s[d->pos] != '\\' && (unsigned char)d->s[d->pos] >= 0x20)
            d->pos++;
        luaL_addlstring(&b, d->s + start, d->pos - start);
        if (d->pos == d->len) dec_fail(d, "unterminated string");
        if (d->s[d->pos] == '"') break;
        if (d->s[d->pos] != '\\') dec_fail(d, "control character in string");
        d->pos++;
        if (d->pos == d->len) dec_fail(d, "unterminated string");
        dec_escape(d, &b);
    }
    d->pos++;
    luaL_pushresult(&b);
}

static void dec_number(struct dec *d)
{
    size_t start = d->pos;
    char tok[64];
    const char *s = d->s;
    if (d->pos < d->len && s[d->pos] == '-') d->pos++;
    if (d->pos < d->len && s[d->pos] == '0') d->pos++;
    else if (d->pos < d->len && s[d->pos] >= '1' && s[d->pos] <= '9')
        while (d->pos < d->len && s[d->pos] >= '0' && s[d->pos] <= '9') d->pos++;
    else dec_fail(d, "bad number");
    if (d->pos < d->len && s[d->pos] == '.') {
        d->pos++;
        if (d->pos == d->len || s[d->pos] < '0' || s[d->pos] > '9')
            dec_fail(d, "bad number: digit expected after '.'");
        while (d->pos < d->len && s[d->pos] >= '0' && s[d->pos] <= '9') d->pos++;
    }
    if (d->pos < d->len && (s[d->pos] == 'e' || s[d->pos] == 'E')) {
        d->pos++;
        if (d->pos < d->len && (s[d->pos] == '+' || s[d->pos] == '-')) d->pos++;
        if (d->pos == d->len || s[d->pos] < '0' || s[d->pos] > '9')
            dec_fail(d, "bad number: digit expected in exponent");
        while (d->pos < d->len && s[d->pos] >= '0' && s[d->pos] <= '9') d->pos++;
    }
    if (d->pos - start >= sizeof tok) {
        d->pos = start;
        dec_fail(d, "number too long");
    }
    memcpy(tok, s + start, d->pos - start);
    tok[d->pos - start] = 0;
    /* Lua's own conversion: an integer when it has no '.' or exponent and fits, else a float. */
    if (lua_stringtonumber(d->L, tok) == 0) {
        d->pos = start;
        dec_fail(d, "bad number");
    }
}

static void dec_value(struct dec *d);

static void dec_open(struct dec *d)
{
    if (++d->depth > HL_JSON_MAX_DEPTH) dec_fail(d, "nested too deeply (more than 200 levels)");
    luaL_checkstack(d->L, 4, "JSON nesting");
    d->pos++;
    skip_ws(d);
}

static void dec_array(struct dec *d)
{
    lua_Integer n = 0;
    dec_open(d);
    lua_newtable(d->L);
    if (d->pos < d->len && d->s[d->pos] == ']') {
        d->pos++, d->depth--;
        return;
    }
    for (;;) {
        dec_value(d);
        lua_rawseti(d->L, -2, ++n);
        skip_ws(d);
        if (d->pos < d->len && d->s[d->pos] == ',') {
            d->pos++;
            continue;
        }
        if (d->pos < d->len && d->s[d->pos] == ']') break;
        dec_fail(d, "',' or ']' expected");
    }
    d->pos++, d->depth--;
}

static void dec_object(struct dec *d)
{
    dec_open(d);
    lua_newtable(d->L);
    if (d->pos < d->len && d->s[d->pos] == '}') {
        d->pos++, d->depth--;
        return;
    }
    for (;;) {
        skip_ws(d);
        if (d->pos == d->len || d->s[d->pos] != '"') dec_fail(d, "string key expected");
        dec_string(d);
        skip_ws(d);
        if (d->pos == d->len || d->s[d->pos] != ':') dec_fail(d, "':' expected");
        d->pos++;
        dec_value(d);
        lua_rawset(d->L, -3);
        skip_ws(d);
        if (d->pos < d->len && d->s[d->pos] == ',') {
            d->pos++;
            continue;
        }
        if (d->pos < d->len && d->s[d->pos] == '}') break;
        dec_fail(d, "',' or '}' expected");
    }
    d->pos++, d->depth--;
}

static void dec_word(struct dec *d, const char *w)
{
    size_t n = strlen(w);
    if (d->len - d->pos < n || memcmp(d->s + d->pos, w, n) != 0) dec_fail(d, "unexpected character");
    d->pos += n;
}

static void dec_value(struct dec *d)
{
    skip_ws(d);
    if (d->pos == d->len) dec_fail(d, "unexpected end of text");
    switch (d->s[d->pos]) {
    case '{': dec_object(d); return;
    case '[': dec_array(d); return;
    case '"': dec_string(d); return;
    case 't': dec_word(d, "true"), lua_pushboolean(d->L, 1); return;
    case 'f': dec_word(d, "false"), lua_pushboolean(d->L, 0); return;
    case 'n': dec_word(d, "null"), lua_pushnil(d->L); return;
    default:
        if (d->s[d->pos] == '-' || (d->s[d->pos] >= '0' && d->s[d->pos] <= '9')) {
            dec_number(d);
            return;
        }
        dec_fail(d, "unexpected character");
    }
}

void hl_json_decode(lua_State *L, const char *s, size_t len)
{
    struct dec d = { L, s, len, 0, 0 };
    dec_value(&d);
    skip_ws(&d);
    if (d.pos != d.len) dec_fail(&d, "text after the value");
}

/* serve_http.h - what http.c (transport, limits, auth) and routes.c (the /v1 routes) of
 * `hyperlight serve` share. */
#ifndef HL_SERVE_HTTP_H
#define HL_SERVE_HTTP_H

#include <microhttpd.h>

#include "serve.h"

/* One request's body, collected as it arrives. */
struct request {
    char *body;
    size_t len, cap;
    bool too_big;
    double t0;
};

/* The request being answered: who, what, and the labels of its metrics and log line. */
struct exchange {
    struct server *s;
    struct MHD_Connection *c;
    struct request *req;
    const char *url, *method, *route, *lang, *allow;
};

json_t *jstr(const char *p, size_t n);
enum MHD_Result reply(struct exchange *x, int status, const char *type, char *body, size_t len);
enum MHD_Result reply_json(struct exchange *x, int status, json_t *j);
enum MHD_Result reply_error(struct exchange *x, int status, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int admit(struct server *s);
void release(struct server *s);

enum MHD_Result route_run(struct exchange *x);
enum MHD_Result route_handler(struct exchange *x, const char *name);
enum MHD_Result route_call(struct exchange *x, const char *path);

#endif

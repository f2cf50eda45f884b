/* assets: looking up the embedded web assets, and answering with a page of
 * them; see assets.h. */
#include "assets.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <string.h>

#include "reply.h"

const pl_asset *pl_asset_find(const char *name) {
    for (const pl_asset *a = pl_assets; a->name; a++)
        if (strcmp(a->name, name) == 0) return a;
    return NULL;
}

/* Answers with the asset, or 404 naming `what`; its headers after the
 * body's Content-Type: name/value pairs, NULL-terminated. */
static void reply_asset(struct evhttp_request *req, const char *name, const char *what, const char *type,
                        const char *const *headers) {
    const pl_asset *a = pl_asset_find(name);
    if (!a) {
        pl_reply_error(req, 404, "this parley was built without %s", what);
        return;
    }
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_reference(out, a->data, a->length, NULL, NULL);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    for (const char *const *kv = headers; *kv; kv += 2) evhttp_add_header(h, kv[0], kv[1]);
    pl_reply_send(req, 200, "OK", out);
    evbuffer_free(out);
}

void pl_asset_reply_page(struct evhttp_request *req, const char *name, const char *what) {
    static const char *const headers[] = {"Cache-Control", "no-cache", "X-Frame-Options", "DENY", NULL};
    reply_asset(req, name, what, "text/html; charset=utf-8", headers);
}

void pl_asset_reply_script(struct evhttp_request *req, const char *name, const char *what) {
    static const char *const headers[] = {"Cache-Control", "public, max-age=300", "Access-Control-Allow-Origin", "*",
                                          NULL};
    reply_asset(req, name, what, "application/javascript; charset=utf-8", headers);
}

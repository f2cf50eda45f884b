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

void pl_asset_reply_page(struct evhttp_request *req, const char *name, const char *what) {
    const pl_asset *page = pl_asset_find(name);
    if (!page) {
        pl_reply_error(req, 404, "this parley was built without %s", what);
        return;
    }
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_reference(out, page->data, page->length, NULL, NULL);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/html; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    pl_reply_send(req, 200, "OK", out);
    evbuffer_free(out);
}

/* store_reply: a request waiting for a read of the store; see store_reply.h. */
#include "store_reply.h"

#include <stdlib.h>

#include "conn.h"

typedef struct {
    struct evhttp_request *req; /* NULL once the client went away */
    pl_store_work_fn read;
    pl_store_answer_fn answer;
    void *ud;
    int watching; /* pl_conn_on_gone is set (the read comes later) */
} store_wait;

static void client_gone(void *arg) {
    store_wait *w = arg;
    w->req = NULL;
}

static void run_read(pl_store *store, void *arg) {
    store_wait *w = arg;
    w->read(store, w->ud);
}

static void read_done(void *arg) {
    store_wait *w = arg;
    if (w->req && w->watching) pl_conn_forget(w->req);
    w->answer(w->req, w->ud);
    free(w);
}

static store_wait *new_wait(struct evhttp_request *req, int later, pl_store_work_fn read, pl_store_answer_fn answer,
                            void *ud) {
    store_wait *w = malloc(sizeof *w);
    if (!w) abort();
    *w = (store_wait){.req = req, .read = read, .answer = answer, .ud = ud, .watching = later};
    if (later) pl_conn_on_gone(req, client_gone, w);
    return w;
}

void pl_reply_after_store(struct evhttp_request *req, pl_store *store, pl_store_work_fn read,
                          pl_store_answer_fn answer, void *ud) {
    store_wait *w = new_wait(req, pl_store_offload_later(store), read, answer, ud);
    pl_store_offload(store, run_read, read_done, w);
}

void pl_reply_after_long_read(struct evhttp_request *req, pl_store *store, pl_store_work_fn read,
                              pl_store_answer_fn answer, void *ud) {
    store_wait *w = new_wait(req, pl_store_offload_read_later(store), read, answer, ud);
    pl_store_offload_read(store, run_read, read_done, w);
}

/* test_reads: the test-only hold on the store's read thread; see
 * test_reads.h. */
#include "test_reads.h"

#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>

#include "reply.h"
#include "rest.h"

#define HOLD_SECONDS_MAX 60

static mtx_t lock;
static cnd_t released;
static once_flag made = ONCE_FLAG_INIT;
static int held; /* under lock */

static void make_lock(void) {
    mtx_init(&lock, mtx_plain);
    cnd_init(&released);
}

static void hold_reads(pl_store *store, void *ud) {
    (void)store;
    (void)ud;
    struct timespec until;
    timespec_get(&until, TIME_UTC);
    until.tv_sec += HOLD_SECONDS_MAX;
    mtx_lock(&lock);
    while (held && cnd_timedwait(&released, &lock, &until) == thrd_success) {
    }
    held = 0;
    mtx_unlock(&lock);
}

static void set_hold(pl_app *app, struct evhttp_request *req, int hold) {
    call_once(&made, make_lock);
    pl_store *store = pl_app_store(app);
    if (hold && !pl_store_offload_read_later(store)) {
        pl_reply_error(req, 409, "this store has no read thread to hold");
        return;
    }
    mtx_lock(&lock);
    int was = held;
    held = hold;
    if (!hold) cnd_broadcast(&released);
    mtx_unlock(&lock);
    if (hold && !was) pl_store_offload_read(store, hold_reads, NULL, NULL);
    pl_reply_json(req, 200, json_pack("{s:b}", "held", hold));
}

void pl_route_test_reads(pl_app *app, struct evhttp_request *req) {
    int open;
    json_t *body = pl_read_test_body(req, &open);
    json_t *hold = body ? json_object_get(body, "hold") : NULL;
    if (!open) {
        /* (answered) */
    } else if (!json_is_boolean(hold)) {
        pl_reply_error(req, 400, "send {\"hold\": true} or {\"hold\": false}");
    } else {
        set_hold(app, req, json_is_true(hold));
    }
    json_decref(body);
}

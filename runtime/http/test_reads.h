/* test_reads: POST /v1/test/reads, a test-only hold on the store's read
 * thread (enabled, like the test clock, by PARLEY_TEST_CLOCK=1): tests
 * show that a long read (pl_reply_after_long_read) waits there while the
 * loop and the store's other work carry on, without timing anything. */
#ifndef PL_TEST_READS_H
#define PL_TEST_READS_H

#include <event2/http.h>

#include "app/app.h"

/* {"hold": true} queues a read that waits until {"hold": false} (or a
 * minute) on the read thread; 409 when the store has no read thread. */
void pl_route_test_reads(pl_app *app, struct evhttp_request *req);

#endif

/* store_reply: answering a request with what the store reads, without the
 * loop waiting for the database. The read runs through pl_store_offload
 * (on PostgreSQL, the store's thread); the answer follows on the loop; a
 * client that went away meanwhile is noticed (pl_conn_on_gone) and its
 * request is not touched. */
#ifndef PL_STORE_REPLY_H
#define PL_STORE_REPLY_H

#include <event2/http.h>

#include "store/store.h"

/* Answers req (NULL: the client went away) from what the read put in ud,
 * and frees ud either way. */
typedef void (*pl_store_answer_fn)(struct evhttp_request *req, void *ud);

/* read(store', ud) off the loop, then answer(req, ud) on it. */
void pl_reply_after_store(struct evhttp_request *req, pl_store *store, pl_store_work_fn read,
                          pl_store_answer_fn answer, void *ud);

/* The same for a long read (analytics, exports): on the store's read
 * thread (pl_store_offload_read). */
void pl_reply_after_long_read(struct evhttp_request *req, pl_store *store, pl_store_work_fn read,
                              pl_store_answer_fn answer, void *ud);

#endif

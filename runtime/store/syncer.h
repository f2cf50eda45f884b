/* syncer: the thread that makes the SQLite store's commits durable, so
 * that the event loop never waits on the disk.
 *
 * The loop's connection writes its transactions into the WAL without
 * syncing (pl_store_defer_sync). The pipeline then asks the syncer for
 * durability (pl_syncer_request): the thread calls fdatasync on the WAL,
 * which makes every commit written before the call durable at once (group
 * commit: the batches the loop writes meanwhile are made durable together
 * by the next call), and tells the loop through an eventfd; the loop runs
 * `durable` on its own thread and releases what pl_syncer_synced covers.
 * The thread also checkpoints the WAL into the database file, on a
 * connection of its own with synchronous=FULL, when the loop holds its
 * writes for it (pl_syncer_request_checkpoint) once the WAL has grown, or
 * when idle; and it syncs commits made outside the pipeline (an outbox row
 * marked sent) within PL_SYNCER_IDLE_MS even when nobody asks. */
#ifndef PL_SYNCER_H
#define PL_SYNCER_H

#include <event2/event.h>
#include <stdint.h>

#include "store.h"

/* Commits made outside the pipeline are durable within this many ms. */
#define PL_SYNCER_IDLE_MS 100
/* Once the WAL holds this many bytes, the loop holds its next write for
 * one pass of the thread that checkpoints it (pl_syncer_request_checkpoint;
 * the batch keeps forming meanwhile): copied whole with nothing written
 * meanwhile, the WAL starts over from its beginning at the next write. */
#define PL_SYNCER_CHECKPOINT_BYTES (4 << 20)
/* A checkpoint a reader kept from copying the WAL whole (the WAL did not
 * start over) is held for again only once the WAL has grown this much
 * more: the writes are not held at every commit while the reader reads. */
#define PL_SYNCER_HOLD_AGAIN_BYTES (1 << 20)
#define PL_SYNCER_PAGE_BYTES 4096

typedef struct pl_syncer pl_syncer;

/* Called on the loop's thread when the request of pl_syncer_request is
 * durable. */
typedef void (*pl_durable_fn)(void *ud);

/* Starts the thread for the store's database file at db_path (the store
 * has deferred its syncs: pl_store_defer_sync). The thread reads only the
 * store's commit and WAL counters (pl_store_commits, pl_store_wal_frames). */
int pl_syncer_start(struct event_base *base, pl_store *store, const char *db_path, pl_durable_fn durable,
                    void *ud, pl_syncer **out, char **err);

/* Everything committed so far should become durable; `durable` runs on the
 * loop once it is. Requests made while a sync runs are served together by
 * the next one. */
void pl_syncer_request(pl_syncer *s);
/* The same, and a checkpoint before `durable` runs: the loop writes
 * nothing until then. */
void pl_syncer_request_checkpoint(pl_syncer *s);
/* The store's commit count (pl_store_commits) up to which every commit is
 * durable. */
uint64_t pl_syncer_synced(const pl_syncer *s);

/* Figures for the log at exit: syncs done, checkpoints done. */
void pl_syncer_stats(const pl_syncer *s, uint64_t *syncs, uint64_t *checkpoints);

/* Syncs what is left, stops and joins the thread. */
void pl_syncer_stop(pl_syncer *s);

#endif

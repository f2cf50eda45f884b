/* replay: `parley replay` — re-runs recorded conversations (from a
 * database's transcripts or replay files) against the bot's scripts as they
 * are now, in the spec runtime (spec.h), and shows per turn where the bot
 * answers differently; exports and accepts replay files. The comparing and
 * running is runtime/lua/parley/replay.lua; this file reads the recordings
 * and writes the files. `parley chat --record` writes its file here too. */
#ifndef PL_CLI_REPLAY_H
#define PL_CLI_REPLAY_H

#include <jansson.h>

#include "store/store.h"

/* The replay document (format: docs/authoring.md) of the conversation of
 * (bot, channel, user) as store's transcript holds it: each turn's message
 * or event, its time, the replies and the step the turn left the
 * conversation at (when the analytics recorded it). New, or NULL with *err. */
json_t *pl_replay_doc_from_store(pl_store *store, const char *bot, const char *channel, const char *user,
                                 const char *source, char **err);
/* Writes doc to path as a replay file: readable JSON in a fixed key order,
 * the replies as a replay keeps them (text, choices, cards, the link's
 * title, image). PL_OK, or PL_ERR with *err. */
int pl_replay_write(const json_t *doc, const char *path, char **err);

#endif

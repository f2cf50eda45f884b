/* watch: inotify on bot folders, so a saved file is live on the next message.
 *
 * Each bot folder is watched at its top (bot.json, the catalog) and through
 * flows/, scripts/ and lib/ with their subfolders. Changes to .lua, .json and
 * .csv files mark the bot dirty; the callback runs once per batch of events.
 * The inotify descriptor's readability drives it, at the event base's
 * highest priority (pl_app gives the loop two): when a saved file and a
 * message are ready in the same loop turn, the reload comes first, so the
 * next message runs the new code without a read of the descriptor per turn.
 * pl_watch_poll drains pending events at once. */
#ifndef PL_WATCH_H
#define PL_WATCH_H

#include <event2/event.h>

typedef struct pl_watch pl_watch;

/* changed is one of the changed files, relative to the folder. */
typedef void (*pl_watch_fn)(const char *changed, void *ud);

/* What a change reloads a bot for: a file of its folder, or of the folders
 * named here at its top (flows, scripts, lib) and every folder below them,
 * whose name ends in .lua, .json or .csv and does not start with a dot. */
int pl_watch_is_bot_file(const char *name);
int pl_watch_is_bot_folder(const char *name);

pl_watch *pl_watch_new(struct event_base *base, char **err);
void pl_watch_free(pl_watch *watch);
int pl_watch_add(pl_watch *watch, const char *dir, pl_watch_fn fn, void *ud, char **err);
/* Reads whatever events are pending (never blocks) and runs callbacks. */
void pl_watch_poll(pl_watch *watch);

#endif

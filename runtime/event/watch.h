/* watch: inotify on bot folders, so a saved file is live on the next message.
 *
 * Each bot folder is watched at its top (bot.json, the catalog) and through
 * flows/, scripts/ and lib/ with their subfolders. Changes to .lua, .json and
 * .csv files mark the bot dirty; the callback runs once the folder's writes
 * have settled: settle_ms after its last change event, so an editor that
 * truncates a file and then writes it (two closes) causes one reload of the
 * finished file, not one of an empty file first. The inotify descriptor's
 * readability drives it, at the event base's highest priority (pl_app gives
 * the loop two): when a saved file and a message are ready in the same loop
 * turn, the change is seen first, and the host calls pl_watch_settle_ms
 * before a message's turn, so the next message runs the new code without
 * waiting for the quiet period — once the change is a few milliseconds old
 * (a turn between an editor's truncate and its write runs after the write,
 * rather than reloading an empty file). pl_watch_poll drains pending
 * events. */
#ifndef PL_WATCH_H
#define PL_WATCH_H

#include <event2/event.h>
#include <stdint.h>

typedef struct pl_watch pl_watch;

/* changed is one of the changed files, relative to the folder. */
typedef void (*pl_watch_fn)(const char *changed, void *ud);

/* What a change reloads a bot for: a file of its folder, or of the folders
 * named here at its top (flows, scripts, lib) and every folder below them,
 * whose name ends in .lua, .json or .csv and does not start with a dot. */
int pl_watch_is_bot_file(const char *name);
int pl_watch_is_bot_folder(const char *name);

/* settle_ms: the quiet time after a folder's last change before its
 * callback runs (0: at once, with the batch of events that saw it). */
pl_watch *pl_watch_new(struct event_base *base, int settle_ms, char **err);
void pl_watch_free(pl_watch *watch);
int pl_watch_add(pl_watch *watch, const char *dir, pl_watch_fn fn, void *ud, char **err);
/* Reads whatever events are pending (never blocks); callbacks run now when
 * settle_ms is 0, else when the folder has been quiet for settle_ms. */
void pl_watch_poll(pl_watch *watch);
/* For the host before a message's turn (no system call; cheap when
 * nothing is settling): runs the callbacks of the changes still settling
 * and returns 0, or, when the last change is less than quiet_ms old,
 * returns how many ms the turn should wait for the folders to be quiet
 * quiet_ms (a save in two writes a millisecond apart is loaded finished),
 * and runs nothing. quiet_ms 0: at once. Never blocks. */
int64_t pl_watch_settle_ms(pl_watch *watch, int quiet_ms);

#endif

/* canned: the replies an agent inserts with a click or a "/" shortcut in
 * the agent console, from the manifest's handoff.canned_replies: checked
 * when the bot loads, and chosen for a conversation's locale. */
#ifndef PL_CANNED_H
#define PL_CANNED_H

#include <jansson.h>

/* The longest text, title and shortcut of a canned reply, in bytes. */
#define PL_CANNED_MAX_TEXT 4096
#define PL_CANNED_MAX_TITLE 80
#define PL_CANNED_MAX_SHORTCUT 32

/* Checks manifest's handoff.canned_replies: a list of {"shortcut", "text",
 * "title"?} for every locale, or an object of such lists by locale (each a
 * locale the manifest lists). NULL when it is right (or absent), else a new
 * message naming the place ("handoff.canned_replies.es[2].text ..."). */
char *pl_canned_check(const json_t *manifest);

/* The canned replies for locale (borrowed from manifest): its own list,
 * else the first locale's, else the one list for every locale; NULL when
 * the bot has none. */
const json_t *pl_canned_for(const json_t *manifest, const char *locale);

#endif

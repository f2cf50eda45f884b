/* secrets: which environment variables a bot may read (DESIGN.md section
 * 4). A bot.json names the variables that hold its secrets (keys ending in
 * "_env"); a bot reads only variables of its own namespace — its name in
 * capitals with '-' as '_' and a trailing '_' ("barista" → BARISTA_), or a
 * prefix the operator gives — and never the runtime's own (PARLEY_*), so
 * one brand's manifest cannot read another brand's keys or the admin token. */
#ifndef PL_SECRETS_H
#define PL_SECRETS_H

#include <jansson.h>
#include <stddef.h>

/* The operator's prefix for one bot (parley serve --env-prefix BOT=PREFIX);
 * copied. */
void pl_secrets_set_prefix(const char *bot, const char *prefix);
/* Forgets every operator prefix (tests). */
void pl_secrets_reset(void);

/* Writes bot's namespace into buf ("BARISTA_"); returns buf. */
const char *pl_secrets_prefix(const char *bot, char *buf, size_t size);

/* The value of variable `name` for bot: NULL when unset, empty, or outside
 * the namespace (borrowed from the environment). */
const char *pl_secrets_get(const char *bot, const char *name);

/* Checks every "*_env" key of a manifest (at any depth); returns a new
 * "bot.json: <path>: ..." message for the first one outside the
 * namespace, or NULL. */
char *pl_secrets_check_manifest(const char *bot, const json_t *manifest);

/* Two bots whose namespaces overlap (one is a prefix of the other) could
 * read each other's variables: returns a new message naming them, or NULL. */
char *pl_secrets_overlap(const char *bot_a, const char *bot_b);

#endif

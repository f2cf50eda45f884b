/* coverage: what `parley test --coverage` reports — the steps of a bot's
 * flows and the templates of its tone (key per locale) that no spec
 * reached. The counting itself runs in the bot's state (parley.coverage,
 * installed only by the spec runtime); this file gathers what each state
 * counted, across the fresh app every spec gets, and reports the union as
 * text or JSON. */
#ifndef PL_COVERAGE_H
#define PL_COVERAGE_H

#include <jansson.h>
#include <stdio.h>

#include "core/bot.h"

typedef struct pl_coverage pl_coverage;

pl_coverage *pl_coverage_new(void);
void pl_coverage_free(pl_coverage *cov);

/* From now on the bot's current state counts what it reaches. PL_OK, or
 * PL_ERR with *err (new) when the state could not be set up (no state:
 * the scripts never loaded, which the specs see anyway). */
int pl_coverage_watch(pl_bot *bot, char **err);

/* Adds what the bot's current state has and reached to cov; call before
 * the state goes (the app closes). PL_OK, or PL_ERR with *err (new). */
int pl_coverage_gather(pl_coverage *cov, pl_bot *bot, char **err);

/* Notes that a state of the bot never came to be: its scripts did not
 * load, for the reason why (the first one noted is reported). */
void pl_coverage_note_unloaded(pl_coverage *cov, const char *why);

/* The report as JSON (new): {"steps": {"reached", "total", "unreached":
 * [{"step", "at"}]}, "templates": {"reached", "total", "unreached":
 * [{"locale", "key"}]}}, lists sorted; and "load_error" when the bot's
 * scripts did not load (what they would have run was not counted). */
json_t *pl_coverage_json(const pl_coverage *cov);

/* The report for a person: a summary line, then what was not reached;
 * or, when the scripts never loaded, why nothing was counted. */
void pl_coverage_print(const pl_coverage *cov, FILE *out);

#endif

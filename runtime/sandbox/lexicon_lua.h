/* lexicon_lua: the module `parley.lexicon` — lexicon.c for the runtime's
 * understanding of shoppers' words (runtime/lua/parley/understand.lua).
 * A lexicon's memory is the state's (so it counts against the bot's
 * memory budget) and its work is charged to the run. */
#ifndef PL_LEXICON_LUA_H
#define PL_LEXICON_LUA_H

#include <lua.h>

/* lexicon.new(phrases, fuzzy) -> lexicon: phrases a list of folded
 * strings, fuzzy a list of booleans beside them (whether each forgives
 * typos); a phrase without units is kept as an entry that never matches.
 * lexicon:scan(folded) -> units, spans: the units of the text (a list of
 * strings) and the phrases found, flat: first unit (1-based), units
 * covered, entry (1-based, as in phrases), edit distance, four integers a
 * phrase. lexicon:words(folded) -> units, found: every one-unit phrase
 * each unit matches (not only the best), flat: unit, entry, distance, three
 * integers each. lexicon.distance(a, b, limit) -> the edit distance, or limit + 1
 * when over it. lexicon.allowed(n) -> the distance a word of n characters
 * may be off by. */
int pl_lexicon_lua_open(lua_State *L);

struct pl_lexicon;
/* Pushes a lexicon the state does not own (a catalog's, which outlives
 * every use), with the methods of parley.lexicon's. */
void pl_lexicon_lua_push_borrowed(lua_State *L, const struct pl_lexicon *lex);

#endif

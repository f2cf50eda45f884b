/* aliases: the merchant's other names for a product or an option choice
 * ("capu" for Cappuccino, "avena" for oat milk), by locale. The rules of
 * one alias and of a locale key, and the normal form every reader of the
 * catalog sees: {"*": [...], "es": [...]} ("*" for every locale).
 *
 * Plain C, used by catalog.c (JSON) and catalog_csv.c (CSV), so that both
 * refuse the same aliases. The search (catalog.c) and the Lua views
 * (parley.products) read the normal form only. */
#ifndef PL_ALIASES_H
#define PL_ALIASES_H

#include <jansson.h>
#include <stddef.h>

#define PL_ALIAS_MAX_BYTES 100
#define PL_ALIASES_PER_LOCALE 50

/* What is wrong with one alias s[0..len), as the end of a sentence whose
 * subject is the alias ("must be a non-empty string", "is 120 bytes long;
 * an alias has at most 100"), or NULL when it is fine. The text is static
 * or in reason (size n), which the caller owns. */
const char *pl_alias_problem(const char *s, size_t len, char *reason, size_t n);

/* True when locale is "*" or a locale code: a language of 2 or 3 lowercase
 * letters, optionally "-" and a region of 2 capitals or 3 digits (en,
 * pt-BR, es-419), as the engine matches a shopper's locale. */
int pl_alias_locale_valid(const char *locale);

/* The aliases field `v` (a list of strings for every locale, or an object
 * of lists by locale) in its normal form: a new object locale -> list (a
 * copy; v is borrowed). NULL when v breaks a rule, with the whole reason,
 * naming the path as written ("aliases.es[2] must be a non-empty string"),
 * in why (size n, the caller's). */
json_t *pl_aliases_normalize(const json_t *v, char *why, size_t n);

#endif

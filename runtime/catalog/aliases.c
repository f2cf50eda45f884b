/* aliases: the rules of a product's or choice's aliases and their normal
 * form; see aliases.h. An alias is compared folded (base/text.h), so one
 * that folds to nothing (punctuation only) could never match: it is
 * refused rather than kept in silence. */
#define _GNU_SOURCE
#include "aliases.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"

/* True when s[0..len) folds to at least one letter, digit or ideograph. */
static int has_something_to_match(const char *s, size_t len) {
    char *folded = pl_text_fold(s, len);
    int found = 0;
    for (const char *p = folded; p && *p && !found; p++) found = *p != ' ';
    free(folded);
    return found;
}

const char *pl_alias_problem(const char *s, size_t len, char *reason, size_t n) {
    size_t blank = 0;
    while (blank < len && isspace((unsigned char)s[blank])) blank++;
    if (blank == len) return "must be a non-empty string";
    if (len > PL_ALIAS_MAX_BYTES) {
        snprintf(reason, n, "is %zu bytes long; an alias has at most %d", len, PL_ALIAS_MAX_BYTES);
        return reason;
    }
    if (memchr(s, '\0', len) || !pl_text_is_utf8(s, len)) return "is not UTF-8 text";
    if (!has_something_to_match(s, len)) return "has no letter or digit a shopper could type";
    return NULL;
}

int pl_alias_locale_valid(const char *s) { return strcmp(s, "*") == 0 || pl_text_locale_valid(s); }

/* The path of a locale's list as the merchant wrote it: "aliases" for the
 * list form, aliases.es, aliases["*"]. */
static void list_path(const char *locale, char *out, size_t n) {
    if (!locale) snprintf(out, n, "aliases");
    else if (strcmp(locale, "*") == 0) snprintf(out, n, "aliases[\"*\"]");
    else snprintf(out, n, "aliases.%s", locale);
}

/* Checks one locale's list (borrowed); 0 and a reason in why when bad. */
static int check_list(const json_t *list, const char *locale, char *why, size_t n) {
    char path[48];
    list_path(locale, path, sizeof path);
    if (!json_is_array(list)) {
        snprintf(why, n, "%s must be a list of strings, as in [\"capu\", \"cappu\"]", path);
        return 0;
    }
    if (json_array_size(list) > PL_ALIASES_PER_LOCALE) {
        snprintf(why, n, "%s has %zu aliases; a locale has at most %d", path, json_array_size(list),
                 PL_ALIASES_PER_LOCALE);
        return 0;
    }
    size_t i;
    json_t *alias;
    json_array_foreach(list, i, alias) {
        char detail[80];
        const char *problem = json_is_string(alias)
                                  ? pl_alias_problem(json_string_value(alias), json_string_length(alias), detail,
                                                     sizeof detail)
                                  : "must be a non-empty string";
        if (problem) {
            snprintf(why, n, "%s[%zu] %s", path, i, problem);
            return 0;
        }
    }
    return 1;
}

json_t *pl_aliases_normalize(const json_t *v, char *why, size_t n) {
    if (json_is_array(v)) {
        if (!check_list(v, NULL, why, n)) return NULL;
        return json_pack("{s:O}", "*", v);
    }
    if (!json_is_object(v)) {
        snprintf(why, n, "aliases must be a list of strings (for every locale) or an object of lists by "
                         "locale, as in {\"*\": [\"capu\"], \"es\": [\"café con leche\"]}");
        return NULL;
    }
    const char *locale;
    json_t *list;
    json_object_foreach((json_t *)v, locale, list) {
        if (!pl_alias_locale_valid(locale)) {
            snprintf(why, n, "aliases: '%.40s' is not a locale code such as es or pt-BR (or \"*\" for every "
                             "locale)", locale);
            return NULL;
        }
        if (!check_list(list, locale, why, n)) return NULL;
    }
    return json_deep_copy(v);
}

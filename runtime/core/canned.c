/* canned: the agent console's canned replies in a bot's manifest; see
 * canned.h. */
#include "canned.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

static int valid_shortcut(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > PL_CANNED_MAX_SHORTCUT) return 0;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-' && *s != '_') return 0;
    return 1;
}

/* One locale's list (where names it: "handoff.canned_replies.es"). */
static char *check_list(const json_t *list, const char *where) {
    if (!json_is_array(list))
        return pl_strdupf("%s must be a list of {\"shortcut\", \"text\", \"title\"}", where);
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r) {
        const char *text = json_string_value(json_object_get(r, "text"));
        const char *shortcut = json_string_value(json_object_get(r, "shortcut"));
        json_t *title = json_object_get(r, "title");
        if (!json_is_object(r))
            return pl_strdupf("%s[%zu] must be an object {\"shortcut\", \"text\", \"title\"}", where, i + 1);
        if (!text || !*text || strlen(text) > PL_CANNED_MAX_TEXT)
            return pl_strdupf("%s[%zu].text must be the reply's text, 1-%d bytes", where, i + 1, PL_CANNED_MAX_TEXT);
        if (!valid_shortcut(shortcut))
            return pl_strdupf("%s[%zu].shortcut must be 1-%d characters of a-z, 0-9, - and _ (the agent types "
                              "\"/\" and it in the reply box)",
                              where, i + 1, PL_CANNED_MAX_SHORTCUT);
        if (title && (!json_is_string(title) || strlen(json_string_value(title)) > PL_CANNED_MAX_TITLE))
            return pl_strdupf("%s[%zu].title must be text of up to %d bytes", where, i + 1, PL_CANNED_MAX_TITLE);
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_object_get(json_array_get(list, j), "shortcut")), shortcut) == 0)
                return pl_strdupf("%s[%zu].shortcut \"%s\" is also the shortcut of [%zu]", where, i + 1, shortcut,
                                  j + 1);
    }
    return NULL;
}

static int lists_locale(const json_t *manifest, const char *locale) {
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(manifest, "locales"), i, l) if (strcmp(json_string_value(l), locale) == 0) return 1;
    /* no "locales": the bot speaks English */
    return !json_object_get(manifest, "locales") && strcmp(locale, "en") == 0;
}

char *pl_canned_check(const json_t *manifest) {
    const json_t *handoff = json_object_get(manifest, "handoff");
    const json_t *canned = json_object_get(handoff, "canned_replies");
    if (handoff && !json_is_object(handoff)) return pl_strdup("\"handoff\" must be an object such as {\"canned_replies\": [...]}");
    if (!canned) return NULL;
    if (json_is_array(canned)) return check_list(canned, "handoff.canned_replies");
    if (!json_is_object(canned))
        return pl_strdup("handoff.canned_replies must be a list of {\"shortcut\", \"text\", \"title\"}, or an object "
                         "of such lists by locale ({\"en\": [...], \"es\": [...]})");
    const char *locale;
    json_t *list;
    json_object_foreach((json_t *)canned, locale, list) {
        if (!lists_locale(manifest, locale))
            return pl_strdupf("handoff.canned_replies.%s: \"%s\" is not one of the bot's \"locales\"", locale, locale);
        char *where = pl_strdupf("handoff.canned_replies.%s", locale);
        char *why = check_list(list, where);
        free(where);
        if (why) return why;
    }
    return NULL;
}

const json_t *pl_canned_for(const json_t *manifest, const char *locale) {
    const json_t *canned = json_object_get(json_object_get(manifest, "handoff"), "canned_replies");
    if (json_is_array(canned)) return canned;
    const json_t *mine = locale ? json_object_get(canned, locale) : NULL;
    if (mine) return mine;
    return json_object_get(canned, json_string_value(json_array_get(json_object_get(manifest, "locales"), 0)));
}

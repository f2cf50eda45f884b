/* secrets: environment namespaces of bots; see secrets.h. */
#include "secrets.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define RUNTIME_PREFIX "PARLEY_"

typedef struct given {
    struct given *next;
    char *bot;
    char *prefix;
} given;

static given *operator_prefixes;

void pl_secrets_set_prefix(const char *bot, const char *prefix) {
    given *g = calloc(1, sizeof *g);
    if (!g) abort();
    g->bot = pl_strdup(bot);
    g->prefix = pl_strdup(prefix);
    g->next = operator_prefixes;
    operator_prefixes = g;
}

void pl_secrets_reset(void) {
    while (operator_prefixes) {
        given *g = operator_prefixes;
        operator_prefixes = g->next;
        free(g->bot);
        free(g->prefix);
        free(g);
    }
}

const char *pl_secrets_prefix(const char *bot, char *buf, size_t size) {
    for (given *g = operator_prefixes; g; g = g->next) {
        if (strcmp(g->bot, bot) != 0) continue;
        snprintf(buf, size, "%s", g->prefix);
        return buf;
    }
    size_t n = 0;
    for (const char *p = bot; *p && n + 2 < size; p++)
        buf[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    buf[n++] = '_';
    buf[n] = '\0';
    return buf;
}

/* Whether variable `name` is inside bot's namespace. */
static int allowed(const char *bot, const char *name) {
    char prefix[128];
    pl_secrets_prefix(bot, prefix, sizeof prefix);
    size_t n = strlen(prefix);
    return name && strncmp(name, RUNTIME_PREFIX, strlen(RUNTIME_PREFIX)) != 0 && strncmp(name, prefix, n) == 0 &&
           name[n] != '\0';
}

const char *pl_secrets_get(const char *bot, const char *name) {
    if (!allowed(bot, name)) return NULL;
    const char *value = getenv(name);
    return value && *value ? value : NULL;
}

/* Walks value at path; on the first "*_env" key outside the namespace
 * returns a new message. */
static char *check_value(const char *bot, const json_t *value, const char *path) {
    const char *key;
    json_t *member;
    size_t i;
    if (json_is_array(value)) {
        json_array_foreach(value, i, member) {
            char *sub = pl_strdupf("%s[%zu]", path, i);
            char *found = check_value(bot, member, sub);
            free(sub);
            if (found) return found;
        }
        return NULL;
    }
    json_object_foreach((json_t *)value, key, member) {
        char *sub = *path ? pl_strdupf("%s.%s", path, key) : pl_strdup(key);
        size_t len = strlen(key);
        char *found = NULL;
        if (len > 4 && strcmp(key + len - 4, "_env") == 0 && json_is_string(member) &&
            !allowed(bot, json_string_value(member))) {
            char prefix[128];
            found = pl_strdupf("bot.json: %s: %s is outside this bot's environment namespace: a bot reads only "
                               "variables whose names start with %s (and never PARLEY_*)",
                               sub, json_string_value(member), pl_secrets_prefix(bot, prefix, sizeof prefix));
        } else if (json_is_object(member) || json_is_array(member)) {
            found = check_value(bot, member, sub);
        }
        free(sub);
        if (found) return found;
    }
    return NULL;
}

char *pl_secrets_check_manifest(const char *bot, const json_t *manifest) {
    return check_value(bot, manifest, "");
}

char *pl_secrets_overlap(const char *bot_a, const char *bot_b) {
    char a[128], b[128];
    pl_secrets_prefix(bot_a, a, sizeof a);
    pl_secrets_prefix(bot_b, b, sizeof b);
    size_t na = strlen(a), nb = strlen(b);
    if (strncmp(a, b, na < nb ? na : nb) != 0) return NULL;
    return pl_strdupf("bots '%s' and '%s' have overlapping environment namespaces (%s, %s), so one could read "
                      "the other's secrets: give one of them its own with --env-prefix %s=PREFIX_",
                      bot_a, bot_b, a, b, na <= nb ? bot_a : bot_b);
}

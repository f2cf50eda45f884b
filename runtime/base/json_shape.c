/* json_shape: a JSON document checked against a list of path rules; see
 * json_shape.h. Plain jansson; the messages are for logs and 400 answers. */
#define _GNU_SOURCE
#include "json_shape.h"

#include <stdio.h>
#include <string.h>

#include "common.h"

#define WHERE_MAX 256
#define NAME_MAX_BYTES 40 /* of a member's name quoted in a path */

/* The concrete path walked so far ("entry[0].changes[1]"), cut short (at a
 * character boundary) if a document nests too deep to name it whole. */
typedef struct {
    char text[WHERE_MAX];
    size_t len;
} where_buf;

/* Appends part to the path, unless the path would not fit: a document
 * nested that deep is named by the deepest place that fits. */
static void where_append(where_buf *w, const char *part) {
    size_t len = strlen(part);
    if (len > sizeof w->text - 1 - w->len) return;
    memcpy(w->text + w->len, part, len + 1);
    w->len += len;
}

/* ".name" (or "name" at the top); a long name is cut at a character. */
static void where_key(where_buf *w, const char *name) {
    size_t n = strlen(name);
    if (n > NAME_MAX_BYTES) {
        n = NAME_MAX_BYTES;
        while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80) n--;
    }
    char part[NAME_MAX_BYTES + 2];
    snprintf(part, sizeof part, "%s%.*s", w->len ? "." : "", (int)n, name);
    where_append(w, part);
}

static void where_index(where_buf *w, size_t i) {
    char part[32];
    snprintf(part, sizeof part, "[%zu]", i);
    where_append(w, part);
}

static int type_bit(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return PL_SHAPE_OBJECT;
    case JSON_ARRAY: return PL_SHAPE_ARRAY;
    case JSON_STRING: return PL_SHAPE_STRING;
    case JSON_INTEGER: return PL_SHAPE_INTEGER | PL_SHAPE_NUMBER;
    case JSON_REAL: return PL_SHAPE_NUMBER;
    case JSON_TRUE:
    case JSON_FALSE: return PL_SHAPE_BOOLEAN;
    default: return PL_SHAPE_NULL;
    }
}

/* "an object", "a string or an integer" ... for the allowed types. */
static void describe(unsigned types, char *out, size_t size) {
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{PL_SHAPE_OBJECT, "an object"}, {PL_SHAPE_ARRAY, "an array"}, {PL_SHAPE_STRING, "a string"},
                 {PL_SHAPE_INTEGER, "an integer"}, {PL_SHAPE_NUMBER, "a number"}, {PL_SHAPE_BOOLEAN, "true or false"},
                 {PL_SHAPE_NULL, "null"}};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (!(types & names[i].bit)) continue;
        size_t used = strlen(out);
        const char *name = names[i].bit == PL_SHAPE_STRING && types & PL_SHAPE_NONEMPTY ? "a non-empty string"
                                                                                       : names[i].name;
        snprintf(out + used, size - used, "%s%s", used ? " or " : "", name);
    }
}

static int fail_at(const where_buf *w, unsigned types, int missing, char **err) {
    char what[96];
    describe(types, what, sizeof what);
    if (missing) return pl_fail(err, "%s is missing (%s)", w->text, what);
    return pl_fail(err, "%s must be %s", w->text, what);
}

static int walk(const json_t *v, const char *path, unsigned types, where_buf at, char **err);

/* The next segment of path applied to v, then the rest of the path. */
static int step(const json_t *v, const char *path, unsigned types, where_buf at, char **err) {
    size_t n = strcspn(path, ".");
    const char *rest = path[n] == '.' ? path + n + 1 : path + n;
    if (n == 1 && path[0] == '*') {
        const char *name;
        json_t *member;
        json_object_foreach((json_t *)v, name, member) {
            where_buf inner = at;
            where_key(&inner, name);
            if (walk(member, rest, types, inner, err) != PL_OK) return PL_ERR;
        }
        return PL_OK;
    }
    int each = n > 2 && strncmp(path + n - 2, "[]", 2) == 0;
    char key[64];
    snprintf(key, sizeof key, "%.*s", (int)(each ? n - 2 : n), path);
    const json_t *child = json_object_get(v, key);
    where_key(&at, key);
    if (!child) return (types & PL_SHAPE_REQUIRED) && !*rest && !each ? fail_at(&at, types, 1, err) : PL_OK;
    if (!each) return walk(child, rest, types, at, err);
    size_t i;
    const json_t *element;
    json_array_foreach(child, i, element) {
        where_buf inner = at;
        where_index(&inner, i);
        if (walk(element, rest, types, inner, err) != PL_OK) return PL_ERR;
    }
    return PL_OK;
}

/* v is the value at the walked part; path what is left of the rule's. */
static int walk(const json_t *v, const char *path, unsigned types, where_buf at, char **err) {
    if (!*path) {
        int empty = (types & PL_SHAPE_NONEMPTY) && json_is_string(v) && json_string_length(v) == 0;
        return type_bit(v) & types && !empty ? PL_OK : fail_at(&at, types, 0, err);
    }
    if (!json_is_object(v)) return PL_OK; /* its own rule says what it should be */
    return step(v, path, types, at, err);
}

int pl_json_shape_check(const json_t *doc, const char *where, const pl_shape_rule *rules, size_t n,
                        char **err) {
    for (size_t i = 0; i < n; i++) {
        where_buf at = {{0}, 0};
        if (where) snprintf(at.text, sizeof at.text, "%s", where);
        at.len = strlen(at.text);
        if (walk(doc, rules[i].path, rules[i].types, at, err) != PL_OK) return PL_ERR;
    }
    return PL_OK;
}

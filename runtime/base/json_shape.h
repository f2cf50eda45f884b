/* json_shape: checks that a JSON document has the shape its reader expects
 * before the reader walks it: an object or array wherever the reader looks
 * inside, a string or number wherever it reads one, and the fields it
 * cannot do without. The channel adapters check platforms' webhook bodies
 * with it, so a body of the wrong shape is refused (400, with the place
 * named) instead of read as if it said nothing; fields and kinds the
 * reader does not use are never looked at, so platforms may add them.
 *
 * A rule is a path and the types allowed at its end. A path is keys joined
 * by '.'; "key[]" stands for each element of the array at key, "*" for
 * each member of an object. A value that is absent passes unless the rule
 * says PL_SHAPE_REQUIRED (and then only where the value's parent is there);
 * JSON null is a value of its own type. */
#ifndef PL_JSON_SHAPE_H
#define PL_JSON_SHAPE_H

#include <jansson.h>
#include <stddef.h>

/* The string at obj.key, or NULL (obj may be NULL or no object): how
 * adapters read the fields a shape check let through. */
static inline const char *pl_json_str(const json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

enum {
    PL_SHAPE_OBJECT = 1 << 0,
    PL_SHAPE_ARRAY = 1 << 1,
    PL_SHAPE_STRING = 1 << 2,
    PL_SHAPE_INTEGER = 1 << 3,
    PL_SHAPE_NUMBER = 1 << 4, /* an integer or a real */
    PL_SHAPE_BOOLEAN = 1 << 5,
    PL_SHAPE_NULL = 1 << 6,
    PL_SHAPE_REQUIRED = 1 << 8,
    PL_SHAPE_NONEMPTY = 1 << 9, /* a string must not be "" (an id a session is keyed by) */
};

typedef struct {
    const char *path;  /* "entry[].changes[].value", "request.intent.slots.*.value" */
    unsigned types;    /* PL_SHAPE_* allowed there, maybe | PL_SHAPE_REQUIRED */
} pl_shape_rule;

/* PL_OK when doc (borrowed) follows every rule; else PL_ERR with *err
 * naming the first place that does not ("entry[0].changes must be an
 * array", "request.type is missing (a string)"), after `where` (the path
 * of doc in a larger document, or NULL at the top). Rules are checked in
 * order and a value under a parent of the wrong type is not looked at, so
 * list a parent's rule before the rules inside it. */
int pl_json_shape_check(const json_t *doc, const char *where, const pl_shape_rule *rules, size_t n,
                        char **err);

#endif

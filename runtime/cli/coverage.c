/* coverage: gathers what parley.coverage counted in each state of the bot
 * while specs ran (runtime/lua/parley/coverage.lua), and reports the steps
 * and templates no spec reached. Uses the bot's state through pl_vm_run
 * (under its budgets, like any call into merchant code) and jansson. */
#define _GNU_SOURCE
#include "coverage.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "sandbox/json_lua.h"

/* the calls into the bot's state: a full budget, as a load gets */
#define COVERAGE_BUDGET_PERCENT 100

struct pl_coverage {
    json_t *steps;     /* "flow.step" -> {"reached": bool, "at": "file:line"?} */
    json_t *templates; /* locale -> {key -> bool} */
    char *load_error;  /* why a state of the bot never came to be, or NULL */
    int gathered;      /* states counted */
};

pl_coverage *pl_coverage_new(void) {
    pl_coverage *cov = calloc(1, sizeof *cov);
    cov->steps = json_object();
    cov->templates = json_object();
    return cov;
}

void pl_coverage_free(pl_coverage *cov) {
    if (!cov) return;
    json_decref(cov->steps);
    json_decref(cov->templates);
    free(cov->load_error);
    free(cov);
}

void pl_coverage_note_unloaded(pl_coverage *cov, const char *why) {
    if (!cov->load_error) cov->load_error = pl_strdup(why ? why : "no reason given");
}

/* Calls parley.coverage.<fn>() in the bot's current state; its result, as
 * JSON, goes to *out (new) when out is not NULL. */
static int call_coverage(pl_bot *bot, const char *fn, json_t **out, char **err) {
    pl_vm *vm = pl_bot_vm(bot);
    if (!vm) return pl_fail(err, "the bot's scripts did not load");
    lua_State *L = pl_vm_lua(vm);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "parley.coverage");
    if (pl_vm_run(vm, 1, 1, COVERAGE_BUDGET_PERCENT, err) != PL_OK) return PL_ERR;
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    if (pl_vm_run(vm, 0, 1, COVERAGE_BUDGET_PERCENT, err) != PL_OK) return PL_ERR;
    int rc = PL_OK;
    if (out) {
        *out = pl_json_from_lua(L, -1, fn, err);
        if (!*out) rc = PL_ERR;
    }
    lua_pop(L, 1);
    return rc;
}

int pl_coverage_watch(pl_bot *bot, char **err) { return call_coverage(bot, "watch", NULL, err); }

/* Adds a state's {id -> {"reached"}} steps to the union: reached by any
 * state is reached. */
static void merge_steps(json_t *into, json_t *steps) {
    const char *id;
    json_t *step;
    json_object_foreach(steps, id, step) {
        json_t *known = json_object_get(into, id);
        if (!known) json_object_set(into, id, step);
        else if (json_is_true(json_object_get(step, "reached")))
            json_object_set_new(known, "reached", json_true());
    }
}

static void merge_templates(json_t *into, json_t *templates) {
    const char *locale, *key;
    json_t *keys, *reached;
    json_object_foreach(templates, locale, keys) {
        if (!json_is_object(keys)) continue; /* a locale without templates */
        json_t *known = json_object_get(into, locale);
        if (!known) {
            known = json_object();
            json_object_set_new(into, locale, known);
        }
        json_object_foreach(keys, key, reached) {
            if (!json_is_true(json_object_get(known, key))) json_object_set(known, key, reached);
        }
    }
}

int pl_coverage_gather(pl_coverage *cov, pl_bot *bot, char **err) {
    json_t *report = NULL;
    if (call_coverage(bot, "report", &report, err) != PL_OK) return PL_ERR;
    merge_steps(cov->steps, json_object_get(report, "steps"));
    merge_templates(cov->templates, json_object_get(report, "templates"));
    json_decref(report);
    cov->gathered++;
    return PL_OK;
}

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The keys of an object, sorted (a new array of borrowed strings). */
static const char **sorted_keys(const json_t *obj, size_t *n) {
    *n = json_object_size(obj);
    const char **keys = calloc(*n + 1, sizeof *keys);
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) keys[i++] = key;
    qsort(keys, *n, sizeof *keys, by_string);
    return keys;
}

static json_t *summary(json_int_t reached, json_int_t total, json_t *unreached) {
    return json_pack("{s:I, s:I, s:o}", "reached", reached, "total", total, "unreached", unreached);
}

static json_t *steps_json(const pl_coverage *cov) {
    size_t n;
    const char **ids = sorted_keys(cov->steps, &n);
    json_t *unreached = json_array();
    json_int_t reached = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *step = json_object_get(cov->steps, ids[i]);
        if (json_is_true(json_object_get(step, "reached"))) {
            reached++;
            continue;
        }
        json_t *entry = json_pack("{s:s}", "step", ids[i]);
        json_t *at = json_object_get(step, "at");
        if (json_is_string(at)) json_object_set(entry, "at", at);
        json_array_append_new(unreached, entry);
    }
    free(ids);
    return summary(reached, (json_int_t)n, unreached);
}

static json_t *templates_json(const pl_coverage *cov) {
    size_t nlocales;
    const char **locales = sorted_keys(cov->templates, &nlocales);
    json_t *unreached = json_array();
    json_int_t reached = 0, total = 0;
    for (size_t i = 0; i < nlocales; i++) {
        json_t *keys = json_object_get(cov->templates, locales[i]);
        size_t nkeys;
        const char **names = sorted_keys(keys, &nkeys);
        for (size_t k = 0; k < nkeys; k++) {
            total++;
            if (json_is_true(json_object_get(keys, names[k]))) reached++;
            else json_array_append_new(unreached, json_pack("{s:s, s:s}", "locale", locales[i], "key", names[k]));
        }
        free(names);
    }
    free(locales);
    return summary(reached, total, unreached);
}

json_t *pl_coverage_json(const pl_coverage *cov) {
    json_t *report = json_pack("{s:o, s:o}", "steps", steps_json(cov), "templates", templates_json(cov));
    if (cov->load_error) json_object_set_new(report, "load_error", json_string(cov->load_error));
    return report;
}

void pl_coverage_print(const pl_coverage *cov, FILE *out) {
    if (cov->load_error && cov->gathered == 0) {
        fprintf(out, "coverage: nothing counted: the bot's scripts did not load: %s\n", cov->load_error);
        return;
    }
    if (cov->load_error)
        fprintf(out, "coverage: not counted while the bot's scripts did not load: %s\n", cov->load_error);
    json_t *report = pl_coverage_json(cov);
    json_t *steps = json_object_get(report, "steps"), *templates = json_object_get(report, "templates");
    fprintf(out, "coverage: steps reached %lld/%lld, templates reached %lld/%lld\n",
            (long long)json_integer_value(json_object_get(steps, "reached")),
            (long long)json_integer_value(json_object_get(steps, "total")),
            (long long)json_integer_value(json_object_get(templates, "reached")),
            (long long)json_integer_value(json_object_get(templates, "total")));
    size_t i;
    json_t *item;
    json_t *list = json_object_get(steps, "unreached");
    if (json_array_size(list) > 0) fputs("steps no spec reached:\n", out);
    json_array_foreach(list, i, item) {
        const char *at = json_string_value(json_object_get(item, "at"));
        fprintf(out, "  %s%s%s\n", json_string_value(json_object_get(item, "step")), at ? "  " : "", at ? at : "");
    }
    list = json_object_get(templates, "unreached");
    if (json_array_size(list) > 0) fputs("templates no spec reached (locale key):\n", out);
    json_array_foreach(list, i, item) {
        fprintf(out, "  %s %s\n", json_string_value(json_object_get(item, "locale")),
                json_string_value(json_object_get(item, "key")));
    }
    json_decref(report);
}

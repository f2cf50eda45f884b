/* map: a string-keyed hash table of pointers (chained; grows at load 1).
 * Keys are copied; values are borrowed (the caller owns what they point at). */
#ifndef PL_MAP_H
#define PL_MAP_H

#include <stddef.h>

typedef struct pl_map pl_map;

pl_map *pl_map_new(void);
/* Frees the table and its keys, not the values. */
void pl_map_free(pl_map *map);
void *pl_map_get(const pl_map *map, const char *key);
/* Sets key to value (NULL removes it); returns the value it had. */
void *pl_map_put(pl_map *map, const char *key, void *value);
size_t pl_map_count(const pl_map *map);
/* Calls fn for each entry; fn may remove the entry it is given. */
void pl_map_each(pl_map *map, void (*fn)(const char *key, void *value, void *ud), void *ud);

#endif

/* assets: looking up the embedded web assets; see assets.h. */
#include "assets.h"

#include <string.h>

const pl_asset *pl_asset_find(const char *name) {
    for (const pl_asset *a = pl_assets; a->name; a++)
        if (strcmp(a->name, name) == 0) return a;
    return NULL;
}

/* test_secrets: each bot reads only the environment variables of its own
 * namespace, never the runtime's (secrets.h). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/secrets.h"
#include "check.h"

TEST(namespace_from_the_name) {
    char buf[64];
    CHECK_STR(pl_secrets_prefix("barista", buf, sizeof buf), "BARISTA_");
    CHECK_STR(pl_secrets_prefix("north-shop_2", buf, sizeof buf), "NORTH_SHOP_2_");
}

TEST(reads_only_its_own) {
    setenv("BARISTA_STRIPE_KEY", "sk_barista", 1);
    setenv("PIZZA_STRIPE_KEY", "sk_pizza", 1);
    setenv("PARLEY_ADMIN_TOKEN", "admin", 1);
    setenv("BARISTA_EMPTY", "", 1);
    CHECK_STR(pl_secrets_get("barista", "BARISTA_STRIPE_KEY"), "sk_barista");
    CHECK(pl_secrets_get("barista", "PIZZA_STRIPE_KEY") == NULL);
    CHECK(pl_secrets_get("barista", "PARLEY_ADMIN_TOKEN") == NULL);
    CHECK(pl_secrets_get("barista", "HOME") == NULL);
    CHECK(pl_secrets_get("barista", "BARISTA_") == NULL); /* the prefix alone names nothing */
    CHECK(pl_secrets_get("barista", "BARISTA_EMPTY") == NULL);
    CHECK(pl_secrets_get("barista", "barista_stripe_key") == NULL);
    /* a bot named like the runtime still cannot read the runtime's variables */
    CHECK(pl_secrets_get("parley", "PARLEY_ADMIN_TOKEN") == NULL);
}

TEST(operator_prefix) {
    setenv("ACME_KEY", "acme", 1);
    pl_secrets_set_prefix("shop", "ACME_");
    CHECK_STR(pl_secrets_get("shop", "ACME_KEY"), "acme");
    CHECK(pl_secrets_get("shop", "SHOP_KEY") == NULL);
    CHECK(pl_secrets_get("other", "ACME_KEY") == NULL);
    pl_secrets_reset();
    CHECK(pl_secrets_get("shop", "ACME_KEY") == NULL);
}

TEST(manifest_check_names_the_key) {
    json_t *ok = json_loads("{\"name\": \"barista\", \"api_token_env\": \"BARISTA_API\","
                            " \"channels\": {\"whatsapp\": {\"app_secret_env\": \"BARISTA_WA\"}}}", 0, NULL);
    char *why = pl_secrets_check_manifest("barista", ok);
    CHECK(why == NULL);
    free(why);
    json_t *bad = json_loads("{\"name\": \"barista\", \"payments\": {\"provider\": \"stripe\","
                             " \"secret_key_env\": \"PIZZA_STRIPE_SECRET_KEY\"}}", 0, NULL);
    why = pl_secrets_check_manifest("barista", bad);
    CHECK(why && strstr(why, "payments.secret_key_env") && strstr(why, "PIZZA_STRIPE_SECRET_KEY") &&
          strstr(why, "BARISTA_"));
    free(why);
    json_t *admin = json_loads("{\"x\": [{\"token_env\": \"PARLEY_ADMIN_TOKEN\"}]}", 0, NULL);
    why = pl_secrets_check_manifest("barista", admin);
    CHECK(why && strstr(why, "x[0].token_env"));
    free(why);
    json_decref(ok);
    json_decref(bad);
    json_decref(admin);
}

TEST(overlapping_namespaces) {
    char *why = pl_secrets_overlap("shop", "shop_x");
    CHECK(why && strstr(why, "SHOP_") && strstr(why, "--env-prefix shop="));
    free(why);
    why = pl_secrets_overlap("a-b", "a_b");
    CHECK(why != NULL);
    free(why);
    CHECK(pl_secrets_overlap("barista", "pizza") == NULL);
    pl_secrets_set_prefix("shop", "ACME_");
    CHECK(pl_secrets_overlap("shop", "shop_x") == NULL);
    pl_secrets_reset();
}

int main(void) {
    RUN(namespace_from_the_name);
    RUN(reads_only_its_own);
    RUN(operator_prefix);
    RUN(manifest_check_names_the_key);
    RUN(overlapping_namespaces);
    return check_done();
}

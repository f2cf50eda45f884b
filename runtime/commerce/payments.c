/* payments: the provider registry and the confirmation state table; see
 * payments.h. The providers are payment_test.c (parley's own payment page)
 * and payment_stripe.c. */
#define _GNU_SOURCE
#include "payments.h"

#include <string.h>

extern const pl_payment_provider pl_payment_test;
extern const pl_payment_provider pl_payment_stripe;

static const pl_payment_provider *const providers[] = {&pl_payment_test, &pl_payment_stripe};

const pl_payment_provider *pl_payments_find(const char *name) {
    for (size_t i = 0; i < sizeof providers / sizeof *providers; i++)
        if (name && strcmp(providers[i]->name, name) == 0 && providers[i]->create_link) return providers[i];
    return NULL;
}

int pl_payments_transition(const char *status, const char **from, const char **to) {
    static const struct {
        const char *status, *from, *to;
    } table[] = {/* money received is the truth: a shopper who retried on the
                  * provider's page after a decline or past the expiry has paid */
                 {"paid", "pending,failed,expired", "paid"},
                 {"failed", "pending", "failed"},
                 {"expired", "pending", "expired"},
                 {"refunded", "paid", "refunded"}};
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        if (status && strcmp(status, table[i].status) == 0) {
            *from = table[i].from;
            *to = table[i].to;
            return 1;
        }
    }
    return 0;
}

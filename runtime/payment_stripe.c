/* payment_stripe: the Stripe provider (being written; see payments.h). */
#include "payments.h"

const pl_payment_provider pl_payment_stripe = {.name = "stripe"};

/* channel_twilio: the twilio adapter (being written; see channel.h). */
#include "channel.h"

const pl_channel_adapter pl_channel_twilio = {.name = "twilio"};

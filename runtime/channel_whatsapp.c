/* channel_whatsapp: the whatsapp adapter (being written; see channel.h). */
#include "channel.h"

const pl_channel_adapter pl_channel_whatsapp = {.name = "whatsapp"};

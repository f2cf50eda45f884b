/* channel_telegram: the telegram adapter (being written; see channel.h). */
#include "channel.h"

const pl_channel_adapter pl_channel_telegram = {.name = "telegram"};

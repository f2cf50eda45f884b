/* channel_messenger: the messenger adapter (being written; see channel.h). */
#include "channel.h"

const pl_channel_adapter pl_channel_messenger = {.name = "messenger"};

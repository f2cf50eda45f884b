/* channel_alexa: the alexa adapter (being written; see channel.h). */
#include "channel.h"

const pl_channel_adapter pl_channel_alexa = {.name = "alexa"};

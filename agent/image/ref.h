/* Image references: the parser lives in libdrover-shared (drover/ref.h), where the hub parses
 * them too; this name is kept for the agent. */
#ifndef DROVER_AGENT_IMAGE_REF_H
#define DROVER_AGENT_IMAGE_REF_H

#include "drover/ref.h"

#endif

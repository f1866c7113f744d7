/* OCI manifests, indexes, configs and platforms: the parser lives in libdrover-shared
 * (drover/oci.h), where the hub reads image indexes too; this name is kept for the agent. */
#ifndef DROVER_AGENT_IMAGE_OCI_H
#define DROVER_AGENT_IMAGE_OCI_H

#include "drover/oci.h"

#endif

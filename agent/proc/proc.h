/* The agent's child processes: the one fork/exec helper now lives in libdrover-shared
 * (drover/proc.h), where the CLI uses it too; this name is kept for the agent's modules. */
#ifndef DROVER_AGENT_PROC_H
#define DROVER_AGENT_PROC_H

#include "drover/proc.h"

#endif

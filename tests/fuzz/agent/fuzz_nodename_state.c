/* libFuzzer target for the agent's node name state file (<stateDir>/node-name.json, agent/config
 * drv_nodename_state_parse): the input is the file. Checks that nothing crashes or leaks, that
 * an accepted state holds a valid pattern and a valid node name (never a pattern), and that a
 * refused one says why. Needs drover-agent-core. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/nodename.h"
#include "drover/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drv_nodename_state_t st;
    memset(&st, 0x5a, sizeof(st));
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r = drv_nodename_state_parse((const char *)data, size, &st, &err);
    if (r == DRV_OK) {
        if (!drv_name_node_pattern(st.pattern, NULL, 0) || !drv_name_node_is_pattern(st.pattern) ||
            drv_name_node_is_pattern(st.node_name) ||
            !drv_name_dns_subdomain(st.node_name, NULL, 0) ||
            strlen(st.node_name) > DRV_NAME_NODE_MAX || strlen(st.source) >= sizeof(st.source))
            abort();
    } else if (!err.msg[0]) {
        abort();
    }
    return 0;
}

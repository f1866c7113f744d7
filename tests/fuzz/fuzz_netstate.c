/* libFuzzer target for the network section of a desired state (drv_netstate_parse): every input
 * either parses into structs that keep the parser's promises (ranges inside the cluster CIDR,
 * no overlaps, one target port per Service port) or fails with a message naming a field of
 * "network", and nothing leaks either way. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/doc.h"
#include "drover/netstate.h"

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_netstate: %s: %s\n", what, detail);
    abort();
}

static void check(const drv_netstate_t *ns)
{
    if (!ns->present)
        die("parsed but not present", ns->node);
    if (!drv_net_cidr_contains(ns->cluster_cidr, ns->pod_cidr.addr) ||
        drv_net_cidr_overlaps(ns->cluster_cidr, ns->service_cidr))
        die("own ranges", "podCIDR outside clusterCIDR or serviceCIDR overlapping it");
    for (size_t i = 0; i < ns->npeers; i++) {
        const drv_net_peer_t *p = &ns->peers[i];
        if (!drv_net_cidr_contains(ns->cluster_cidr, p->pod_cidr.addr) ||
            drv_net_cidr_overlaps(p->pod_cidr, ns->pod_cidr) || strlen(p->public_key) != 44 ||
            strcmp(p->node, ns->node) == 0)
            die("peer", p->node);
        for (size_t j = 0; j < i; j++)
            if (drv_net_cidr_overlaps(p->pod_cidr, ns->peers[j].pod_cidr) ||
                strcmp(p->node, ns->peers[j].node) == 0)
                die("peers overlap", p->node);
    }
    for (size_t i = 0; i < ns->nservices; i++) {
        const drv_net_service_t *s = &ns->services[i];
        if (!s->headless && !drv_net_cidr_contains(ns->service_cidr, s->cluster_ip))
            die("service IP", s->name);
        for (size_t j = 0; j < s->nports; j++)
            if (s->ports[j].port == 0)
                die("service port 0", s->name);
        for (size_t j = 0; j < s->nendpoints; j++)
            if ((s->nports > 0 && s->endpoints[j].target_ports == NULL) ||
                !drv_net_cidr_contains(ns->cluster_cidr, s->endpoints[j].ip))
                die("endpoint", s->name);
        if (drv_netstate_service(ns, s->ns, s->name) == NULL)
            die("service lookup", s->name);
    }
    for (size_t i = 0; i < ns->npods; i++)
        if (ns->pods[i].labels == NULL || ns->pods[i].ports == NULL)
            die("pod", ns->pods[i].name);
    for (size_t i = 0; i < ns->npolicies; i++)
        if (ns->policies[i].object == NULL)
            die("policy", ns->policies[i].name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The reader the agent's protocol parser uses, with the desired state's limits. */
    drv_doc_limits_t lim = {.max_input = 4u << 20,
                            .max_scalar = 1u << 20,
                            .max_depth = 64,
                            .max_nodes = 1000000,
                            .max_docs = 1};
    drv_doc_list_t list = {0};
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_doc_parse((const char *)data, size, &lim, &list, &err) != DRV_OK || list.count != 1) {
        drv_doc_list_free(&list);
        return 0;
    }
    drv_netstate_t ns;
    drv_err_t rc = drv_netstate_parse(list.docs[0].root, "pi-1", &ns, &err);
    if (rc == DRV_OK) {
        if (list.docs[0].root != NULL && !cJSON_IsNull(list.docs[0].root))
            check(&ns);
        drv_netstate_free(&ns);
    } else {
        if (err.code != rc)
            die("error code not recorded", drv_error_msg(&err));
        if (rc != DRV_ERR_NOMEM && strncmp(drv_error_msg(&err), "network", 7) != 0)
            die("error does not name the field", drv_error_msg(&err));
        if (ns.present || ns.peers != NULL || ns.services != NULL || ns.pods != NULL)
            die("failed parse left output", drv_error_msg(&err));
    }
    drv_doc_list_free(&list);
    return 0;
}

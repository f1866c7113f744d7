/* libFuzzer target for the hub <-> agent protocol: the first byte picks a parser (topic,
 * desired state, status, heartbeat, online, event, logs request, logs chunk, signed desired state,
 * sealed Secret), the rest is the
 * payload. Every input either parses or fails with a message naming the message kind, and a
 * parsed desired state (its network section included) survives build -> encode -> parse
 * unchanged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/doc.h"
#include "drover/pki.h"
#include "drover/protocol.h"

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_protocol: %s: %s\n", what, detail);
    abort();
}

static void check_err(drv_err_t rc, const drv_error_t *err, const char *prefix)
{
    if (rc == DRV_OK)
        return;
    if (err->code != rc)
        die("error code not recorded", drv_error_msg(err));
    if (rc != DRV_ERR_NOMEM && strncmp(drv_error_msg(err), prefix, strlen(prefix)) != 0)
        die("error does not name the message", drv_error_msg(err));
}

static void desired(const char *p, size_t n)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_proto_desired_t d;
    drv_err_t rc = drv_proto_desired_parse(p, n, NULL, &d, &err);
    check_err(rc, &err, "desired state");
    if (rc != DRV_OK)
        return;
    /* with its network section: the round trip must keep it too */
    cJSON *b = drv_proto_desired_build_net(d.node, d.generation, d.pods, d.config_maps, d.secrets,
                                           d.network, &err);
    if (b == NULL)
        die("rebuild failed", drv_error_msg(&err));
    char *text = NULL;
    size_t len = 0;
    if (drv_proto_encode(b, DRV_PROTO_DESIRED, &text, &len, &err) == DRV_OK) {
        drv_proto_desired_t again;
        if (drv_proto_desired_parse(text, len, d.node, &again, &err) != DRV_OK)
            die("re-parse failed", drv_error_msg(&err));
        if (again.generation != d.generation || !cJSON_Compare(again.pods, d.pods, 1) ||
            !cJSON_Compare(again.config_maps, d.config_maps, 1) ||
            !cJSON_Compare(again.secrets, d.secrets, 1) ||
            ((again.network || d.network) && !cJSON_Compare(again.network, d.network, 1)))
            die("round trip changed the document", text);
        drv_proto_desired_free(&again);
        free(text);
    }
    cJSON_Delete(b);
    drv_proto_desired_free(&d);
}

/* One key pair for the whole run (the signed and sealed paths). */
static char *key_pem, *pub_pem;

static void keys(void)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (key_pem == NULL && (drv_pki_key_generate(&key_pem, &err) != DRV_OK ||
                            drv_pki_key_public(key_pem, &pub_pem, &err) != DRV_OK))
        die("key", drv_error_msg(&err));
}

/* A signed envelope: opens only with the right signature; what opens is parsed as usual. */
static void signed_desired(const char *p, size_t n)
{
    keys();
    drv_error_t err = DRV_ERROR_INIT;
    char *doc = NULL;
    size_t len = 0;
    drv_err_t rc = drv_proto_desired_open(p, n, pub_pem, &doc, &len, &err);
    check_err(rc, &err, "desired state");
    if (rc == DRV_OK) {
        desired(doc, len);
        free(doc);
    }
}

/* A Secret object: unsealing fails cleanly or opens; sealing what opened round-trips. */
static void sealed_secret(const char *p, size_t n)
{
    keys();
    drv_error_t err = DRV_ERROR_INIT;
    /* The hardened reader the agent uses (no duplicate keys). */
    drv_doc_limits_t lim = {.max_input = 1u << 20,
                            .max_scalar = 1u << 20,
                            .max_depth = 16,
                            .max_nodes = 10000,
                            .max_docs = 1};
    drv_doc_list_t list = {0};
    if (drv_doc_parse(p, n, &lim, &list, &err) != DRV_OK || list.count != 1 ||
        !cJSON_IsObject(list.docs[0].root)) {
        drv_doc_list_free(&list);
        return;
    }
    cJSON *s = list.docs[0].root;
    list.docs[0].root = NULL;
    drv_doc_list_free(&list);
    if (drv_proto_secret_unseal(s, "pi-1", key_pem, &err) == DRV_OK) {
        cJSON *copy = cJSON_Duplicate(s, 1);
        if (drv_proto_secret_seal(s, "pi-1", pub_pem, &err) == DRV_OK) {
            if (drv_proto_secret_unseal(s, "pi-1", key_pem, &err) != DRV_OK)
                die("sealed Secret does not open", drv_error_msg(&err));
            if (!cJSON_Compare(s, copy, 1))
                die("seal round trip changed the Secret", "");
        }
        cJSON_Delete(copy);
    }
    cJSON_Delete(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc;
    switch (data[0] % 10) {
    case 0: {
        char *topic = malloc(n + 1);
        if (topic == NULL)
            return 0;
        memcpy(topic, p, n);
        topic[n] = '\0';
        drv_proto_msg_t kind;
        char node[DRV_PROTO_NODE_MAX + 1], id[DRV_PROTO_ID_MAX + 1];
        rc = drv_proto_parse_topic(topic, &kind, node, id, &err);
        check_err(rc, &err, "topic");
        if (rc == DRV_OK) {
            char again[DRV_PROTO_TOPIC_MAX];
            if (drv_proto_topic(again, sizeof again, node, kind, id, &err) != DRV_OK ||
                strcmp(again, topic) != 0)
                die("topic does not round-trip", topic);
        }
        free(topic);
        break;
    }
    case 1:
        desired(p, n);
        break;
    case 2: {
        drv_proto_status_t s;
        rc = drv_proto_status_parse(p, n, NULL, &s, &err);
        check_err(rc, &err, "status report");
        if (rc == DRV_OK)
            drv_proto_status_free(&s);
        break;
    }
    case 3: {
        drv_proto_heartbeat_t hb;
        rc = drv_proto_heartbeat_parse(p, n, NULL, &hb, &err);
        check_err(rc, &err, "heartbeat");
        if (rc == DRV_OK) {
            char buf[512];
            drv_proto_heartbeat_t again;
            if (drv_proto_heartbeat_format(&hb, buf, sizeof buf, &err) != DRV_OK ||
                drv_proto_heartbeat_parse(buf, strlen(buf), hb.node, &again, &err) != DRV_OK ||
                again.seq != hb.seq || again.observed_generation != hb.observed_generation)
                die("heartbeat does not round-trip", drv_error_msg(&err));
        }
        break;
    }
    case 4: {
        drv_proto_online_t o;
        rc = drv_proto_online_parse(p, n, &o, &err);
        check_err(rc, &err, "online");
        break;
    }
    case 5: {
        cJSON *e = NULL;
        rc = drv_proto_event_parse(p, n, &e, &err);
        check_err(rc, &err, "event");
        cJSON_Delete(e);
        break;
    }
    case 6: {
        drv_proto_logs_req_t r;
        rc = drv_proto_logs_req_parse(p, n, &r, &err);
        check_err(rc, &err, "logs request");
        break;
    }
    case 8:
        signed_desired(p, n);
        break;
    case 9:
        sealed_secret(p, n);
        break;
    default: {
        drv_proto_logs_chunk_t c;
        rc = drv_proto_logs_chunk_parse(p, n, &c, &err);
        check_err(rc, &err, "logs chunk");
        if (rc == DRV_OK)
            drv_proto_logs_chunk_free(&c);
        break;
    }
    }
    return 0;
}

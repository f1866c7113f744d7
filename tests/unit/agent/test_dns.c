/* The node's DNS server without sockets: messages in and out of drv_dns_answer, parsed back
 * with the module's own parser, for every record kind; hostile packets; pods' resolv.conf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "net/dns.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((b) << 16) | ((c) << 8) | (d))

static drv_net_port_t web_ports[] = {{"http", IPPROTO_TCP, 80, 0}, {"", IPPROTO_TCP, 81, 0}};
static drv_net_port_t db_ports[] = {{"pg", IPPROTO_TCP, 5432, 0}};
static uint16_t db_tp0[] = {5432}, db_tp1[] = {5433}, db_tp2[] = {5432};
static drv_net_endpoint_t db_eps[] = {
    {IP(10, 42, 1, 5), "n1", "db-0", "db-0", true, true, false, db_tp0},
    {IP(10, 42, 2, 6), "n2", "db-1", "", true, true, false, db_tp1},
    {IP(10, 42, 2, 9), "n2", "db-2", "", false, false, false, db_tp2},
};
static drv_net_endpoint_t nr_eps[] = {
    {IP(10, 42, 3, 3), "n3", "nr-0", "", false, false, false, NULL},
};

static drv_netstate_t *make_ns(void)
{
    static drv_net_service_t svcs[3];
    static drv_net_pod_t pods[1];
    static drv_netstate_t ns;
    memset(&ns, 0, sizeof(ns));
    memset(svcs, 0, sizeof(svcs));
    memset(pods, 0, sizeof(pods));
    ns.present = true;
    ns.cluster_cidr = (drv_net_cidr_t){IP(10, 42, 0, 0), 16};
    ns.service_cidr = (drv_net_cidr_t){IP(10, 43, 0, 0), 16};
    memcpy(ns.cluster_domain, "cluster.local", 14);
    memcpy(svcs[0].ns, "default", 8);
    memcpy(svcs[0].name, "web", 4);
    svcs[0].cluster_ip = IP(10, 43, 0, 12);
    svcs[0].ports = web_ports;
    svcs[0].nports = 2;
    memcpy(svcs[1].ns, "prod", 5);
    memcpy(svcs[1].name, "db", 3);
    svcs[1].headless = true;
    svcs[1].ports = db_ports;
    svcs[1].nports = 1;
    svcs[1].endpoints = db_eps;
    svcs[1].nendpoints = 3;
    memcpy(svcs[2].ns, "prod", 5);
    memcpy(svcs[2].name, "nr", 3);
    svcs[2].headless = true;
    svcs[2].publish_not_ready = true;
    svcs[2].endpoints = nr_eps;
    svcs[2].nendpoints = 1;
    ns.services = svcs;
    ns.nservices = 3;
    pods[0].ip = IP(10, 42, 2, 7);
    memcpy(pods[0].ns, "default", 8);
    memcpy(pods[0].name, "web-abc", 8);
    ns.pods = pods;
    ns.npods = 1;
    return &ns;
}

static drv_dns_t *server(void)
{
    drv_dns_opts_t o = {.resolv_conf = ""};
    drv_dns_t *s = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_dns_open(NULL, 0, &o, &s, &err), DRV_OK);
    assert_int_equal(drv_dns_update(s, make_ns(), &err), DRV_OK);
    return s;
}

typedef struct reply {
    uint8_t pkt[65536];
    size_t len;
    drv_dns_msg_t m;
    drv_dns_rr_t rr[256];
    bool forward;
} reply_t;

static reply_t R;

/* Asks s for name/type (UDP unless tcp; EDNS size edns, 0 none) and parses the answer. */
static reply_t *ask(drv_dns_t *s, const char *name, uint16_t type, uint16_t edns, bool tcp)
{
    uint8_t q[600];
    size_t qlen = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_dns_build_query(0x1234, name, type, edns, q, sizeof(q), &qlen, &err),
                     DRV_OK);
    memset(&R, 0, sizeof(R));
    assert_int_equal(
        drv_dns_answer(s, q, qlen, tcp, R.pkt, sizeof(R.pkt), &R.len, &R.forward, &err), DRV_OK);
    if (R.forward)
        return &R;
    assert_int_equal(drv_dns_parse(R.pkt, R.len, R.rr, 256, &R.m, &err), DRV_OK);
    assert_int_equal(R.m.id, 0x1234);
    assert_true(R.m.flags & DRV_DNS_F_QR);
    return &R;
}

static int rcode(const reply_t *r)
{
    return r->m.flags & 15;
}

static uint32_t rr_a(const reply_t *r, size_t i)
{
    assert_int_equal(r->rr[i].type, DRV_DNS_T_A);
    assert_int_equal(r->rr[i].rdlen, 4);
    const uint8_t *p = r->pkt + r->rr[i].rdoff;
    return ((uint32_t)p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
}

static const char *rr_name(const reply_t *r, size_t i)
{
    static char t[DRV_DNS_NAME_TEXT];
    assert_int_equal(drv_dns_read_name(r->pkt, r->len, r->rr[i].name_off, t, sizeof(t), NULL, NULL),
                     DRV_OK);
    return t;
}

static const char *rr_target(const reply_t *r, size_t i, size_t skip)
{
    static char t[DRV_DNS_NAME_TEXT];
    assert_int_equal(
        drv_dns_read_name(r->pkt, r->len, r->rr[i].rdoff + skip, t, sizeof(t), NULL, NULL), DRV_OK);
    return t;
}

static void test_query_round_trip(void **state)
{
    (void)state;
    uint8_t q[512];
    size_t len = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_dns_build_query(7, "Web.Default.svc.cluster.local", DRV_DNS_T_A, 4096, q,
                                         sizeof(q), &len, &err),
                     DRV_OK);
    drv_dns_msg_t m;
    drv_dns_rr_t rr[4];
    assert_int_equal(drv_dns_parse(q, len, rr, 4, &m, &err), DRV_OK);
    assert_int_equal(m.id, 7);
    assert_true(m.has_q);
    assert_string_equal(m.qname, "web.default.svc.cluster.local");
    assert_int_equal(m.qwire[1], 'W'); /* the wire keeps the case */
    assert_int_equal(m.qtype, DRV_DNS_T_A);
    assert_true(m.edns);
    assert_int_equal(m.edns_size, 4096);
    assert_int_equal(m.nrrs, 1);
    /* Escapes: a dot inside a label and odd bytes never read as a separator. */
    uint8_t odd[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'a', '.', 0xff, 0, 0, 1, 0, 1};
    assert_int_equal(drv_dns_parse(odd, sizeof(odd), NULL, 0, &m, &err), DRV_OK);
    assert_string_equal(m.qname, "a\\046\\255");
}

static void test_service_a(void **state)
{
    (void)state;
    drv_dns_t *s = server();
    reply_t *r = ask(s, "web.default.svc.cluster.local", DRV_DNS_T_A, 0, false);
    assert_int_equal(rcode(r), DRV_DNS_NOERROR);
    assert_true(r->m.flags & DRV_DNS_F_AA);
    assert_int_equal(r->m.ancount, 1);
    assert_int_equal(rr_a(r, 0), IP(10, 43, 0, 12));
    assert_int_equal(r->rr[0].ttl, DRV_DNS_TTL);
    assert_string_equal(rr_name(r, 0), "web.default.svc.cluster.local");
    /* Case does not matter, and the answer keeps the asker's case. */
    r = ask(s, "WEB.default.SVC.Cluster.Local", DRV_DNS_T_A, 0, false);
    assert_int_equal(r->m.ancount, 1);
    assert_int_equal(rr_a(r, 0), IP(10, 43, 0, 12));
    assert_int_equal(r->pkt[r->rr[0].name_off], 0xC0); /* a pointer to the question */
    drv_dns_close(s);
}

static void test_headless(void **state)
{
    (void)state;
    drv_dns_t *s = server();
    reply_t *r = ask(s, "db.prod.svc.cluster.local", DRV_DNS_T_A, 0, false);
    assert_int_equal(r->m.ancount, 2); /* db-2 is not ready */
    assert_int_equal(rr_a(r, 0), IP(10, 42, 1, 5));
    assert_int_equal(rr_a(r, 1), IP(10, 42, 2, 6));
    r = ask(s, "db-0.db.prod.svc.cluster.local", DRV_DNS_T_A, 0, false);
    assert_int_equal(r->m.ancount, 1);
    assert_int_equal(rr_a(r, 0), IP(10, 42, 1, 5));
    r = ask(s, "10-42-2-6.db.prod.svc.cluster.local", DRV_DNS_T_A, 0, false);
    assert_int_equal(r->m.ancount, 1);
    r = ask(s, "10-42-2-9.db.prod.svc.cluster.local", DRV_DNS_T_A, 0, false);
    assert_int_equal(rcode(r), DRV_DNS_NXDOMAIN);
    /* publishNotReadyAddresses: not-ready endpoints too. */
    r = ask(s, "nr.prod.svc.cluster.local", DRV_DNS_T_A, 0, false);
    assert_int_equal(r->m.ancount, 1);
    assert_int_equal(rr_a(r, 0), IP(10, 42, 3, 3));
    drv_dns_close(s);
}

static void test_srv(void **state)
{
    (void)state;
    drv_dns_t *s = server();
    reply_t *r = ask(s, "_http._tcp.web.default.svc.cluster.local", DRV_DNS_T_SRV, 0, false);
    assert_int_equal(r->m.ancount, 1);
    assert_int_equal(r->rr[0].type, DRV_DNS_T_SRV);
    const uint8_t *p = r->pkt + r->rr[0].rdoff;
    assert_int_equal((p[4] << 8) | p[5], 80);
    assert_string_equal(rr_target(r, 0, 6), "web.default.svc.cluster.local");
    /* Headless: one per ready endpoint, its own port, addresses in the additional section. */
    r = ask(s, "_pg._tcp.db.prod.svc.cluster.local", DRV_DNS_T_SRV, 1232, false);
    assert_int_equal(r->m.ancount, 2);
    p = r->pkt + r->rr[1].rdoff;
    assert_int_equal((p[4] << 8) | p[5], 5433);
    assert_string_equal(rr_target(r, 0, 6), "db-0.db.prod.svc.cluster.local");
    assert_string_equal(rr_target(r, 1, 6), "10-42-2-6.db.prod.svc.cluster.local");
    assert_int_equal(r->m.arcount, 3); /* two A and the OPT */
    assert_int_equal(rr_a(r, 2), IP(10, 42, 1, 5));
    assert_string_equal(rr_name(r, 2), "db-0.db.prod.svc.cluster.local");
    assert_int_equal(r->rr[4].type, DRV_DNS_T_OPT);
    /* An unnamed port has no SRV name. */
    r = ask(s, "_udp._tcp.web.default.svc.cluster.local", DRV_DNS_T_SRV, 0, false);
    assert_int_equal(rcode(r), DRV_DNS_NXDOMAIN);
    drv_dns_close(s);
}

static void test_ptr_and_pods(void **state)
{
    (void)state;
    drv_dns_t *s = server();
    reply_t *r = ask(s, "12.0.43.10.in-addr.arpa", DRV_DNS_T_PTR, 0, false);
    assert_int_equal(r->m.ancount, 1);
    assert_int_equal(r->rr[0].type, DRV_DNS_T_PTR);
    assert_string_equal(rr_target(r, 0, 0), "web.default.svc.cluster.local");
    r = ask(s, "7.2.42.10.in-addr.arpa", DRV_DNS_T_PTR, 0, false);
    assert_string_equal(rr_target(r, 0, 0), "10-42-2-7.default.pod.cluster.local");
    r = ask(s, "5.1.42.10.in-addr.arpa", DRV_DNS_T_PTR, 0, false);
    assert_string_equal(rr_target(r, 0, 0), "db-0.db.prod.svc.cluster.local");
    /* Inside the cluster's ranges but unknown: NXDOMAIN here; outside: forwarded. */
    r = ask(s, "99.9.43.10.in-addr.arpa", DRV_DNS_T_PTR, 0, false);
    assert_int_equal(rcode(r), DRV_DNS_NXDOMAIN);
    r = ask(s, "8.8.8.8.in-addr.arpa", DRV_DNS_T_PTR, 0, false);
    assert_true(r->forward);
    r = ask(s, "10-42-2-7.default.pod.cluster.local", DRV_DNS_T_A, 0, false);
    assert_int_equal(rr_a(r, 0), IP(10, 42, 2, 7));
    r = ask(s, "10-42-2-7.prod.pod.cluster.local", DRV_DNS_T_A, 0, false);
    assert_int_equal(rcode(r), DRV_DNS_NXDOMAIN);
    drv_dns_close(s);
}

static void test_negative(void **state)
{
    (void)state;
    drv_dns_t *s = server();
    reply_t *r = ask(s, "nope.default.svc.cluster.local", DRV_DNS_T_A, 0, false);
    assert_int_equal(rcode(r), DRV_DNS_NXDOMAIN);
    assert_true(r->m.flags & DRV_DNS_F_AA);
    assert_int_equal(r->m.ancount, 0);
    assert_int_equal(r->m.nscount, 1);
    assert_int_equal(r->rr[0].type, DRV_DNS_T_SOA);
    assert_int_equal(r->rr[0].ttl, DRV_DNS_NEG_TTL);
    assert_string_equal(rr_name(r, 0), "cluster.local");
    assert_string_equal(rr_target(r, 0, 0), "ns.dns.cluster.local");
    /* AAAA of a known name: no error, no answer, the SOA. */
    r = ask(s, "web.default.svc.cluster.local", DRV_DNS_T_AAAA, 0, false);
    assert_int_equal(rcode(r), DRV_DNS_NOERROR);
    assert_int_equal(r->m.ancount, 0);
    assert_int_equal(r->m.nscount, 1);
    /* Names above a Service exist (empty), so search lists do not stop on them. */
    r = ask(s, "default.svc.cluster.local", DRV_DNS_T_A, 0, false);
    assert_int_equal(rcode(r), DRV_DNS_NOERROR);
    r = ask(s, "cluster.local", DRV_DNS_T_SOA, 0, false);
    assert_int_equal(r->m.ancount, 1);
    assert_int_equal(r->rr[0].type, DRV_DNS_T_SOA);
    /* Outside the domain: forwarded. */
    r = ask(s, "example.com", DRV_DNS_T_A, 0, false);
    assert_true(r->forward);
    /* A new state replaces the old names. */
    drv_netstate_t *ns = make_ns();
    ns->nservices = 1;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_dns_update(s, ns, &err), DRV_OK);
    r = ask(s, "db.prod.svc.cluster.local", DRV_DNS_T_A, 0, false);
    assert_int_equal(rcode(r), DRV_DNS_NXDOMAIN);
    drv_dns_close(s);
}

static void test_truncation(void **state)
{
    (void)state;
    static uint16_t tp[] = {80};
    static drv_net_endpoint_t eps[200];
    for (int i = 0; i < 200; i++)
        eps[i] = (drv_net_endpoint_t){IP(10, 42, 5, i + 1), "n", "", "", true, true, false, tp};
    drv_netstate_t *ns = make_ns();
    ns->services[1].endpoints = eps;
    ns->services[1].nendpoints = 200;
    drv_dns_opts_t o = {.resolv_conf = ""};
    drv_dns_t *s = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_dns_open(NULL, 0, &o, &s, &err), DRV_OK);
    assert_int_equal(drv_dns_update(s, ns, &err), DRV_OK);
    /* 200 A records (16 bytes each): over 512 and over 1232, not over TCP's 65535. */
    reply_t *r = ask(s, "db.prod.svc.cluster.local", DRV_DNS_T_A, 0, false);
    assert_true(r->m.flags & DRV_DNS_F_TC);
    assert_int_equal(r->m.ancount, 0);
    assert_true(r->len <= 512);
    r = ask(s, "db.prod.svc.cluster.local", DRV_DNS_T_A, 4096, false);
    assert_true(r->m.flags & DRV_DNS_F_TC);
    assert_true(r->m.edns);
    assert_true(r->len <= DRV_DNS_UDP_SIZE);
    r = ask(s, "db.prod.svc.cluster.local", DRV_DNS_T_A, 0, true);
    assert_false(r->m.flags & DRV_DNS_F_TC);
    assert_int_equal(r->m.ancount, 200);
    /* Fifty fit in 1232. */
    ns->services[1].nendpoints = 50;
    assert_int_equal(drv_dns_update(s, ns, &err), DRV_OK);
    r = ask(s, "db.prod.svc.cluster.local", DRV_DNS_T_A, 1232, false);
    assert_false(r->m.flags & DRV_DNS_F_TC);
    assert_int_equal(r->m.ancount, 50);
    assert_true(r->len <= 1232);
    drv_dns_close(s);
}

static void expect_bad(const uint8_t *p, size_t len)
{
    drv_dns_msg_t m;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_dns_parse(p, len, NULL, 0, &m, &err), DRV_ERR_PROTO);
    assert_true(err.msg[0]);
}

static void test_hostile(void **state)
{
    (void)state;
    /* A pointer to itself, and two pointing at each other. */
    uint8_t self[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1};
    expect_bad(self, sizeof(self));
    uint8_t loop[] = {0, 1, 0, 0, 0,    1,  0, 1, 0, 0, 0, 0, 1, 'a', 0xC0, 18,
                      0, 1, 0, 1, 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 5,   0,    0};
    expect_bad(loop, sizeof(loop));
    /* A forward pointer. */
    uint8_t fwd[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 16, 0, 1, 0, 1, 0};
    expect_bad(fwd, sizeof(fwd));
    /* Cut short everywhere. */
    uint8_t q[512];
    size_t len = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_dns_build_query(9, "a.b.example", DRV_DNS_T_A, 1232, q, sizeof(q), &len, &err), DRV_OK);
    for (size_t n = 0; n < len; n++)
        expect_bad(q, n);
    /* A label over the end, a reserved label type, a name over 255 bytes, two questions. */
    uint8_t over[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 40, 'a', 0};
    expect_bad(over, sizeof(over));
    uint8_t ext[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 0, 0, 1, 0, 1};
    expect_bad(ext, sizeof(ext));
    uint8_t longn[12 + 5 * 64 + 5] = {0, 1, 0, 0, 0, 1};
    for (int i = 0; i < 5; i++) {
        longn[12 + i * 64] = 63;
        memset(longn + 13 + i * 64, 'x', 63);
    }
    expect_bad(longn, sizeof(longn));
    uint8_t two[] = {0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1};
    expect_bad(two, sizeof(two));
    /* The server: FORMERR for junk with a header, nothing for a response or a runt. */
    drv_dns_t *s = server();
    uint8_t out[1024];
    size_t olen = 0;
    bool fwd_ = false;
    assert_int_equal(
        drv_dns_answer(s, self, sizeof(self), false, out, sizeof(out), &olen, &fwd_, &err), DRV_OK);
    assert_int_equal(out[3] & 15, DRV_DNS_FORMERR);
    assert_int_equal(out[0] << 8 | out[1], 1);
    uint8_t resp[12] = {0, 1, 0x80};
    assert_int_equal(
        drv_dns_answer(s, resp, sizeof(resp), false, out, sizeof(out), &olen, &fwd_, &err),
        DRV_ERR_PROTO);
    assert_int_equal(drv_dns_answer(s, resp, 5, false, out, sizeof(out), &olen, &fwd_, &err),
                     DRV_ERR_PROTO);
    /* Class CH (version.bind): refused. Opcode 2 (status): not implemented. */
    q[len - 11 - 1] = 3;
    assert_int_equal(drv_dns_answer(s, q, len, false, out, sizeof(out), &olen, &fwd_, &err),
                     DRV_OK);
    assert_int_equal(out[3] & 15, DRV_DNS_REFUSED);
    q[len - 11 - 1] = 1;
    q[2] = 0x10;
    assert_int_equal(drv_dns_answer(s, q, len, false, out, sizeof(out), &olen, &fwd_, &err),
                     DRV_OK);
    assert_int_equal(out[3] & 15, DRV_DNS_NOTIMP);
    /* A question whose name points into the header: the answer carries it uncompressed. */
    uint8_t cq[] = {0, 4, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, '5', 1, '1', 0xC0, 2, 0, 1, 0, 3};
    assert_int_equal(drv_dns_answer(s, cq, sizeof(cq), false, out, sizeof(out), &olen, &fwd_, &err),
                     DRV_OK);
    drv_dns_msg_t am;
    assert_int_equal(drv_dns_parse(out, olen, NULL, 0, &am, &err), DRV_OK);
    assert_string_equal(am.qname, "5.1.\\000");
    drv_dns_close(s);
}

static char *rconf(const char *policy, bool hostnet, const char *dc_json, const char *host,
                   drv_err_t want)
{
    cJSON *dc = dc_json ? cJSON_Parse(dc_json) : NULL;
    drv_buf_t b = DRV_BUF_INIT(65536);
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r = drv_dns_resolv_conf(policy, hostnet, "team", "cluster.local", "10.42.1.1", dc,
                                      host, &b, &err);
    cJSON_Delete(dc);
    assert_int_equal(r, want);
    if (r != DRV_OK) {
        assert_non_null(strstr(err.msg, "spec.dnsConfig"));
        drv_buf_free(&b);
        return NULL;
    }
    return drv_buf_steal(&b, NULL);
}

static const char *HOST = "# host\nnameserver 192.168.1.1\nnameserver 192.168.1.2\n"
                          "search lan. corp.example\noptions edns0 timeout:2\n";

static void test_resolv_conf(void **state)
{
    (void)state;
    char *t = rconf("ClusterFirst", false, NULL, HOST, DRV_OK);
    assert_string_equal(t, "nameserver 10.42.1.1\n"
                           "search team.svc.cluster.local svc.cluster.local cluster.local lan "
                           "corp.example\noptions ndots:5\n");
    free(t);
    /* hostNetwork with ClusterFirst: the host's; with ClusterFirstWithHostNet: the cluster's. */
    t = rconf("ClusterFirst", true, NULL, HOST, DRV_OK);
    assert_string_equal(t, "nameserver 192.168.1.1\nnameserver 192.168.1.2\n"
                           "search lan corp.example\noptions edns0 timeout:2\n");
    free(t);
    t = rconf("ClusterFirstWithHostNet", true, NULL, HOST, DRV_OK);
    assert_non_null(strstr(t, "nameserver 10.42.1.1\n"));
    free(t);
    t = rconf("Default", false, NULL, HOST, DRV_OK);
    assert_string_equal(t, "nameserver 192.168.1.1\nnameserver 192.168.1.2\n"
                           "search lan corp.example\noptions edns0 timeout:2\n");
    free(t);
    t = rconf("None", false,
              "{\"nameservers\":[\"1.1.1.1\"],\"searches\":[\"a.example\"],"
              "\"options\":[{\"name\":\"ndots\",\"value\":\"2\"},{\"name\":\"rotate\"}]}",
              HOST, DRV_OK);
    assert_string_equal(t, "nameserver 1.1.1.1\nsearch a.example\noptions ndots:2 rotate\n");
    free(t);
    /* dnsConfig on top of ClusterFirst: appended, duplicates dropped, options overridden. */
    t = rconf("", false,
              "{\"nameservers\":[\"10.42.1.1\",\"9.9.9.9\"],\"searches\":[\"lan\",\"x.example\"],"
              "\"options\":[{\"name\":\"ndots\",\"value\":\"1\"}]}",
              HOST, DRV_OK);
    assert_string_equal(t, "nameserver 10.42.1.1\nnameserver 9.9.9.9\n"
                           "search team.svc.cluster.local svc.cluster.local cluster.local lan "
                           "corp.example x.example\noptions ndots:1\n");
    free(t);
    /* Errors name the field. */
    assert_null(rconf("None", false, NULL, HOST, DRV_ERR_INVALID));
    assert_null(rconf("None", false,
                      "{\"nameservers\":[\"1.1.1.1\",\"2.2.2.2\",\"3.3.3.3\","
                      "\"4.4.4.4\"]}",
                      HOST, DRV_ERR_INVALID));
    assert_null(
        rconf("Default", false, "{\"nameservers\":[\"not-an-ip\"]}", HOST, DRV_ERR_INVALID));
    assert_null(
        rconf("Default", false, "{\"options\":[{\"value\":\"x\"}]}", HOST, DRV_ERR_INVALID));
    drv_buf_t b = DRV_BUF_INIT(100);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_dns_resolv_conf("Bogus", false, "a", "cluster.local", "10.0.0.1", NULL, "", &b, &err),
        DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "spec.dnsPolicy"));
    /* No cluster DNS: ClusterFirst falls back to the host's file. */
    assert_int_equal(
        drv_dns_resolv_conf("ClusterFirst", false, "a", "cluster.local", "", NULL, HOST, &b, &err),
        DRV_OK);
    assert_non_null(strstr(drv_buf_str(&b), "nameserver 192.168.1.1"));
    drv_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_round_trip), cmocka_unit_test(test_service_a),
        cmocka_unit_test(test_headless),         cmocka_unit_test(test_srv),
        cmocka_unit_test(test_ptr_and_pods),     cmocka_unit_test(test_negative),
        cmocka_unit_test(test_truncation),       cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_resolv_conf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

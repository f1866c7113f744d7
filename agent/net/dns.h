/* The node's DNS server: answers the cluster's names (Services, their endpoints, pods, reverse
 * names) from the network section of the desired state, so names resolve offline, and forwards
 * every other name to the host's resolvers. Non-blocking, on the agent's one event loop. Also
 * the resolv.conf a pod gets for its dnsPolicy. */
#ifndef DROVER_AGENT_DNS_H
#define DROVER_AGENT_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "drover/buf.h"
#include "drover/error.h"
#include "drover/netstate.h"

#define DRV_DNS_UDP_SIZE 1232   /* what we advertise and the most we send over UDP */
#define DRV_DNS_TTL 5           /* Service, endpoint and pod records */
#define DRV_DNS_NEG_TTL 30      /* the SOA's TTL and minimum: how long NXDOMAIN is cached */
#define DRV_DNS_NAME_TEXT 1100  /* a name as text: 255 wire bytes, every byte escaped "\DDD" */
#define DRV_DNS_TCP_CONNS 16    /* TCP clients served at once */
#define DRV_DNS_TIMEOUT_MS 5000 /* a forwarded query, and a TCP client's query */

enum {
    DRV_DNS_T_A = 1,
    DRV_DNS_T_NS = 2,
    DRV_DNS_T_SOA = 6,
    DRV_DNS_T_PTR = 12,
    DRV_DNS_T_AAAA = 28,
    DRV_DNS_T_SRV = 33,
    DRV_DNS_T_OPT = 41,
    DRV_DNS_T_ANY = 255,
};
enum {
    DRV_DNS_NOERROR = 0,
    DRV_DNS_FORMERR = 1,
    DRV_DNS_SERVFAIL = 2,
    DRV_DNS_NXDOMAIN = 3,
    DRV_DNS_NOTIMP = 4,
    DRV_DNS_REFUSED = 5,
};
/* Header flag bits. */
#define DRV_DNS_F_QR 0x8000
#define DRV_DNS_F_AA 0x0400
#define DRV_DNS_F_TC 0x0200
#define DRV_DNS_F_RD 0x0100
#define DRV_DNS_F_RA 0x0080

/* A resource record of a parsed message: where its parts are in the packet. */
typedef struct drv_dns_rr {
    uint16_t name_off; /* read it with drv_dns_read_name */
    uint16_t type, cls;
    uint32_t ttl;
    uint16_t rdoff, rdlen; /* rdata, inside the packet (checked) */
} drv_dns_rr_t;

typedef struct drv_dns_msg {
    uint16_t id, flags; /* flags: QR, opcode, AA, TC, RD, RA, rcode (low 4 bits) */
    uint16_t qdcount, ancount, nscount, arcount;
    bool has_q;                    /* qdcount 1 (more than one is refused) */
    uint8_t qwire[255];            /* the question's name as sent, uncompressed */
    uint16_t qwire_len;            /* including the root label */
    char qname[DRV_DNS_NAME_TEXT]; /* lower case, "\DDD" escapes, no final dot; "" root */
    uint16_t qtype, qclass;
    bool edns;          /* an OPT record was present */
    uint16_t edns_size; /* its UDP payload size (512 if smaller) */
    uint8_t edns_version;
    size_t nrrs; /* answer, authority, additional records stored */
} drv_dns_msg_t;

/* Parses a DNS message of len bytes: header, at most one question, then every record of the
 * three sections (each name checked, compression pointers only backwards, rdata inside the
 * packet); the first max_rrs records are stored in rrs (may be NULL with max_rrs 0). One OPT
 * at most, with the root name. DRV_ERR_PROTO on anything malformed, saying what. */
DRV_API DRV_NODISCARD drv_err_t drv_dns_parse(const uint8_t *pkt, size_t len, drv_dns_rr_t *rrs,
                                              size_t max_rrs, drv_dns_msg_t *out, drv_error_t *err);
/* The name at off as text (lower case, escaped, no final dot) into text[textsz]; *next (may be
 * NULL) the offset after the name where it starts. */
DRV_API DRV_NODISCARD drv_err_t drv_dns_read_name(const uint8_t *pkt, size_t len, size_t off,
                                                  char *text, size_t textsz, size_t *next,
                                                  drv_error_t *err);
/* A query for name (dotted text, no escapes) with RD set and, with edns_size > 0, an OPT
 * record: into out[cap], *len its size. */
DRV_API DRV_NODISCARD drv_err_t drv_dns_build_query(uint16_t id, const char *name, uint16_t type,
                                                    uint16_t edns_size, uint8_t *out, size_t cap,
                                                    size_t *len, drv_error_t *err);

typedef struct drv_dns drv_dns_t;

typedef struct drv_dns_opts {
    const char *resolv_conf;    /* the host's resolvers: NULL /etc/resolv.conf, "" none */
    const char *cluster_domain; /* until the first update brings one; NULL "cluster.local" */
    unsigned max_pending;       /* forwarded queries in flight; 0: 128 */
    unsigned timeout_ms;        /* 0: DRV_DNS_TIMEOUT_MS */
} drv_dns_opts_t;

/* A server on bind_ip:port (UDP and TCP, non-blocking). bind_ip NULL opens no socket: a
 * server that only answers through drv_dns_answer (tests, fuzzing). The host's resolvers are
 * read once here; a nameserver that is this server itself is skipped. */
DRV_API DRV_NODISCARD drv_err_t drv_dns_open(const char *bind_ip, uint16_t port,
                                             const drv_dns_opts_t *opts, drv_dns_t **out,
                                             drv_error_t *err);
/* Replaces the records with those of ns (an index is built here, so a query is a lookup). On
 * failure the previous records stay. ns is not kept. */
DRV_API DRV_NODISCARD drv_err_t drv_dns_update(drv_dns_t *s, const drv_netstate_t *ns,
                                               drv_error_t *err);
/* The fds to watch for readability now (listen sockets, TCP clients, upstream sockets): at
 * most max into fds, returns how many there are. The set changes after handle_fd and tick. */
DRV_API size_t drv_dns_fds(const drv_dns_t *s, int *fds, size_t max);
/* Serves what is readable on fd (one of drv_dns_fds). Never blocks. */
DRV_API void drv_dns_handle_fd(drv_dns_t *s, int fd, long long now_ms);
/* Expires forwarded queries (SERVFAIL to their clients) and slow TCP clients. */
DRV_API void drv_dns_tick(drv_dns_t *s, long long now_ms);
/* Milliseconds until the next deadline, -1 when there is none. */
DRV_API int drv_dns_next_wakeup(const drv_dns_t *s, long long now_ms);
DRV_API void drv_dns_close(drv_dns_t *s);

/* The answer to the query q[qlen] from the records, for a client that takes limit bytes
 * (UDP: 512 or its EDNS size up to DRV_DNS_UDP_SIZE; TCP: 65535): into out[cap], *outlen.
 * *forward is set (and nothing written) for a name outside the cluster's zones. A message that
 * gets no answer at all (a response, shorter than a header) is DRV_ERR_PROTO. */
DRV_API DRV_NODISCARD drv_err_t drv_dns_answer(drv_dns_t *s, const uint8_t *q, size_t qlen,
                                               bool tcp, uint8_t *out, size_t cap, size_t *outlen,
                                               bool *forward, drv_error_t *err);

/* The /etc/resolv.conf of a pod as the kubelet makes it: policy "" or "ClusterFirst" (the
 * host's file for a hostNetwork pod), "ClusterFirstWithHostNet", "Default" (the host's file),
 * "None" (dnsConfig only); dnsConfig (spec.dnsConfig, may be NULL) merged on top. dns_ip
 * NULL or "" (no cluster DNS) makes the cluster policies fall back to Default. host_text is
 * the host's resolv.conf. Errors name the field (spec.dnsConfig.nameservers[3]). */
DRV_API DRV_NODISCARD drv_err_t drv_dns_resolv_conf(const char *policy, bool host_network,
                                                    const char *pod_ns, const char *domain,
                                                    const char *dns_ip, const cJSON *dns_config,
                                                    const char *host_text, drv_buf_t *out,
                                                    drv_error_t *err);

#endif

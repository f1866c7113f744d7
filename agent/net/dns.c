/* The node's DNS server (see dns.h): an RFC 1035 message parser for hostile input, an encoder
 * with name compression, an index of the cluster's records built at update time, forwarding
 * of other names to the host's resolvers over UDP, and the pods' resolv.conf. */
#include "net/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/log.h"
#include "drover/map.h"

#define HDR 12
#define MAX_HOPS 64         /* compression pointers followed in one name */
#define MAX_UPSTREAMS 3     /* like the resolver's MAXNS */
#define TCP_QUERY_MAX 1024  /* a query over TCP larger than this is closed on */
#define MAX_RECORDS 4000000 /* names in the index (the netstate's own maxima bound it) */
#define ARENA_CHUNK 65536

/* ---- wire reading ---- */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Reads the name at off. wire[255] (may be NULL) gets it uncompressed, text[textsz] (may be
 * NULL) as text; *next the offset after the name in place. Pointers must point before the
 * previous target (so no loop is possible) and the name stays within 255 bytes. */
static drv_err_t name_read(const uint8_t *p, size_t len, size_t off, uint8_t *wire, size_t *wlen,
                           char *text, size_t textsz, size_t *next, drv_error_t *err)
{
    size_t pos = off, end = 0, wl = 0, tl = 0, limit = off;
    int hops = 0;
    bool jumped = false;
    for (;;) {
        if (pos >= len)
            return drv_error_set(err, DRV_ERR_PROTO, 0, "name at %zu runs past the end", off);
        uint8_t c = p[pos];
        if ((c & 0xC0) == 0xC0) {
            if (pos + 1 >= len)
                return drv_error_set(err, DRV_ERR_PROTO, 0, "name at %zu: pointer cut short", off);
            size_t t = ((size_t)(c & 0x3F) << 8) | p[pos + 1];
            if (t >= limit || ++hops > MAX_HOPS)
                return drv_error_set(err, DRV_ERR_PROTO, 0,
                                     "name at %zu: compression pointer to %zu does not point "
                                     "backwards",
                                     off, t);
            if (!jumped)
                end = pos + 2;
            jumped = true;
            limit = t;
            pos = t;
            continue;
        }
        if (c & 0xC0)
            return drv_error_set(err, DRV_ERR_PROTO, 0, "name at %zu: label type 0x%02x", off,
                                 c & 0xC0);
        if (c == 0) {
            if (wire)
                wire[wl] = 0;
            wl++;
            if (!jumped)
                end = pos + 1;
            break;
        }
        if (pos + 1 + c > len)
            return drv_error_set(err, DRV_ERR_PROTO, 0, "name at %zu: label runs past the end",
                                 off);
        if (wl + 1 + c + 1 > 255)
            return drv_error_set(err, DRV_ERR_PROTO, 0, "name at %zu: longer than 255 bytes", off);
        if (wire)
            memcpy(wire + wl, p + pos, 1 + (size_t)c);
        wl += 1 + (size_t)c;
        if (text) {
            if (tl > 0 && tl + 1 < textsz)
                text[tl++] = '.';
            for (size_t i = 0; i < c; i++) {
                uint8_t b = p[pos + 1 + i];
                if (tl + 5 > textsz)
                    return drv_error_set(err, DRV_ERR_TOOBIG, 0, "name at %zu: too long", off);
                if (b >= 'A' && b <= 'Z')
                    text[tl++] = (char)(b - 'A' + 'a');
                else if (b > 0x20 && b < 0x7f && b != '.' && b != '\\')
                    text[tl++] = (char)b;
                else {
                    text[tl++] = '\\';
                    text[tl++] = (char)('0' + b / 100);
                    text[tl++] = (char)('0' + b / 10 % 10);
                    text[tl++] = (char)('0' + b % 10);
                }
            }
        }
        pos += 1 + (size_t)c;
    }
    if (text) {
        if (tl >= textsz)
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "name at %zu: too long", off);
        text[tl] = '\0';
    }
    if (wlen)
        *wlen = wl;
    if (next)
        *next = end;
    return DRV_OK;
}

drv_err_t drv_dns_read_name(const uint8_t *pkt, size_t len, size_t off, char *text, size_t textsz,
                            size_t *next, drv_error_t *err)
{
    if (!text || textsz == 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "no room for the name");
    return name_read(pkt, len, off, NULL, NULL, text, textsz, next, err);
}

drv_err_t drv_dns_parse(const uint8_t *pkt, size_t len, drv_dns_rr_t *rrs, size_t max_rrs,
                        drv_dns_msg_t *out, drv_error_t *err)
{
    if (len < HDR)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "message of %zu bytes: shorter than a header",
                             len);
    if (len > 65535)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "message of %zu bytes: too long", len);
    drv_dns_msg_t m;
    memset(&m, 0, sizeof(m));
    m.id = rd16(pkt);
    m.flags = rd16(pkt + 2);
    m.qdcount = rd16(pkt + 4);
    m.ancount = rd16(pkt + 6);
    m.nscount = rd16(pkt + 8);
    m.arcount = rd16(pkt + 10);
    if (m.qdcount > 1)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "%u questions: at most one", m.qdcount);
    size_t pos = HDR;
    if (m.qdcount == 1) {
        size_t wl = 0;
        drv_err_t r = name_read(pkt, len, pos, m.qwire, &wl, m.qname, sizeof(m.qname), &pos, err);
        if (r != DRV_OK)
            return drv_error_wrap(err, "question");
        if (pos + 4 > len)
            return drv_error_set(err, DRV_ERR_PROTO, 0, "question: type and class cut short");
        m.qwire_len = (uint16_t)wl;
        m.qtype = rd16(pkt + pos);
        m.qclass = rd16(pkt + pos + 2);
        pos += 4;
        m.has_q = true;
    }
    size_t total = (size_t)m.ancount + m.nscount + m.arcount;
    for (size_t i = 0; i < total; i++) {
        size_t noff = pos;
        char text[DRV_DNS_NAME_TEXT];
        drv_err_t r = name_read(pkt, len, pos, NULL, NULL, text, sizeof(text), &pos, err);
        if (r != DRV_OK)
            return drv_error_wrap(err, "record %zu", i);
        if (pos + 10 > len)
            return drv_error_set(err, DRV_ERR_PROTO, 0, "record %zu: cut short", i);
        drv_dns_rr_t rr = {(uint16_t)noff,      rd16(pkt + pos),      rd16(pkt + pos + 2),
                           rd32(pkt + pos + 4), (uint16_t)(pos + 10), rd16(pkt + pos + 8)};
        pos += 10;
        if (pos + rr.rdlen > len)
            return drv_error_set(err, DRV_ERR_PROTO, 0, "record %zu: rdata runs past the end", i);
        pos += rr.rdlen;
        if (rr.type == DRV_DNS_T_OPT) {
            if (i < (size_t)m.ancount + m.nscount || m.edns || text[0])
                return drv_error_set(err, DRV_ERR_PROTO, 0,
                                     "record %zu: OPT not the one root record of the additional "
                                     "section",
                                     i);
            m.edns = true;
            m.edns_size = rr.cls < 512 ? 512 : rr.cls;
            m.edns_version = (uint8_t)(rr.ttl >> 16);
        }
        if (m.nrrs < max_rrs && rrs)
            rrs[m.nrrs++] = rr;
    }
    *out = m;
    return DRV_OK;
}

/* ---- wire writing ---- */

typedef struct comp {
    uint16_t off;   /* where the name's inline labels start */
    uint16_t inl;   /* how many text bytes of it were written inline */
    char name[256]; /* its text */
} comp_t;

typedef struct enc {
    uint8_t *p;
    size_t len, cap;
    bool over;
    comp_t comp[16];
    size_t ncomp;
} enc_t;

static void put(enc_t *e, const void *d, size_t n)
{
    if (e->over || n > e->cap - e->len) {
        e->over = true;
        return;
    }
    memcpy(e->p + e->len, d, n);
    e->len += n;
}

static void put16(enc_t *e, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(e, b, 2);
}

static void put32(enc_t *e, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(e, b, 4);
}

/* Writes name (our own dotted text: labels of 1-63 bytes, no escapes), compressed against
 * the names written before: a suffix at a label boundary of an earlier name that was written
 * inline sits at the same distance from that name's start in the packet as in its text. */
static void put_name(enc_t *e, const char *name)
{
    size_t n = strlen(name);
    if (n > 253) {
        e->over = true;
        return;
    }
    size_t start = e->len, inl = n;
    for (size_t i = 0; i < n;) {
        const char *suf = name + i;
        size_t sl = n - i;
        for (size_t k = 0; k < e->ncomp; k++) {
            const comp_t *c = &e->comp[k];
            size_t cl = strlen(c->name);
            if (cl < sl)
                continue;
            size_t at = cl - sl;
            if (at >= c->inl || c->off + at >= 0x3FFF || (at > 0 && c->name[at - 1] != '.') ||
                strcasecmp(c->name + at, suf) != 0)
                continue;
            put16(e, (uint16_t)(0xC000 | (c->off + at)));
            inl = i;
            goto done;
        }
        const char *dot = strchr(suf, '.');
        size_t ll = dot ? (size_t)(dot - suf) : sl;
        if (ll == 0 || ll > 63) {
            e->over = true;
            return;
        }
        uint8_t l = (uint8_t)ll;
        put(e, &l, 1);
        put(e, suf, ll);
        i += ll + (dot ? 1 : 0);
    }
    put(e, "", 1);
done:
    if (!e->over && e->ncomp < 16 && start < 0x3FFF && n > 0) {
        comp_t *c = &e->comp[e->ncomp++];
        memcpy(c->name, name, n + 1);
        c->off = (uint16_t)start;
        c->inl = (uint16_t)inl; /* the text written inline, before a pointer took over */
    }
}

static void put_header(enc_t *e, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns,
                       uint16_t ar)
{
    put16(e, id);
    put16(e, flags);
    put16(e, qd);
    put16(e, an);
    put16(e, ns);
    put16(e, ar);
}

static void put_opt(enc_t *e, uint8_t ext_rcode)
{
    put(e, "", 1);
    put16(e, DRV_DNS_T_OPT);
    put16(e, DRV_DNS_UDP_SIZE);
    put32(e, (uint32_t)ext_rcode << 24);
    put16(e, 0);
}

drv_err_t drv_dns_build_query(uint16_t id, const char *name, uint16_t type, uint16_t edns_size,
                              uint8_t *out, size_t cap, size_t *len, drv_error_t *err)
{
    enc_t e = {.p = out, .cap = cap};
    put_header(&e, id, DRV_DNS_F_RD, 1, 0, 0, edns_size ? 1 : 0);
    if (name[0])
        put_name(&e, name);
    else
        put(&e, "", 1);
    put16(&e, type);
    put16(&e, 1);
    if (edns_size) {
        put(&e, "", 1);
        put16(&e, DRV_DNS_T_OPT);
        put16(&e, edns_size);
        put32(&e, 0);
        put16(&e, 0);
    }
    if (e.over)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "query for %s: bad name or no room", name);
    *len = e.len;
    return DRV_OK;
}

/* ---- the records ---- */

typedef struct rec {
    struct rec *next;
    uint16_t type;
    uint16_t port;      /* SRV */
    uint32_t a;         /* A */
    const char *target; /* SRV, PTR */
} rec_t;

typedef struct node {
    const char *name;
    rec_t *head, *tail;
} node_t;

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} chunk_t;

/* Everything of one generation of records: freed at once when the next replaces it. */
typedef struct zone {
    chunk_t *chunks;
    drv_map_t names;
    char domain[DRV_NET_DOMAIN_MAX + 1];
    drv_net_cidr_t svc_cidr, pod_cidr; /* reverse zones answered here (prefix 0: none) */
    uint32_t serial;
} zone_t;

static void *zalloc(zone_t *z, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!z->chunks || z->chunks->cap - z->chunks->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        chunk_t *c = malloc(sizeof(chunk_t) + cap);
        if (!c)
            return NULL;
        c->next = z->chunks;
        c->used = 0;
        c->cap = cap;
        z->chunks = c;
    }
    void *p = z->chunks->data + z->chunks->used;
    z->chunks->used += n;
    memset(p, 0, n);
    return p;
}

static void zone_free(zone_t *z)
{
    drv_map_free(&z->names);
    while (z->chunks) {
        chunk_t *c = z->chunks;
        z->chunks = c->next;
        free(c);
    }
}

static const char *zstr(zone_t *z, const char *s)
{
    size_t n = strlen(s);
    char *d = zalloc(z, n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* The node of name (lower case already), created with every missing ancestor down to the
 * domain (so "svc.cluster.local" exists, answering NOERROR without records). */
static drv_err_t node_get(zone_t *z, const char *name, node_t **out)
{
    node_t *n = drv_map_get(&z->names, name);
    if (n) {
        *out = n;
        return DRV_OK;
    }
    n = zalloc(z, sizeof(*n));
    if (!n || !(n->name = zstr(z, name)))
        return DRV_ERR_NOMEM;
    drv_err_t r = drv_map_put(&z->names, n->name, n);
    if (r != DRV_OK)
        return r;
    *out = n;
    size_t dl = strlen(z->domain), nl = strlen(name);
    const char *dot = strchr(name, '.');
    if (dot && nl > dl && strcmp(name + nl - dl, z->domain) == 0) {
        node_t *parent;
        return node_get(z, dot + 1, &parent);
    }
    return DRV_OK;
}

static drv_err_t rec_add(zone_t *z, const char *name, uint16_t type, uint32_t a, uint16_t port,
                         const char *target)
{
    node_t *n;
    drv_err_t r = node_get(z, name, &n);
    if (r != DRV_OK)
        return r;
    if (type == DRV_DNS_T_PTR)
        for (rec_t *x = n->head; x; x = x->next)
            if (x->type == DRV_DNS_T_PTR)
                return DRV_OK; /* the first (most specific) name of an address wins */
    rec_t *x = zalloc(z, sizeof(*x));
    if (!x)
        return DRV_ERR_NOMEM;
    x->type = type;
    x->a = a;
    x->port = port;
    if (target && !(x->target = zstr(z, target)))
        return DRV_ERR_NOMEM;
    if (n->tail)
        n->tail->next = x;
    else
        n->head = x;
    n->tail = x;
    return DRV_OK;
}

static void ip_text(uint32_t ip, char out[16], char sep)
{
    int n = snprintf(out, 16, "%u%c%u%c%u%c%u", ip >> 24, sep, (ip >> 16) & 255, sep,
                     (ip >> 8) & 255, sep, ip & 255);
    if (n < 0 || n >= 16)
        out[0] = '\0';
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* A (lower case) name from a format into buf[DRV_DNS_NAME_TEXT]. */
static drv_err_t zname(char *buf, const char *fmt, ...) DRV_PRINTF(2, 3);
static drv_err_t zname(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    drv_err_t r = drv_vfmt(buf, DRV_DNS_NAME_TEXT, fmt, ap);
    va_end(ap);
    if (r == DRV_OK && strlen(buf) > 253)
        r = DRV_ERR_TOOBIG;
    if (r == DRV_OK)
        lower(buf);
    return r;
}

static drv_err_t ptr_add(zone_t *z, uint32_t ip, const char *target)
{
    char rev[16], name[DRV_DNS_NAME_TEXT];
    ip_text(((ip & 255) << 24) | ((ip >> 8 & 255) << 16) | ((ip >> 16 & 255) << 8) | (ip >> 24),
            rev, '.');
    drv_err_t r = zname(name, "%s.in-addr.arpa", rev);
    return r != DRV_OK ? r : rec_add(z, name, DRV_DNS_T_PTR, 0, 0, target);
}

static const char *proto_name(uint8_t p)
{
    return p == IPPROTO_UDP ? "udp" : p == IPPROTO_SCTP ? "sctp" : "tcp";
}

static drv_err_t zone_service(zone_t *z, const drv_net_service_t *sv)
{
    char base[DRV_DNS_NAME_TEXT], name[DRV_DNS_NAME_TEXT], target[DRV_DNS_NAME_TEXT];
    drv_err_t r = zname(base, "%s.%s.svc.%s", sv->name, sv->ns, z->domain);
    if (r != DRV_OK)
        return r;
    node_t *n;
    if ((r = node_get(z, base, &n)) != DRV_OK)
        return r;
    if (!sv->headless) {
        if ((r = rec_add(z, base, DRV_DNS_T_A, sv->cluster_ip, 0, NULL)) != DRV_OK ||
            (r = ptr_add(z, sv->cluster_ip, base)) != DRV_OK)
            return r;
        for (size_t i = 0; i < sv->nports; i++) {
            const drv_net_port_t *p = &sv->ports[i];
            if (!p->name[0])
                continue;
            if ((r = zname(name, "_%s._%s.%s", p->name, proto_name(p->protocol), base)) != DRV_OK ||
                (r = rec_add(z, name, DRV_DNS_T_SRV, 0, p->port, base)) != DRV_OK)
                return r;
        }
        return DRV_OK;
    }
    /* Headless: the endpoints themselves, each under its hostname or its dashed address. */
    for (size_t e = 0; e < sv->nendpoints; e++) {
        const drv_net_endpoint_t *ep = &sv->endpoints[e];
        if (!ep->ready && !sv->publish_not_ready)
            continue;
        char dashed[16];
        ip_text(ep->ip, dashed, '-');
        if ((r = zname(target, "%s.%s", ep->hostname[0] ? ep->hostname : dashed, base)) != DRV_OK ||
            (r = rec_add(z, base, DRV_DNS_T_A, ep->ip, 0, NULL)) != DRV_OK ||
            (r = rec_add(z, target, DRV_DNS_T_A, ep->ip, 0, NULL)) != DRV_OK)
            return r;
        if (ep->hostname[0] && (r = ptr_add(z, ep->ip, target)) != DRV_OK)
            return r;
        for (size_t i = 0; i < sv->nports; i++) {
            const drv_net_port_t *p = &sv->ports[i];
            uint16_t port = ep->target_ports ? ep->target_ports[i] : 0;
            if (!p->name[0] || port == 0)
                continue;
            if ((r = zname(name, "_%s._%s.%s", p->name, proto_name(p->protocol), base)) != DRV_OK ||
                (r = rec_add(z, name, DRV_DNS_T_SRV, 0, port, target)) != DRV_OK)
                return r;
        }
    }
    return DRV_OK;
}

static drv_err_t zone_build(zone_t *z, const drv_netstate_t *ns)
{
    for (size_t i = 0; i < ns->nservices; i++) {
        drv_err_t r = zone_service(z, &ns->services[i]);
        if (r != DRV_OK)
            return r;
    }
    char name[DRV_DNS_NAME_TEXT], dashed[16];
    for (size_t i = 0; i < ns->npods; i++) {
        const drv_net_pod_t *p = &ns->pods[i];
        ip_text(p->ip, dashed, '-');
        drv_err_t r = zname(name, "%s.%s.pod.%s", dashed, p->ns, z->domain);
        if (r == DRV_OK)
            r = rec_add(z, name, DRV_DNS_T_A, p->ip, 0, NULL);
        if (r == DRV_OK)
            r = ptr_add(z, p->ip, name);
        if (r != DRV_OK)
            return r;
    }
    return DRV_OK;
}

/* ---- the server ---- */

typedef struct tcpc {
    int fd; /* -1: free */
    uint32_t gen;
    long long deadline;
    bool waiting; /* its query was forwarded */
    size_t len;
    uint8_t buf[2 + TCP_QUERY_MAX];
} tcpc_t;

typedef struct pend {
    int fd; /* the upstream socket, -1: free */
    uint16_t id, client_id;
    uint16_t qtype, qclass, qwire_len;
    uint8_t qwire[255];
    long long deadline;
    unsigned tried; /* upstreams tried */
    unsigned up;    /* the upstream asked now */
    size_t limit;   /* what the client takes */
    bool client_edns;
    int tcp; /* TCP client index, -1 for UDP */
    uint32_t tcp_gen;
    struct sockaddr_in client;
} pend_t;

struct drv_dns {
    int udp, tcp;
    zone_t zone; /* the records now */
    struct sockaddr_in up[MAX_UPSTREAMS];
    unsigned nup, next_up;
    pend_t *pend;
    unsigned npend, max_pend, timeout_ms;
    tcpc_t tcpc[DRV_DNS_TCP_CONNS];
    uint32_t tcp_gen;
    uint64_t rng[2];
    uint64_t rng_n;
    uint8_t in[65536];
    uint8_t out[65536];
};

static uint16_t rand16(drv_dns_t *s)
{
    uint64_t n = s->rng_n++;
    return (uint16_t)drv_map_hash(s->rng, &n, sizeof(n));
}

/* Builds the zone of ns (or an empty one for domain when ns is NULL). */
static drv_err_t zone_make(zone_t *z, const char *domain, const drv_netstate_t *ns, uint32_t serial)
{
    memset(z, 0, sizeof(*z));
    drv_map_init(&z->names, MAX_RECORDS);
    if (drv_fmt(z->domain, sizeof(z->domain), "%s", domain) != DRV_OK)
        return DRV_ERR_TOOBIG;
    lower(z->domain);
    size_t dl = strlen(z->domain);
    while (dl > 0 && z->domain[dl - 1] == '.')
        z->domain[--dl] = '\0';
    if (dl == 0)
        return DRV_ERR_INVALID;
    z->serial = serial;
    node_t *apex;
    drv_err_t r = node_get(z, z->domain, &apex);
    if (r == DRV_OK && ns) {
        z->svc_cidr = ns->service_cidr;
        z->pod_cidr = ns->cluster_cidr;
        r = zone_build(z, ns);
    }
    return r;
}

drv_err_t drv_dns_update(drv_dns_t *s, const drv_netstate_t *ns, drv_error_t *err)
{
    const char *domain = ns->cluster_domain[0] ? ns->cluster_domain : s->zone.domain;
    zone_t z;
    drv_err_t r = zone_make(&z, domain, ns, s->zone.serial + 1);
    if (r != DRV_OK) {
        zone_free(&z);
        return drv_error_set(err, r, 0, "DNS records of cluster domain %s: %s", domain,
                             r == DRV_ERR_TOOBIG ? "a name longer than 253 bytes or too many names"
                                                 : drv_strerror(r));
    }
    zone_free(&s->zone);
    s->zone = z;
    return DRV_OK;
}

/* The IPv4 address of a full reverse name "d.c.b.a.in-addr.arpa", false otherwise. */
static bool reverse_ip(const char *name, uint32_t *ip)
{
    uint32_t o[4];
    const char *p = name;
    for (int i = 0; i < 4; i++) {
        if (*p < '0' || *p > '9')
            return false;
        uint32_t v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 4) {
            v = v * 10 + (uint32_t)(*p++ - '0');
            digits++;
        }
        if (v > 255 || *p != '.')
            return false;
        p++;
        o[i] = v;
    }
    if (strcmp(p, "in-addr.arpa") != 0)
        return false;
    *ip = (o[3] << 24) | (o[2] << 16) | (o[1] << 8) | o[0];
    return true;
}

static bool cidr_has(drv_net_cidr_t c, uint32_t ip)
{
    if (c.prefix == 0)
        return false;
    uint32_t mask = c.prefix >= 32 ? 0xFFFFFFFFu : ~(0xFFFFFFFFu >> c.prefix);
    return (ip & mask) == (c.addr & mask);
}

static bool in_zone(const zone_t *z, const char *name)
{
    size_t dl = strlen(z->domain), nl = strlen(name);
    if (nl == dl)
        return strcmp(name, z->domain) == 0;
    if (nl > dl && name[nl - dl - 1] == '.' && strcmp(name + nl - dl, z->domain) == 0)
        return true;
    uint32_t ip;
    return reverse_ip(name, &ip) && (cidr_has(z->svc_cidr, ip) || cidr_has(z->pod_cidr, ip));
}

static void put_soa(enc_t *e, const zone_t *z, const char *owner)
{
    char mname[DRV_DNS_NAME_TEXT], rname[DRV_DNS_NAME_TEXT];
    if (drv_fmt(mname, sizeof(mname), "ns.dns.%s", z->domain) != DRV_OK ||
        drv_fmt(rname, sizeof(rname), "hostmaster.%s", z->domain) != DRV_OK) {
        e->over = true;
        return;
    }
    put_name(e, owner);
    put16(e, DRV_DNS_T_SOA);
    put16(e, 1);
    put32(e, DRV_DNS_NEG_TTL);
    size_t at = e->len;
    put16(e, 0);
    put_name(e, mname);
    put_name(e, rname);
    put32(e, z->serial);
    put32(e, 7200);
    put32(e, 1800);
    put32(e, 86400);
    put32(e, DRV_DNS_NEG_TTL);
    if (!e->over) {
        e->p[at] = (uint8_t)((e->len - at - 2) >> 8);
        e->p[at + 1] = (uint8_t)(e->len - at - 2);
    }
}

/* One record of node n answering the question at offset HDR (its owner is a pointer to it). */
static void put_rec(enc_t *e, const rec_t *x)
{
    put16(e, 0xC000 | HDR);
    put16(e, x->type);
    put16(e, 1);
    put32(e, DRV_DNS_TTL);
    size_t at = e->len;
    put16(e, 0);
    if (x->type == DRV_DNS_T_A) {
        put32(e, x->a);
    } else if (x->type == DRV_DNS_T_SRV) {
        put16(e, 0);   /* priority */
        put16(e, 100); /* weight */
        put16(e, x->port);
        put_name(e, x->target);
    } else {
        put_name(e, x->target);
    }
    if (!e->over) {
        e->p[at] = (uint8_t)((e->len - at - 2) >> 8);
        e->p[at + 1] = (uint8_t)(e->len - at - 2);
    }
}

static bool matches(uint16_t qtype, const rec_t *x)
{
    return qtype == x->type || qtype == DRV_DNS_T_ANY;
}

/* The answer from the zone into e: header, question, records, SOA on a negative answer, OPT;
 * over the client's limit, only the header and question with TC. */
static void answer_local(drv_dns_t *s, const drv_dns_msg_t *m, size_t limit, enc_t *e)
{
    zone_t *z = &s->zone;
    node_t *n = NULL;
    void *v = NULL;
    if (drv_map_find(&z->names, m->qname, strlen(m->qname), &v))
        n = v;
    uint16_t an = 0, ar = 0;
    bool apex_soa = n && strcmp(n->name, z->domain) == 0 &&
                    (m->qtype == DRV_DNS_T_SOA || m->qtype == DRV_DNS_T_ANY);
    for (const rec_t *x = n ? n->head : NULL; x; x = x->next)
        an += matches(m->qtype, x);
    if (apex_soa)
        an++;
    uint16_t flags = DRV_DNS_F_QR | DRV_DNS_F_AA | (m->flags & DRV_DNS_F_RD) | DRV_DNS_F_RA |
                     (n ? DRV_DNS_NOERROR : DRV_DNS_NXDOMAIN);
    /* SRV targets' addresses in the additional section, when they are ours. */
    for (const rec_t *x = n ? n->head : NULL; x; x = x->next) {
        if (x->type != DRV_DNS_T_SRV || !matches(m->qtype, x))
            continue;
        node_t *t = drv_map_get(&z->names, x->target);
        for (const rec_t *y = t ? t->head : NULL; y; y = y->next)
            ar += y->type == DRV_DNS_T_A;
    }
    size_t cap = e->cap;
    e->cap = limit < cap ? limit : cap;
    if (m->edns)
        e->cap -= 11; /* room for the OPT, always sent */
    put_header(e, m->id, flags, 1, an, an ? 0 : 1, (uint16_t)(ar + (m->edns ? 1 : 0)));
    put(e, m->qwire, m->qwire_len);
    put16(e, m->qtype);
    put16(e, m->qclass);
    /* The question's name inline at HDR, for compression against it. */
    if (strlen(m->qname) < 256 && !strchr(m->qname, '\\')) {
        comp_t *c = &e->comp[e->ncomp++];
        memcpy(c->name, m->qname, strlen(m->qname) + 1);
        c->off = HDR;
        c->inl = (uint16_t)strlen(m->qname);
    }
    for (const rec_t *x = n ? n->head : NULL; x; x = x->next)
        if (matches(m->qtype, x))
            put_rec(e, x);
    if (apex_soa)
        put_soa(e, z, z->domain);
    if (!an)
        put_soa(e, z, z->domain);
    for (const rec_t *x = n ? n->head : NULL; x; x = x->next) {
        if (x->type != DRV_DNS_T_SRV || !matches(m->qtype, x))
            continue;
        node_t *t = drv_map_get(&z->names, x->target);
        for (const rec_t *y = t ? t->head : NULL; y; y = y->next) {
            if (y->type != DRV_DNS_T_A)
                continue;
            put_name(e, t->name);
            put16(e, DRV_DNS_T_A);
            put16(e, 1);
            put32(e, DRV_DNS_TTL);
            put16(e, 4);
            put32(e, y->a);
        }
    }
    if (e->over) {
        /* Too large for the client: the question alone, TC set, so it asks again over TCP. */
        e->over = false;
        e->len = 0;
        e->ncomp = 0;
        put_header(e, m->id, flags | DRV_DNS_F_TC, 1, 0, 0, m->edns ? 1 : 0);
        put(e, m->qwire, m->qwire_len);
        put16(e, m->qtype);
        put16(e, m->qclass);
    }
    e->cap = cap;
    if (m->edns)
        put_opt(e, 0);
}

/* A reply without records: header, the question if it parsed, OPT if asked. */
static void answer_rcode(const drv_dns_msg_t *m, uint16_t rcode, uint8_t ext, enc_t *e)
{
    uint16_t flags = DRV_DNS_F_QR | (m->flags & (DRV_DNS_F_RD | 0x7800)) | DRV_DNS_F_RA | rcode;
    put_header(e, m->id, flags, m->has_q ? 1 : 0, 0, 0, m->edns ? 1 : 0);
    if (m->has_q) {
        put(e, m->qwire, m->qwire_len);
        put16(e, m->qtype);
        put16(e, m->qclass);
    }
    if (m->edns)
        put_opt(e, ext);
}

static size_t client_limit(const drv_dns_msg_t *m, bool tcp)
{
    if (tcp)
        return 65535;
    if (!m->edns)
        return 512;
    return m->edns_size > DRV_DNS_UDP_SIZE ? DRV_DNS_UDP_SIZE : m->edns_size;
}

drv_err_t drv_dns_answer(drv_dns_t *s, const uint8_t *q, size_t qlen, bool tcp, uint8_t *out,
                         size_t cap, size_t *outlen, bool *forward, drv_error_t *err)
{
    *forward = false;
    *outlen = 0;
    if (qlen < HDR)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "query of %zu bytes: no header", qlen);
    if (q[2] & 0x80)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "a response, not a query");
    enc_t e = {.p = out, .cap = cap};
    drv_dns_msg_t m;
    drv_error_t perr = DRV_ERROR_INIT;
    if (drv_dns_parse(q, qlen, NULL, 0, &m, &perr) != DRV_OK) {
        /* Unparsable: FORMERR with the id, no question. */
        memset(&m, 0, sizeof(m));
        m.id = rd16(q);
        m.flags = rd16(q + 2);
        answer_rcode(&m, DRV_DNS_FORMERR, 0, &e);
    } else if ((m.flags >> 11 & 15) != 0) {
        answer_rcode(&m, DRV_DNS_NOTIMP, 0, &e);
    } else if (!m.has_q) {
        answer_rcode(&m, DRV_DNS_FORMERR, 0, &e);
    } else if (m.edns && m.edns_version != 0) {
        answer_rcode(&m, 0, 1, &e); /* BADVERS: extended rcode 16 */
    } else if (m.qclass != 1 && m.qclass != DRV_DNS_T_ANY) {
        answer_rcode(&m, DRV_DNS_REFUSED, 0, &e);
    } else if (!in_zone(&s->zone, m.qname)) {
        *forward = true;
        return DRV_OK;
    } else {
        answer_local(s, &m, client_limit(&m, tcp), &e);
    }
    if (e.over)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "answer: no room");
    *outlen = e.len;
    return DRV_OK;
}

/* ---- sockets ---- */

static void send_udp(drv_dns_t *s, const struct sockaddr_in *to, const uint8_t *p, size_t n)
{
    if (s->udp >= 0 && sendto(s->udp, p, n, MSG_DONTWAIT | MSG_NOSIGNAL,
                              (const struct sockaddr *)to, sizeof(*to)) < 0)
        drv_log_debug("dns: send failed", "errno=%d", errno);
}

static void tcp_drop(tcpc_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->len = 0;
    c->waiting = false;
}

/* Answers a TCP client (length-prefixed) and closes it: one query per connection. */
static void send_tcp(tcpc_t *c, const uint8_t *p, size_t n)
{
    uint8_t pre[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    struct iovec iov[2] = {{pre, 2}, {(void *)p, n}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t w = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w != (ssize_t)(n + 2))
        drv_log_debug("dns: tcp answer not sent whole", "len=%zu sent=%zd", n + 2, w);
    tcp_drop(c);
}

static void pend_free(drv_dns_t *s, pend_t *p)
{
    if (p->fd >= 0) {
        close(p->fd);
        s->npend--;
    }
    p->fd = -1;
}

/* Delivers reply[n] (with the client's id already in it) to p's client. */
static void pend_deliver(drv_dns_t *s, pend_t *p, const uint8_t *reply, size_t n)
{
    if (p->tcp >= 0) {
        tcpc_t *c = &s->tcpc[p->tcp];
        if (c->fd >= 0 && c->gen == p->tcp_gen && c->waiting)
            send_tcp(c, reply, n);
    } else {
        send_udp(s, &p->client, reply, n);
    }
    pend_free(s, p);
}

static void pend_fail(drv_dns_t *s, pend_t *p)
{
    drv_dns_msg_t m;
    memset(&m, 0, sizeof(m));
    m.id = p->client_id;
    m.flags = DRV_DNS_F_RD;
    m.has_q = true;
    m.qwire_len = p->qwire_len;
    m.qtype = p->qtype;
    m.qclass = p->qclass;
    m.edns = p->client_edns;
    memcpy(m.qwire, p->qwire, p->qwire_len);
    enc_t e = {.p = s->out, .cap = sizeof(s->out)};
    answer_rcode(&m, DRV_DNS_SERVFAIL, 0, &e);
    pend_deliver(s, p, s->out, e.len);
}

/* Sends p's query to its next upstream from a fresh socket (a new random source port) with a
 * fresh random id. False when no upstream is left. */
static bool pend_send(drv_dns_t *s, pend_t *p)
{
    while (p->tried < s->nup) {
        if (p->fd >= 0) {
            close(p->fd);
            s->npend--;
            p->fd = -1;
        }
        p->up = (s->next_up++) % s->nup;
        p->tried++;
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return false;
        s->npend++;
        p->fd = fd;
        p->id = rand16(s);
        uint8_t q[HDR + 255 + 4 + 11];
        enc_t e = {.p = q, .cap = sizeof(q)};
        put_header(&e, p->id, DRV_DNS_F_RD, 1, 0, 0, 1);
        put(&e, p->qwire, p->qwire_len);
        put16(&e, p->qtype);
        put16(&e, p->qclass);
        /* The upstream answers within what our client takes (we pass its answer on). */
        put(&e, "", 1);
        put16(&e, DRV_DNS_T_OPT);
        put16(&e, (uint16_t)(p->limit > DRV_DNS_UDP_SIZE ? DRV_DNS_UDP_SIZE : p->limit));
        put32(&e, 0);
        put16(&e, 0);
        if (connect(fd, (const struct sockaddr *)&s->up[p->up], sizeof(s->up[0])) == 0 &&
            send(fd, q, e.len, MSG_NOSIGNAL) == (ssize_t)e.len)
            return true;
    }
    return false;
}

static void forward(drv_dns_t *s, const uint8_t *q, size_t qlen, const struct sockaddr_in *from,
                    int tcp, long long now)
{
    drv_dns_msg_t m;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_dns_parse(q, qlen, NULL, 0, &m, &err) != DRV_OK)
        return; /* drv_dns_answer parsed it already */
    if (tcp >= 0)
        s->tcpc[tcp].waiting = true;
    pend_t *p = NULL;
    for (unsigned i = 0; i < s->max_pend && !p; i++)
        if (s->pend[i].fd < 0)
            p = &s->pend[i];
    if (!p || s->nup == 0) {
        pend_t tmp = {.fd = -1,
                      .client_id = m.id,
                      .qtype = m.qtype,
                      .qclass = m.qclass,
                      .qwire_len = m.qwire_len,
                      .client_edns = m.edns,
                      .tcp = tcp,
                      .tcp_gen = tcp >= 0 ? s->tcpc[tcp].gen : 0};
        memcpy(tmp.qwire, m.qwire, m.qwire_len);
        if (from)
            tmp.client = *from;
        drv_log_debug("dns: cannot forward", "pending=%u upstreams=%u", s->npend, s->nup);
        pend_fail(s, &tmp);
        return;
    }
    memset(p, 0, sizeof(*p));
    p->fd = -1;
    p->client_id = m.id;
    p->qtype = m.qtype;
    p->qclass = m.qclass;
    p->qwire_len = m.qwire_len;
    memcpy(p->qwire, m.qwire, m.qwire_len);
    p->client_edns = m.edns;
    p->limit = client_limit(&m, tcp >= 0);
    p->tcp = tcp;
    p->tcp_gen = tcp >= 0 ? s->tcpc[tcp].gen : 0;
    if (from)
        p->client = *from;
    p->deadline = now + s->timeout_ms;
    if (!pend_send(s, p))
        pend_fail(s, p);
}

/* A query from a client: answered here or forwarded. */
static void serve(drv_dns_t *s, const uint8_t *q, size_t qlen, const struct sockaddr_in *from,
                  int tcp, long long now)
{
    size_t n = 0;
    bool fwd = false;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_dns_answer(s, q, qlen, tcp >= 0, s->out, sizeof(s->out), &n, &fwd, &err) != DRV_OK) {
        if (tcp >= 0)
            tcp_drop(&s->tcpc[tcp]);
        return;
    }
    if (fwd)
        forward(s, q, qlen, from, tcp, now);
    else if (tcp >= 0)
        send_tcp(&s->tcpc[tcp], s->out, n);
    else
        send_udp(s, from, s->out, n);
}

static void upstream_read(drv_dns_t *s, pend_t *p, long long now)
{
    for (;;) {
        ssize_t n = recv(p->fd, s->in, sizeof(s->in), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            /* ICMP unreachable and the like: the next upstream, if any. */
            p->deadline = now + s->timeout_ms;
            if (!pend_send(s, p))
                pend_fail(s, p);
            return;
        }
        drv_dns_msg_t m;
        drv_dns_rr_t rrs[64];
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_dns_parse(s->in, (size_t)n, rrs, 64, &m, &err) != DRV_OK ||
            !(m.flags & DRV_DNS_F_QR) || m.id != p->id || !m.has_q || m.qtype != p->qtype ||
            m.qclass != p->qclass || m.qwire_len != p->qwire_len)
            continue; /* not the answer: keep waiting */
        bool same = true;
        for (size_t i = 0; i < p->qwire_len && same; i++) {
            uint8_t a = m.qwire[i], b = p->qwire[i];
            same = a == b || ((a | 0x20) == (b | 0x20) && (a | 0x20) >= 'a' && (a | 0x20) <= 'z');
        }
        if (!same)
            continue;
        s->in[0] = (uint8_t)(p->client_id >> 8);
        s->in[1] = (uint8_t)p->client_id;
        /* Our OPT was the upstream's business: a client that sent none gets none back. */
        size_t total = (size_t)m.ancount + m.nscount + m.arcount;
        const drv_dns_rr_t *last = m.nrrs == total && total ? &rrs[total - 1] : NULL;
        if (!p->client_edns && last && last->type == DRV_DNS_T_OPT &&
            (size_t)last->rdoff + last->rdlen == (size_t)n) {
            n = last->name_off;
            s->in[10] = (uint8_t)((m.arcount - 1) >> 8);
            s->in[11] = (uint8_t)(m.arcount - 1);
        }
        if ((size_t)n > p->limit) {
            /* Larger than the client takes: header and question with TC. */
            enc_t e = {.p = s->out, .cap = sizeof(s->out)};
            put_header(&e, p->client_id, m.flags | DRV_DNS_F_TC, 1, 0, 0, 0);
            put(&e, p->qwire, p->qwire_len);
            put16(&e, p->qtype);
            put16(&e, p->qclass);
            pend_deliver(s, p, s->out, e.len);
        } else {
            pend_deliver(s, p, s->in, (size_t)n);
        }
        return;
    }
}

static void udp_read(drv_dns_t *s, long long now)
{
    /* A bounded batch per wake-up, so one flood cannot starve the rest of the loop. */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n =
            recvfrom(s->udp, s->in, sizeof(s->in), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (n < 0)
            return;
        if (fl != sizeof(from) || from.sin_family != AF_INET)
            continue;
        serve(s, s->in, (size_t)n, &from, -1, now);
    }
}

static void tcp_accept(drv_dns_t *s, long long now)
{
    for (int i = 0; i < DRV_DNS_TCP_CONNS; i++) {
        int fd = accept4(s->tcp, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        tcpc_t *c = NULL;
        for (int k = 0; k < DRV_DNS_TCP_CONNS && !c; k++)
            if (s->tcpc[k].fd < 0)
                c = &s->tcpc[k];
        if (!c) {
            close(fd); /* at the cap: the client retries */
            continue;
        }
        int sz = 128 * 1024;
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        c->fd = fd;
        c->gen = ++s->tcp_gen;
        c->len = 0;
        c->waiting = false;
        c->deadline = now + s->timeout_ms;
    }
}

static void tcp_read(drv_dns_t *s, int idx, long long now)
{
    tcpc_t *c = &s->tcpc[idx];
    if (c->waiting) {
        /* The client spoke again or hung up while we wait upstream: a close ends it. */
        uint8_t b[64];
        ssize_t n = recv(c->fd, b, sizeof(b), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            tcp_drop(c);
        return;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            tcp_drop(c);
        return;
    }
    c->len += (size_t)n;
    if (c->len < 2)
        return;
    size_t want = rd16(c->buf);
    if (want > TCP_QUERY_MAX || want < HDR) {
        tcp_drop(c);
        return;
    }
    if (c->len < 2 + want)
        return;
    serve(s, c->buf + 2, want, NULL, idx, now);
}

void drv_dns_handle_fd(drv_dns_t *s, int fd, long long now_ms)
{
    if (fd < 0)
        return;
    if (fd == s->udp) {
        udp_read(s, now_ms);
        return;
    }
    if (fd == s->tcp) {
        tcp_accept(s, now_ms);
        return;
    }
    for (int i = 0; i < DRV_DNS_TCP_CONNS; i++)
        if (s->tcpc[i].fd == fd) {
            tcp_read(s, i, now_ms);
            return;
        }
    for (unsigned i = 0; i < s->max_pend; i++)
        if (s->pend[i].fd == fd) {
            upstream_read(s, &s->pend[i], now_ms);
            return;
        }
}

size_t drv_dns_fds(const drv_dns_t *s, int *fds, size_t max)
{
    size_t n = 0;
#define ADD(f)                                                                                     \
    do {                                                                                           \
        if (n < max)                                                                               \
            fds[n] = (f);                                                                          \
        n++;                                                                                       \
    } while (0)
    if (s->udp >= 0)
        ADD(s->udp);
    if (s->tcp >= 0)
        ADD(s->tcp);
    for (int i = 0; i < DRV_DNS_TCP_CONNS; i++)
        if (s->tcpc[i].fd >= 0)
            ADD(s->tcpc[i].fd);
    for (unsigned i = 0; i < s->max_pend; i++)
        if (s->pend[i].fd >= 0)
            ADD(s->pend[i].fd);
#undef ADD
    return n;
}

void drv_dns_tick(drv_dns_t *s, long long now_ms)
{
    for (unsigned i = 0; i < s->max_pend; i++)
        if (s->pend[i].fd >= 0 && now_ms >= s->pend[i].deadline)
            pend_fail(s, &s->pend[i]);
    for (int i = 0; i < DRV_DNS_TCP_CONNS; i++)
        if (s->tcpc[i].fd >= 0 && !s->tcpc[i].waiting && now_ms >= s->tcpc[i].deadline)
            tcp_drop(&s->tcpc[i]);
}

int drv_dns_next_wakeup(const drv_dns_t *s, long long now_ms)
{
    long long next = -1;
    for (unsigned i = 0; i < s->max_pend; i++)
        if (s->pend[i].fd >= 0 && (next < 0 || s->pend[i].deadline < next))
            next = s->pend[i].deadline;
    for (int i = 0; i < DRV_DNS_TCP_CONNS; i++)
        if (s->tcpc[i].fd >= 0 && !s->tcpc[i].waiting && (next < 0 || s->tcpc[i].deadline < next))
            next = s->tcpc[i].deadline;
    if (next < 0)
        return -1;
    return next <= now_ms ? 0 : (int)(next - now_ms);
}

/* The IPv4 nameservers of a resolv.conf text (IPv6 ones are not used: the pod network is
 * IPv4), skipping this server itself. */
static void read_upstreams(drv_dns_t *s, const char *text, uint32_t self, uint16_t port)
{
    const char *line = text;
    while (line && *line && s->nup < MAX_UPSTREAMS) {
        const char *eol = strchr(line, '\n');
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        char buf[256];
        if (ll < sizeof(buf)) {
            memcpy(buf, line, ll);
            buf[ll] = '\0';
            char addr[64];
            struct in_addr ia;
            if (sscanf(buf, " nameserver %63s", addr) == 1 && inet_pton(AF_INET, addr, &ia) == 1) {
                uint32_t ip = ntohl(ia.s_addr);
                bool me = port == 53 && (ip == self || (self == 0 && (ip >> 24) == 127));
                if (!me) {
                    struct sockaddr_in *u = &s->up[s->nup++];
                    memset(u, 0, sizeof(*u));
                    u->sin_family = AF_INET;
                    u->sin_port = htons(53);
                    u->sin_addr = ia;
                }
            }
        }
        line = eol ? eol + 1 : NULL;
    }
}

static drv_err_t listen_on(int type, const struct sockaddr_in *sa, int *out, drv_error_t *err)
{
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return drv_error_set(err, drv_error_from_errno(errno), errno, "socket");
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* The node's DNS listens on the pods' gateway, which exists once the first pod's bridge
     * does: bound before, so that names resolve from that pod's first instruction on. */
    (void)setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
    char ip[INET_ADDRSTRLEN] = "";
    inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
    if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 ||
        (type == SOCK_STREAM && listen(fd, 64) != 0)) {
        int e = errno;
        close(fd);
        return drv_error_set(err, drv_error_from_errno(e), e, "DNS %s on %s:%u",
                             type == SOCK_STREAM ? "TCP" : "UDP", ip, ntohs(sa->sin_port));
    }
    *out = fd;
    return DRV_OK;
}

drv_err_t drv_dns_open(const char *bind_ip, uint16_t port, const drv_dns_opts_t *opts,
                       drv_dns_t **out, drv_error_t *err)
{
    drv_dns_opts_t o = opts ? *opts : (drv_dns_opts_t){0};
    drv_dns_t *s = calloc(1, sizeof(*s));
    if (!s)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "DNS server");
    s->udp = s->tcp = -1;
    for (int i = 0; i < DRV_DNS_TCP_CONNS; i++)
        s->tcpc[i].fd = -1;
    s->max_pend = o.max_pending ? (o.max_pending > 1024 ? 1024 : o.max_pending) : 128;
    s->timeout_ms = o.timeout_ms ? o.timeout_ms : DRV_DNS_TIMEOUT_MS;
    drv_map_seed(s->rng);
    s->pend = calloc(s->max_pend, sizeof(*s->pend));
    drv_err_t r = s->pend ? DRV_OK : DRV_ERR_NOMEM;
    for (unsigned i = 0; s->pend && i < s->max_pend; i++)
        s->pend[i].fd = -1;
    const char *domain = o.cluster_domain ? o.cluster_domain : "cluster.local";
    if (r == DRV_OK && (r = zone_make(&s->zone, domain, NULL, 1)) != DRV_OK)
        drv_error_set(err, r, 0, "cluster domain %s: not a domain", domain);
    else if (r != DRV_OK)
        drv_error_set(err, r, 0, "DNS server");
    uint32_t self = 0;
    if (r == DRV_OK && bind_ip) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        if (inet_pton(AF_INET, bind_ip, &sa.sin_addr) != 1)
            r = drv_error_set(err, DRV_ERR_INVALID, 0, "DNS address %s: not an IPv4 address",
                              bind_ip);
        self = ntohl(sa.sin_addr.s_addr);
        if (r == DRV_OK)
            r = listen_on(SOCK_DGRAM, &sa, &s->udp, err);
        if (r == DRV_OK)
            r = listen_on(SOCK_STREAM, &sa, &s->tcp, err);
    }
    if (r == DRV_OK) {
        const char *path = o.resolv_conf ? o.resolv_conf : "/etc/resolv.conf";
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (path[0] && drv_file_read_capped(path, 64 * 1024, &text, &len, NULL) == DRV_OK)
            read_upstreams(s, text, self, port);
        if (s->nup == 0 && path[0])
            drv_log_warn("dns: no upstream resolver: names outside the cluster fail",
                         "resolv_conf=%s", path);
    }
    if (r != DRV_OK) {
        drv_dns_close(s);
        return r;
    }
    *out = s;
    return DRV_OK;
}

void drv_dns_close(drv_dns_t *s)
{
    if (!s)
        return;
    if (s->udp >= 0)
        close(s->udp);
    if (s->tcp >= 0)
        close(s->tcp);
    for (int i = 0; i < DRV_DNS_TCP_CONNS; i++)
        tcp_drop(&s->tcpc[i]);
    for (unsigned i = 0; s->pend && i < s->max_pend; i++)
        pend_free(s, &s->pend[i]);
    free(s->pend);
    zone_free(&s->zone);
    free(s);
}

/* ---- resolv.conf for pods ---- */

#define RC_NS_MAX 3
#define RC_SEARCH_MAX 32
#define RC_SEARCH_CHARS 2048
#define RC_OPT_MAX 64

typedef struct rconf {
    char ns[RC_NS_MAX + 8][64];
    size_t nns;
    char search[RC_SEARCH_MAX + 40][256];
    size_t nsearch;
    char opt[RC_OPT_MAX][128]; /* "name" or "name:value" */
    size_t nopt;
} rconf_t;

static void rc_add(char (*list)[256], size_t *n, size_t max, const char *v)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(list[i], v) == 0)
            return;
    if (*n < max && drv_fmt(list[*n], 256, "%s", v) == DRV_OK)
        (*n)++;
}

static void rc_add_ns(rconf_t *c, const char *v)
{
    for (size_t i = 0; i < c->nns; i++)
        if (strcmp(c->ns[i], v) == 0)
            return;
    if (c->nns < RC_NS_MAX + 8 && drv_fmt(c->ns[c->nns], sizeof(c->ns[0]), "%s", v) == DRV_OK)
        c->nns++;
}

/* An option "name[:value]": replaces one of the same name (dnsConfig's win over the host's). */
static void rc_add_opt(rconf_t *c, const char *v)
{
    size_t nl = strcspn(v, ":");
    for (size_t i = 0; i < c->nopt; i++)
        if (strncmp(c->opt[i], v, nl) == 0 && (c->opt[i][nl] == ':' || !c->opt[i][nl])) {
            if (drv_fmt(c->opt[i], sizeof(c->opt[0]), "%s", v) != DRV_OK)
                c->opt[i][0] = '\0';
            return;
        }
    if (c->nopt < RC_OPT_MAX && drv_fmt(c->opt[c->nopt], sizeof(c->opt[0]), "%s", v) == DRV_OK)
        c->nopt++;
}

/* The host's file as the kubelet reads it: nameserver, search (trailing dots dropped),
 * options; comments and other lines ignored. */
static void rc_parse_host(rconf_t *c, const char *text)
{
    const char *line = text ? text : "";
    while (*line) {
        size_t ll = strcspn(line, "\n");
        char buf[1024];
        if (ll < sizeof(buf)) {
            memcpy(buf, line, ll);
            buf[ll] = '\0';
            char *save = NULL;
            char *key = strtok_r(buf, " \t\r", &save);
            if (key && (key[0] != '#' && key[0] != ';')) {
                char *v;
                while ((v = strtok_r(NULL, " \t\r", &save))) {
                    if (strcmp(key, "nameserver") == 0) {
                        rc_add_ns(c, v);
                        break; /* one address per line */
                    } else if (strcmp(key, "search") == 0) {
                        size_t vl = strlen(v);
                        while (vl > 0 && v[vl - 1] == '.')
                            v[--vl] = '\0';
                        if (vl)
                            rc_add(c->search, &c->nsearch, RC_SEARCH_MAX + 40, v);
                    } else if (strcmp(key, "options") == 0) {
                        rc_add_opt(c, v);
                    } else {
                        break;
                    }
                }
            }
        }
        line += ll;
        if (*line)
            line++;
    }
}

static drv_err_t rc_merge_config(rconf_t *c, const cJSON *dc, drv_error_t *err)
{
    if (!dc || cJSON_IsNull(dc))
        return DRV_OK;
    if (!cJSON_IsObject(dc))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "spec.dnsConfig: not an object");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(dc, "nameservers");
    size_t i = 0;
    for (const cJSON *x = cJSON_IsArray(a) ? a->child : NULL; x; x = x->next, i++) {
        unsigned char buf[16];
        if (!cJSON_IsString(x) || (inet_pton(AF_INET, x->valuestring, buf) != 1 &&
                                   inet_pton(AF_INET6, x->valuestring, buf) != 1))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "spec.dnsConfig.nameservers[%zu]: not an IP address", i);
        if (i >= RC_NS_MAX)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "spec.dnsConfig.nameservers: at most %d",
                                 RC_NS_MAX);
        rc_add_ns(c, x->valuestring);
    }
    a = cJSON_GetObjectItemCaseSensitive(dc, "searches");
    i = 0;
    for (const cJSON *x = cJSON_IsArray(a) ? a->child : NULL; x; x = x->next, i++) {
        if (!cJSON_IsString(x) || !x->valuestring[0] || strlen(x->valuestring) > 253 ||
            strpbrk(x->valuestring, " \t\r\n#;"))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "spec.dnsConfig.searches[%zu]: not a domain name", i);
        if (i >= RC_SEARCH_MAX)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "spec.dnsConfig.searches: at most %d",
                                 RC_SEARCH_MAX);
        char v[256];
        if (drv_fmt(v, sizeof(v), "%s", x->valuestring) != DRV_OK)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "spec.dnsConfig.searches[%zu]: too long",
                                 i);
        size_t vl = strlen(v);
        while (vl > 0 && v[vl - 1] == '.')
            v[--vl] = '\0';
        if (vl)
            rc_add(c->search, &c->nsearch, RC_SEARCH_MAX + 40, v);
    }
    a = cJSON_GetObjectItemCaseSensitive(dc, "options");
    i = 0;
    for (const cJSON *x = cJSON_IsArray(a) ? a->child : NULL; x; x = x->next, i++) {
        const char *name = drv_json_str(x, "name");
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(x, "value");
        if (!name || !name[0] || strpbrk(name, " \t\r\n:#;") ||
            (val && !cJSON_IsNull(val) &&
             (!cJSON_IsString(val) || strpbrk(val->valuestring, " \t\r\n#;"))))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "spec.dnsConfig.options[%zu]: needs a name (and a value "
                                 "without spaces)",
                                 i);
        char o[128];
        bool has_val = cJSON_IsString(val) && val->valuestring[0];
        if (drv_fmt(o, sizeof(o), "%s%s%s", name, has_val ? ":" : "",
                    has_val ? val->valuestring : "") != DRV_OK)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "spec.dnsConfig.options[%zu]: too long",
                                 i);
        rc_add_opt(c, o);
    }
    return DRV_OK;
}

drv_err_t drv_dns_resolv_conf(const char *policy, bool host_network, const char *pod_ns,
                              const char *domain, const char *dns_ip, const cJSON *dns_config,
                              const char *host_text, drv_buf_t *out, drv_error_t *err)
{
    if (!policy || !policy[0])
        policy = "ClusterFirst";
    bool cluster;
    if (strcmp(policy, "ClusterFirst") == 0)
        cluster = !host_network;
    else if (strcmp(policy, "ClusterFirstWithHostNet") == 0)
        cluster = true;
    else if (strcmp(policy, "Default") == 0 || strcmp(policy, "None") == 0)
        cluster = false;
    else
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "spec.dnsPolicy: %s is not ClusterFirst, ClusterFirstWithHostNet, "
                             "Default or None",
                             policy);
    bool none = strcmp(policy, "None") == 0;
    if (none && !cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(dns_config, "nameservers")))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "spec.dnsConfig.nameservers: required with dnsPolicy None");
    _cleanup_free_ rconf_t *c = calloc(1, sizeof(*c));
    if (!c)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "resolv.conf");
    if (!none)
        rc_parse_host(c, host_text);
    if (cluster && dns_ip && dns_ip[0]) {
        /* The cluster's DNS alone, its search path ahead of the host's, ndots:5. */
        rconf_t *h = calloc(1, sizeof(*h));
        if (!h)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "resolv.conf");
        *h = *c;
        memset(c, 0, sizeof(*c));
        rc_add_ns(c, dns_ip);
        char s0[256], s1[256];
        if (drv_fmt(s0, sizeof(s0), "%s.svc.%s", pod_ns, domain) != DRV_OK ||
            drv_fmt(s1, sizeof(s1), "svc.%s", domain) != DRV_OK || strlen(domain) > 250) {
            free(h);
            return drv_error_set(err, DRV_ERR_INVALID, 0, "cluster domain %s: too long", domain);
        }
        rc_add(c->search, &c->nsearch, RC_SEARCH_MAX + 40, s0);
        rc_add(c->search, &c->nsearch, RC_SEARCH_MAX + 40, s1);
        rc_add(c->search, &c->nsearch, RC_SEARCH_MAX + 40, domain);
        for (size_t i = 0; i < h->nsearch; i++)
            rc_add(c->search, &c->nsearch, RC_SEARCH_MAX + 40, h->search[i]);
        rc_add_opt(c, "ndots:5");
        free(h);
    }
    drv_err_t r = rc_merge_config(c, dns_config, err);
    if (r != DRV_OK)
        return r;
    /* The resolver's limits, applied as the kubelet does: 3 servers, 32 domains, 2048 chars. */
    drv_buf_t b = DRV_BUF_INIT(16 * 1024);
    size_t nns = c->nns > RC_NS_MAX ? RC_NS_MAX : c->nns;
    for (size_t i = 0; i < nns && r == DRV_OK; i++)
        r = drv_buf_printf(&b, "nameserver %s\n", c->ns[i]);
    size_t chars = 0;
    for (size_t i = 0; i < c->nsearch && i < RC_SEARCH_MAX && r == DRV_OK; i++) {
        size_t l = strlen(c->search[i]);
        if (chars + l + (i ? 1 : 0) > RC_SEARCH_CHARS)
            break;
        r = drv_buf_printf(&b, "%s%s", i ? " " : "search ", c->search[i]);
        chars += l + (i ? 1 : 0);
    }
    if (chars && r == DRV_OK)
        r = drv_buf_putc(&b, '\n');
    bool first = true;
    for (size_t i = 0; i < c->nopt && r == DRV_OK; i++) {
        if (!c->opt[i][0])
            continue;
        r = drv_buf_printf(&b, "%s%s", first ? "options " : " ", c->opt[i]);
        first = false;
    }
    if (!first && r == DRV_OK)
        r = drv_buf_putc(&b, '\n');
    if (r == DRV_OK)
        r = drv_buf_append(out, b.data ? b.data : "", b.len);
    drv_buf_free(&b);
    if (r != DRV_OK)
        return drv_error_set(err, r, 0, "resolv.conf: too long");
    return DRV_OK;
}

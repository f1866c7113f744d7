/* Kubernetes name rules: DNS labels and subdomains, label keys and values, port names,
 * ConfigMap/Secret keys, environment variable names. Each check returns true when s is
 * valid and otherwise writes a short reason ("must be no more than 63 characters") to why
 * (may be NULL), in the wording Kubernetes uses, so validation errors read the same. */
#ifndef DROVER_NAMES_H
#define DROVER_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include "drover/error.h"

/* RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters. */
DRV_API bool drv_name_dns_label(const char *s, char *why, size_t whysz);
/* RFC 1123 subdomain: dot-separated labels, at most 253 characters. */
DRV_API bool drv_name_dns_subdomain(const char *s, char *why, size_t whysz);
/* RFC 1035 label (Service names): like a DNS label but starting with a letter. */
DRV_API bool drv_name_dns1035_label(const char *s, char *why, size_t whysz);
/* Label/annotation key: optional "<dns subdomain>/" prefix, then a name of at most 63
 * characters matching [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?. */
DRV_API bool drv_name_label_key(const char *s, char *why, size_t whysz);
/* Label value: empty, or at most 63 characters matching the name pattern above. */
DRV_API bool drv_name_label_value(const char *s, char *why, size_t whysz);
/* IANA service (port) name: 1-15 characters, [a-z0-9-], at least one letter, no hyphen at
 * either end or two in a row. */
DRV_API bool drv_name_port_name(const char *s, char *why, size_t whysz);
/* ConfigMap/Secret data key: [-._a-zA-Z0-9]+, at most 253 characters, not "." or "..". */
DRV_API bool drv_name_config_key(const char *s, char *why, size_t whysz);
/* Environment variable name: printable ASCII except '=', not empty (Kubernetes >= 1.30 rule). */
DRV_API bool drv_name_env_var(const char *s, char *why, size_t whysz);
/* [A-Za-z0-9][A-Za-z0-9_.-]* of 1 to max characters: CNI's rule for container ids and network
 * names, and the agent's for pod uids it makes file names of. */
DRV_API bool drv_name_runtime_id(const char *s, size_t max);

/* Node names: a DNS subdomain of at most 63 characters (a certificate's CN, an MQTT client id). */
#define DRV_NAME_NODE_MAX 63
/* The placeholders of a node name pattern, as messages list them. */
#define DRV_NAME_NODE_PLACEHOLDERS "{serial}, {hostname}, {mac}"
/* Whether s is a node name pattern (holds a '{'), to be filled on the device. */
DRV_API bool drv_name_node_is_pattern(const char *s);
/* A node name, or a node name pattern: a name in which {serial}, {hostname} and {mac} stand
 * for values the agent fills from the device at its first start (each a DNS label). A pattern
 * is checked as the name it gives with every placeholder one character long; the filled
 * name's length is checked where it is filled. */
DRV_API bool drv_name_node_pattern(const char *s, char *why, size_t whysz);

#endif

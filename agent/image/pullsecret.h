/* A pod's imagePullSecrets as registry credentials: the Secrets of type
 * kubernetes.io/dockerconfigjson (".dockerconfigjson": {"auths": {server: {...}}}) and
 * kubernetes.io/dockercfg (".dockercfg": {server: {...}}) the pod names, read into the
 * drv_registry_cred_t list the pull child hands to drv_registry_new. */
#ifndef DROVER_AGENT_PULLSECRET_H
#define DROVER_AGENT_PULLSECRET_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include "drover/error.h"
#include "image/registry.h"

/* Registries one pod may name credentials for; entries past it are ignored. */
#define DRV_PULLSECRET_MAX_CREDS 64
/* A decoded .dockerconfigjson larger than this is refused. */
#define DRV_PULLSECRET_MAX_BYTES (64 * 1024)

typedef struct drv_pull_creds {
    drv_registry_cred_t creds[DRV_PULLSECRET_MAX_CREDS]; /* point into the strings below */
    size_t n;
    char *strings[3 * DRV_PULLSECRET_MAX_CREDS]; /* owned; the passwords wiped on free */
    size_t n_strings;
    char missing[256]; /* the names of the imagePullSecrets not found, comma separated */
} drv_pull_creds_t;

/* Adds the credentials of one Secret config (the decoded .dockerconfigjson, or .dockercfg
 * when legacy) to c. A server key is reduced to its host[:port] ("https://index.docker.io/v1/"
 * is "docker.io"); an entry's "auth" (base64 "user:password") wins over its username and
 * password. Entries without a user name are skipped. DRV_ERR_INVALID for text that is not
 * such a JSON object (the error names what, never a value), DRV_ERR_TOOBIG over the caps. */
DRV_NODISCARD drv_err_t drv_pullsecret_parse(drv_pull_creds_t *c, const char *text, size_t len,
                                             bool legacy, const char *what, drv_error_t *err);

/* The credentials of every imagePullSecrets entry of the normalized pod, in order, from
 * secrets (name -> opened Secret: data base64). A Secret that is missing is named in
 * c->missing (the pull goes on without it, as the kubelet's); one of another type is skipped;
 * one whose content does not parse fails with an error naming it. Free with
 * drv_pullsecret_free (also after a failure). */
DRV_NODISCARD drv_err_t drv_pullsecret_creds(const cJSON *pod, const cJSON *secrets,
                                             drv_pull_creds_t *c, drv_error_t *err);

void drv_pullsecret_free(drv_pull_creds_t *c);

#endif

/* The bridge's signer: encodes, signs (ECDSA P-256, about 0.7 ms a document) and hands to the
 * MQTT client every desired-state document on a thread of its own, so that the hub's loop only
 * builds the tree. One job per node waits at most: a node whose document changes again before
 * its turn gets only the newest (coalescing). The queue is bounded; when it is full the loop
 * keeps the node marked and tries again on a later tick, it never waits. */
#include "bridge/bridge_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/proc.h"
#include "mqtt.h"

struct bsign_job {
    struct bsign_job *next;
    bnode_t *node; /* the loop's: carried back in the result, never read here */
    char name[DRV_PROTO_NODE_MAX + 1];
    cJSON *doc; /* owned; NULL once done */
    uint64_t gen, seq;
    drv_digest_t sum;
    /* results */
    drv_err_t rc;
    size_t len;
    char *payload; /* kept only without an MQTT client (tests) */
    char msg[DRV_ERROR_MSG_MAX];
};

struct bsigner {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* work queued, or stop */
    pthread_t thr;
    bool started, stop;
    drv_hsign_t *sign;     /* NULL: unsigned */
    struct drv_mqtt *mqtt; /* borrowed */
    size_t max_waiting;
    bsign_job_t *head, *tail; /* waiting, oldest first */
    size_t nwaiting;
    bsign_job_t *done_head, *done_tail; /* finished, for bsigner_collect */
    size_t running;                     /* 0 or 1: a job being signed */
    bsigner_stats_t stats;
};

static void job_free(bsign_job_t *j)
{
    if (j) {
        cJSON_Delete(j->doc);
        free(j->payload);
        free(j);
    }
}

/* Signs and publishes one job (no lock held). A publish the MQTT client cannot queue yet (its
 * outgoing queue is full) is retried: waiting here is back-pressure onto the queue above, not
 * onto the loop. */
static void run_job(bsigner_t *s, bsign_job_t *j)
{
    drv_error_t err = DRV_ERROR_INIT;
    size_t len = 0;
    char *payload = bdesired_finish(s->sign, j->name, j->doc, &len, &err);
    cJSON_Delete(j->doc);
    j->doc = NULL;
    char topic[DRV_PROTO_TOPIC_MAX];
    drv_err_t e =
        payload ? drv_proto_topic(topic, sizeof(topic), j->name, DRV_PROTO_DESIRED, NULL, &err)
                : err.code;
    while (e == DRV_OK) {
        e = s->mqtt ? drv_mqtt_publish(s->mqtt, topic, payload, len,
                                       drv_proto_qos(DRV_PROTO_DESIRED), true, &err)
                    : DRV_OK; /* (unit tests: no client) */
        if (e != DRV_ERR_AGAIN)
            break;
        pthread_mutex_lock(&s->mu);
        bool stop = s->stop;
        s->stats.publish_waits++;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        drv_error_clear(&err);
        e = DRV_OK; /* try again after the wait (without this, the loop gave up after one) */
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!s->mqtt && e == DRV_OK)
        j->payload = TAKE_PTR(payload);
    free(payload);
    j->rc = e == DRV_OK ? DRV_OK : (e ? e : DRV_ERR_IO);
    j->len = len;
    if (e != DRV_OK)
        drv_fmt_cut(j->msg, sizeof(j->msg), "%s", drv_error_msg(&err));
}

static void *signer_main(void *arg)
{
    bsigner_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && !s->head)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop)
            break;
        bsign_job_t *j = s->head;
        s->head = j->next;
        if (!s->head)
            s->tail = NULL;
        s->nwaiting--;
        j->node->sign_waiting = NULL; /* a newer document now queues behind this one */
        s->running = 1;
        pthread_mutex_unlock(&s->mu);
        run_job(s, j);
        pthread_mutex_lock(&s->mu);
        s->running = 0;
        s->stats.done++;
        j->next = NULL;
        if (s->done_tail)
            s->done_tail->next = j;
        else
            s->done_head = j;
        s->done_tail = j;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

drv_err_t bsigner_new(const char *signing_key, struct drv_mqtt *mqtt, size_t max_waiting,
                      bool thread, bsigner_t **out, drv_error_t *err)
{
    bsigner_t *s = calloc(1, sizeof(*s));
    if (!s)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "bridge: signer");
    if (signing_key && drv_hsign_new(signing_key, &s->sign, err) != DRV_OK) {
        free(s);
        return err ? err->code : DRV_ERR_INVALID;
    }
    s->mqtt = mqtt;
    s->max_waiting = max_waiting ? max_waiting : 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (thread) {
        if (pthread_create(&s->thr, NULL, signer_main, s) != 0) {
            pthread_cond_destroy(&s->cv);
            pthread_mutex_destroy(&s->mu);
            drv_hsign_free(s->sign);
            free(s);
            return drv_error_set(err, DRV_ERR_IO, 0, "bridge: signer thread");
        }
        s->started = true;
    }
    *out = s;
    return DRV_OK;
}

drv_err_t bsigner_submit(bsigner_t *s, bnode_t *n, cJSON *doc, uint64_t gen,
                         const drv_digest_t *sum, drv_error_t *err)
{
    pthread_mutex_lock(&s->mu);
    bsign_job_t *j = n->sign_waiting;
    if (j) { /* coalesce: the waiting one is replaced in its place in the queue */
        cJSON_Delete(j->doc);
        j->doc = doc;
        j->gen = gen;
        j->sum = *sum;
        j->seq = ++n->sign_seq;
        s->stats.coalesced++;
        pthread_mutex_unlock(&s->mu);
        return DRV_OK;
    }
    if (s->nwaiting >= s->max_waiting) {
        s->stats.full++;
        pthread_mutex_unlock(&s->mu);
        cJSON_Delete(doc);
        return drv_error_set(err, DRV_ERR_AGAIN, 0, "bridge: %zu documents wait to be signed",
                             s->max_waiting);
    }
    j = calloc(1, sizeof(*j));
    if (!j || drv_fmt(j->name, sizeof(j->name), "%s", n->name) != DRV_OK) {
        pthread_mutex_unlock(&s->mu);
        free(j);
        cJSON_Delete(doc);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "bridge: signer job for %s", n->name);
    }
    j->node = n;
    j->doc = doc;
    j->gen = gen;
    j->sum = *sum;
    j->seq = ++n->sign_seq;
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->nwaiting++;
    s->stats.submitted++;
    n->sign_waiting = j;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return DRV_OK;
}

void bsigner_run_one(bsigner_t *s)
{
    pthread_mutex_lock(&s->mu);
    bsign_job_t *j = s->started ? NULL : s->head;
    if (j) {
        s->head = j->next;
        if (!s->head)
            s->tail = NULL;
        s->nwaiting--;
        j->node->sign_waiting = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (!j)
        return;
    run_job(s, j);
    pthread_mutex_lock(&s->mu);
    s->stats.done++;
    j->next = NULL;
    if (s->done_tail)
        s->done_tail->next = j;
    else
        s->done_head = j;
    s->done_tail = j;
    pthread_mutex_unlock(&s->mu);
}

size_t bsigner_collect(bsigner_t *s, bsigner_result_fn cb, void *ctx)
{
    pthread_mutex_lock(&s->mu);
    bsign_job_t *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    size_t n = 0;
    for (bsign_job_t *j = list, *next; j; j = next, n++) {
        next = j->next;
        bsigner_result_t r = {.node = j->node,
                              .generation = j->gen,
                              .sum = &j->sum,
                              .latest = j->seq == j->node->sign_seq,
                              .rc = j->rc,
                              .len = j->len,
                              .payload = j->payload,
                              .error = j->rc == DRV_OK ? NULL : j->msg};
        cb(ctx, &r);
        job_free(j);
    }
    return n;
}

size_t bsigner_pending(bsigner_t *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nwaiting + s->running + (s->done_head != NULL);
    pthread_mutex_unlock(&s->mu);
    return n;
}

void bsigner_stats(bsigner_t *s, bsigner_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    out->waiting = s->nwaiting;
    pthread_mutex_unlock(&s->mu);
}

void bsigner_free(bsigner_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started)
        pthread_join(s->thr, NULL);
    /* What still waits is dropped: the next hub run republishes every document. */
    for (bsign_job_t *j = s->head, *next; j; j = next) {
        next = j->next;
        j->node->sign_waiting = NULL;
        job_free(j);
    }
    for (bsign_job_t *j = s->done_head, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    drv_hsign_free(s->sign);
    free(s);
}

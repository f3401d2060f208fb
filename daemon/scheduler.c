/* scheduler.c: see scheduler.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler.h"

#define SCHED_TICK_MS 500
#define PLACEMENTS_PER_COMMAND 512

struct jd_scheduler {
    struct jr_node *node;
    struct jd_state *state;
    const struct jacod_sched_ops *ops; /* NULL: no place() */
    void *plugin_state;
    int64_t reschedule_after_ms;
    void (*log)(int level, const char *message);
    uv_timer_t timer;
    bool said_none;
    bool leading;
    uint64_t observing_since_ms; /* monotonic: this node's view began */
    uint64_t last_tick_ms;
    /* The apply callback runs on the library's loop thread. */
    uv_mutex_t mutex;
    bool in_flight;
    struct jr_apply req;
    char *cmd;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool known_host(const struct jd_sched_hosts *h, const char *name)
{
    size_t i;
    for (i = 0; i < h->n; i++) {
        if (strcmp(h->hosts[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

int jd_scheduler_pass(const struct jacod_sched_ops *ops,
                      void *plugin_state,
                      struct jd_sched_hosts *hosts,
                      struct jd_sched_view *view,
                      int64_t reschedule_after_ms,
                      struct jd_placement *out,
                      unsigned max)
{
    struct jacod_sched_input in;
    size_t i;
    unsigned n = 0;
    int rv;
    memset(&in, 0, sizeof in);
    in.size = sizeof in;
    in.hosts = (const struct jacod_sched_host *const *)hosts->ptrs;
    in.n_hosts = hosts->n;
    in.replicas = view->ptrs;
    in.n_replicas = view->n;
    in.reschedule_after_ms = reschedule_after_ms;
    if ((rv = ops->place(plugin_state, &in)) != 0) {
        return rv;
    }
    for (i = 0; i < view->n && n < max; i++) {
        struct jd_sched_slot *sl = &view->slots[i];
        struct jd_placement *p = &out[n];
        /* A plugin's answer is checked like any input: a place it
         * invented is ignored. */
        sl->r.place[sizeof sl->r.place - 1] = '\0';
        sl->r.reason[sizeof sl->r.reason - 1] = '\0';
        if (sl->r.place[0] != '\0' && strcmp(sl->r.place, sl->host) != 0 &&
            !known_host(hosts, sl->r.place)) {
            continue;
        }
        if (strcmp(sl->r.place, sl->host) == 0 &&
            (sl->r.place[0] != '\0' || strcmp(sl->r.reason, sl->reason) == 0)) {
            continue; /* unchanged */
        }
        memcpy(p->deployment, sl->deployment, sizeof p->deployment);
        memcpy(p->service, sl->service, sizeof p->service);
        p->ordinal = sl->r.ordinal;
        p->revision = sl->revision;
        (void)snprintf(p->host, sizeof p->host, "%s", sl->r.place);
        (void)snprintf(p->reason, sizeof p->reason, "%s",
                       sl->r.place[0] != '\0' ? "" : sl->r.reason);
        n++;
    }
    return (int)n;
}

static void place_done(struct jr_apply *req,
                       int status,
                       const void *result,
                       size_t result_len)
{
    struct jd_scheduler *s = req->data;
    (void)status;
    (void)result;
    (void)result_len;
    uv_mutex_lock(&s->mutex);
    free(s->cmd);
    s->cmd = NULL;
    s->in_flight = false;
    uv_mutex_unlock(&s->mutex);
}

/* How long each unreachable host has been so, as this leader saw it: its
 * own last contact with the peer, never more than the time it has been
 * watching (a new leader, or one that was paused, starts afresh: the
 * cluster state's last-seen times may be stale by many seconds). */
static void unreachable_for(struct jd_scheduler *s,
                            const struct jr_status *st,
                            struct jd_sched_hosts *hosts,
                            uint64_t now)
{
    int64_t watching = (int64_t)(now - s->observing_since_ms);
    size_t i, k;
    for (i = 0; i < hosts->n; i++) {
        int64_t ms = watching;
        if (hosts->hosts[i].state != JACOD_HOST_UNREACHABLE) {
            continue;
        }
        for (k = 0; k < st->n_peers; k++) {
            if (st->peers[k].id == hosts->ids[i] &&
                st->peers[k].last_contact_ms >= 0 &&
                st->peers[k].last_contact_ms < ms) {
                ms = st->peers[k].last_contact_ms;
            }
        }
        hosts->hosts[i].unreachable_ms = ms;
    }
}

static void tick(uv_timer_t *t)
{
    struct jd_scheduler *s = t->data;
    struct jd_placement *out = NULL;
    struct jd_sched_hosts hosts;
    struct jd_sched_view view;
    struct jr_status *st;
    char *cmd;
    size_t len;
    bool busy, leader;
    uint64_t now = uv_now(t->loop);
    int n;
    uv_mutex_lock(&s->mutex);
    busy = s->in_flight;
    uv_mutex_unlock(&s->mutex);
    if (busy || jr_node_status(s->node, &st) != 0) {
        return;
    }
    leader = st->state == JR_STATE_LEADER;
    if (!leader || !s->leading || now - s->last_tick_ms > 5 * SCHED_TICK_MS) {
        s->observing_since_ms = now;
    }
    s->leading = leader;
    s->last_tick_ms = now;
    if (!leader) {
        jr_status_free(st);
        return;
    }
    if (s->ops == NULL) {
        jr_status_free(st);
        if (!s->said_none) {
            s->log(JR_LOG_WARN,
                   "this node leads but has no scheduler plugin "
                   "with a place function: replicas are not "
                   "placed while it leads");
            s->said_none = true;
        }
        return;
    }
    if (jd_state_sched_hosts(s->state, &hosts) != 0) {
        jr_status_free(st);
        return;
    }
    unreachable_for(s, st, &hosts, now);
    jr_status_free(st);
    if (jd_state_sched_view(s->state, &view) != 0) {
        jd_sched_hosts_free(&hosts);
        return;
    }
    if (view.n > 0 &&
        (out = calloc(PLACEMENTS_PER_COMMAND, sizeof *out)) != NULL) {
        n = jd_scheduler_pass(s->ops, s->plugin_state, &hosts, &view,
                              s->reschedule_after_ms, out,
                              PLACEMENTS_PER_COMMAND);
        if (n < 0) {
            char msg[256];
            (void)snprintf(msg, sizeof msg, "scheduler plugin: place: %s",
                           jr_strerror(n));
            s->log(JR_LOG_WARN, msg);
        } else if (n > 0 && jd_cmd_sched_place(out, (unsigned)n,
                                               "jacod (leader's scheduler)",
                                               wall_ms(), &cmd, &len) == 0) {
            uv_mutex_lock(&s->mutex);
            s->in_flight = true;
            s->cmd = cmd;
            uv_mutex_unlock(&s->mutex);
            memset(&s->req, 0, sizeof s->req);
            s->req.data = s;
            if (jr_apply(s->node, &s->req, cmd, len, place_done) != 0) {
                uv_mutex_lock(&s->mutex);
                free(s->cmd);
                s->cmd = NULL;
                s->in_flight = false;
                uv_mutex_unlock(&s->mutex);
            }
        }
    }
    free(out);
    jd_sched_view_free(&view);
    jd_sched_hosts_free(&hosts);
}

struct jd_scheduler *jd_scheduler_start(uv_loop_t *loop,
                                        struct jr_node *node,
                                        struct jd_state *state,
                                        const struct jd_plugin *sched,
                                        unsigned reschedule_after_s,
                                        void (*log)(int level,
                                                    const char *message))
{
    const struct jacod_sched_ops *ops = jd_plugin_sched_ops(sched);
    struct jd_scheduler *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->node = node;
    s->state = state;
    if (JD_PLUGIN_HAS(ops, place)) {
        s->ops = ops;
        s->plugin_state = sched->state;
    }
    s->reschedule_after_ms = (int64_t)reschedule_after_s * 1000;
    s->log = log;
    uv_mutex_init(&s->mutex);
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, tick, SCHED_TICK_MS, SCHED_TICK_MS);
    return s;
}

static void closed_cb(uv_handle_t *h)
{
    (void)h;
}

void jd_scheduler_stop(struct jd_scheduler *s)
{
    if (s != NULL) {
        uv_close((uv_handle_t *)&s->timer, closed_cb);
    }
}

void jd_scheduler_free(struct jd_scheduler *s)
{
    if (s == NULL) {
        return;
    }
    uv_mutex_destroy(&s->mutex);
    free(s->cmd);
    free(s);
}

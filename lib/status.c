/* status.c: a consistent picture of the node, taken on its loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jr_internal.h"

const char *jr_role_name(int role)
{
    switch (role) {
        case JR_ROLE_VOTER: return "voter";
        case JR_ROLE_STANDBY: return "standby";
        case JR_ROLE_SPARE: return "spare";
        default: return "unknown";
    }
}

const char *jr_state_name(int state)
{
    switch (state) {
        case JR_STATE_FOLLOWER: return "follower";
        case JR_STATE_CANDIDATE: return "candidate";
        case JR_STATE_LEADER: return "leader";
        default: return "unavailable";
    }
}

struct status_op {
    struct jr__op op;
    struct jr__waiter w;
    struct jr_status *st;
};

static void fill(struct jr_node *n, struct jr_status *st)
{
    struct raft *r = &n->raft;
    raft_id leader;
    const char *leader_address;
    unsigned i;
    char why[JR_ERRMSG_SIZE];

    st->id = n->cfg.id;
    (void)snprintf(st->name, sizeof st->name, "%s", n->name);
    (void)snprintf(st->address, sizeof st->address, "%s", n->address);
    (void)snprintf(st->cluster_id, sizeof st->cluster_id, "%s", n->cluster_id);
    st->state = raft_state(r);
    st->term = r->current_term;
    raft_leader(r, &leader, &leader_address);
    st->leader_id = leader;
    (void)snprintf(st->leader_address, sizeof st->leader_address, "%s",
                   leader != 0 && leader_address != NULL ? leader_address : "");
    st->commit_index = r->commit_index;
    st->applied_index = r->last_applied;
    st->last_index = raft_last_index(r);
    st->snapshot_index = r->log.snapshot.last_index;
    st->loop_busy_max_us = n->loop_busy_max_ns / 1000;
    st->loop_slow_turns = n->loop_slow_turns;
    st->auth_failures = n->auth_failures;
    st->data_dir_lost = n->datadir_lost;
    st->disk_error = jr__io_disk_error(n);
    st->partially_synced = n->partially_synced;
    st->health = jr__health(n, why);
    if (st->health == JR_ESTATE) {
        st->health = 0;
    }
    for (i = 0; i < st->n_peers; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        struct jr_peer_status *p = &st->peers[i];
        int64_t age = jr__contact_age(n, s->id);
        p->id = s->id;
        (void)snprintf(p->name, sizeof p->name, "%s",
                       jr__contact_name_of(n, s->id));
        (void)snprintf(p->address, sizeof p->address, "%s", s->address);
        p->role = s->role;
        p->last_contact_ms = age;
        p->reachable = age >= 0 && age <= (int64_t)n->cfg.election_timeout_ms;
        if (r->state == RAFT_LEADER && r->leader_state.progress != NULL) {
            p->match_index = s->id == r->id
                                 ? raft_last_index(r)
                                 : r->leader_state.progress[i].match_index;
        }
    }
}

static void status_run(struct jr_node *n, struct jr__op *op)
{
    struct status_op *s = (struct status_op *)op;
    struct jr_status *st;
    unsigned count = n->raft.configuration.n;
    st = calloc(1,
                sizeof *st + count * (sizeof *st->peers + sizeof *st->details));
    if (st == NULL) {
        jr__waiter_finish(&s->w, JR_ENOMEM, "status: out of memory");
        return;
    }
    st->n_peers = count;
    st->peers = (struct jr_peer_status *)(st + 1);
    st->details = (struct jr_peer_detail *)(st->peers + count);
    fill(n, st);
    jr__reconciler_why(n, st, st->details);
    s->st = st;
    jr__waiter_finish(&s->w, 0, NULL);
}

int jr_node_status(struct jr_node *n, struct jr_status **out)
{
    struct status_op s;
    int rv;
    if (n == NULL || out == NULL) {
        return JR_EINVAL;
    }
    if (jr__on_loop_thread(n)) {
        return JR_EDEADLK;
    }
    memset(&s, 0, sizeof s);
    jr__waiter_init(&s.w);
    s.op.run = status_run;
    rv = jr__post(n, &s.op);
    if (rv == 0) {
        (void)jr__waiter_wait(&s.w, 0);
        rv = s.w.status;
        if (rv == 0) {
            *out = s.st;
        }
    }
    jr__waiter_close(&s.w);
    return rv;
}

void jr_status_free(struct jr_status *st)
{
    free(st);
}

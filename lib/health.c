/* health.c: why a write would fail now. Keeps "no leader" (an election is
 * running among a reachable majority: retry soon) apart from "quorum lost"
 * (this node has not heard from a majority of voters within an election
 * timeout: retrying will not help). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jr_internal.h"

struct jr__contact *jr__contact_get(struct jr_node *n, uint64_t id)
{
    unsigned i;
    struct jr__contact *c;
    for (i = 0; i < n->n_contacts; i++) {
        if (n->contacts[i].id == id) {
            return &n->contacts[i];
        }
    }
    c = realloc(n->contacts, (n->n_contacts + 1) * sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    n->contacts = c;
    c = &c[n->n_contacts++];
    memset(c, 0, sizeof *c);
    c->id = id;
    return c;
}

void jr__contact_seen(struct jr_node *n, uint64_t id)
{
    struct jr__contact *c = jr__contact_get(n, id);
    if (c != NULL) {
        c->last_recv = jr__now(n);
    }
}

void jr__contact_name(struct jr_node *n,
                      uint64_t id,
                      const char *name,
                      const char *zone)
{
    struct jr__contact *c = jr__contact_get(n, id);
    if (c != NULL) {
        (void)snprintf(c->name, sizeof c->name, "%s", name);
        (void)snprintf(c->zone, sizeof c->zone, "%s", zone);
    }
}

const char *jr__contact_zone_of(struct jr_node *n, uint64_t id)
{
    unsigned i;
    if (id == n->cfg.id) {
        return n->cfg.zone != NULL ? n->cfg.zone : "";
    }
    for (i = 0; i < n->n_contacts; i++) {
        if (n->contacts[i].id == id) {
            return n->contacts[i].zone;
        }
    }
    return "";
}

const char *jr__contact_name_of(struct jr_node *n, uint64_t id)
{
    unsigned i;
    if (id == n->cfg.id) {
        return n->name;
    }
    for (i = 0; i < n->n_contacts; i++) {
        if (n->contacts[i].id == id) {
            return n->contacts[i].name;
        }
    }
    return "";
}

int64_t jr__contact_age(struct jr_node *n, uint64_t id)
{
    unsigned i;
    if (id == n->raft.id) {
        return 0;
    }
    for (i = 0; i < n->n_contacts; i++) {
        if (n->contacts[i].id == id && n->contacts[i].last_recv != 0) {
            return (int64_t)(jr__now(n) - n->contacts[i].last_recv);
        }
    }
    return -1;
}

int jr__health(struct jr_node *n, char *errmsg)
{
    struct raft_configuration *conf = &n->raft.configuration;
    raft_id leader;
    const char *address;
    unsigned voters = 0, reachable = 0, i;
    int64_t window = n->cfg.election_timeout_ms;

    if (n->raft.state == RAFT_UNAVAILABLE) {
        jr__errf(errmsg, "the node is not running");
        return JR_ESTATE;
    }
    if (conf->n == 0) {
        jr__errf(errmsg,
                 "this node is not a member of a cluster yet: "
                 "bootstrap it or join it to one");
        return JR_ESTATE;
    }
    raft_leader(&n->raft, &leader, &address);
    if (leader != 0 && n->raft.state != RAFT_LEADER) {
        return 0;
    }
    for (i = 0; i < conf->n; i++) {
        int64_t age;
        if (conf->servers[i].role != RAFT_VOTER) {
            continue;
        }
        voters++;
        age = jr__contact_age(n, conf->servers[i].id);
        if (age >= 0 && age <= window) {
            reachable++;
        }
    }
    if (reachable * 2 > voters && leader != 0) {
        return 0;
    }
    if (n->raft.state == RAFT_LEADER) {
        /* A leader cut off from its voters steps down only after an
         * election timeout; a write appended meanwhile would end in an
         * ambiguous leadership_lost. Refuse it while nothing is written. */
        jr__errf(errmsg,
                 "quorum lost: this leader has heard from %u of %u voters "
                 "within %lld ms, %u are needed; see jaco-recovery(7)",
                 reachable, voters, (long long)window, voters / 2 + 1);
        return JR_EQUORUMLOST;
    }
    if (reachable * 2 > voters) {
        jr__errf(errmsg,
                 "no leader: an election is in progress (term %llu, %u of %u "
                 "voters reachable); retry soon",
                 (unsigned long long)n->raft.current_term, reachable, voters);
        return JR_ENOLEADER;
    }
    jr__errf(errmsg,
             "quorum lost: this node reaches %u of %u voters, %u are needed; "
             "see jaco-recovery(7)",
             reachable, voters, voters / 2 + 1);
    return JR_EQUORUMLOST;
}

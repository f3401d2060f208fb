/* reconcile.c: the leader's voter-set reconciler (see reconcile.h). */
#include "reconcile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jr_internal.h"

void jr__rc_policy_init(struct jr__rc_policy *p)
{
    memset(p, 0, sizeof *p);
    p->max_voters = 5;
    p->stable_ms = 10000;
    p->max_lag = 1024;
    p->dead_after_ms = 0;
}

/* ---- the picture the planner works on ---- */

struct view {
    const struct jr__rc_member *m;
    unsigned n;
    uint64_t leader_id;
    uint64_t last_index;
    uint64_t now_ms;
    const struct jr__rc_policy *p;
    int leader;       /* index of the leader in m, -1 if absent */
    unsigned members; /* voters + standbys, not leaving */
    unsigned target;
    unsigned voters;    /* all voters, leaving ones too */
    unsigned leaving;   /* leaving voters */
    unsigned reachable; /* reachable voters, the leader included */
    unsigned eligible;  /* standbys that may be promoted now */
};

enum standby_state {
    SB_ELIGIBLE,
    SB_NOT_STANDBY, /* a voter or a spare */
    SB_LEAVING,
    SB_UNREACHABLE,
    SB_LAGGING,
    SB_UNSTABLE
};

static uint64_t elapsed_ms(const struct view *v, const struct jr__rc_member *m)
{
    return v->now_ms > m->since_ms ? v->now_ms - m->since_ms : 0;
}

static bool is_leader(const struct view *v, const struct jr__rc_member *m)
{
    return m->id == v->leader_id;
}

static bool is_reachable(const struct view *v, const struct jr__rc_member *m)
{
    return is_leader(v, m) || m->reachable;
}

static uint64_t lag_of(const struct view *v, const struct jr__rc_member *m)
{
    if (is_leader(v, m) || m->match_index >= v->last_index) {
        return 0;
    }
    return v->last_index - m->match_index;
}

static enum standby_state standby_state(const struct view *v,
                                        const struct jr__rc_member *m)
{
    if (m->role != RAFT_STANDBY || is_leader(v, m)) {
        return SB_NOT_STANDBY;
    }
    if (m->leaving) {
        return SB_LEAVING;
    }
    if (!m->reachable) {
        return SB_UNREACHABLE;
    }
    if (lag_of(v, m) > v->p->max_lag) {
        return SB_LAGGING;
    }
    if (elapsed_ms(v, m) < v->p->stable_ms) {
        return SB_UNSTABLE;
    }
    return SB_ELIGIBLE;
}

/* Voters that stay (not leaving) in m's zone. */
static unsigned zone_voters(const struct view *v, const struct jr__rc_member *m)
{
    unsigned i, count = 0;
    for (i = 0; i < v->n; i++) {
        const struct jr__rc_member *o = &v->m[i];
        if (o->role == RAFT_VOTER && !o->leaving &&
            strcmp(o->zone, m->zone) == 0) {
            count++;
        }
    }
    return count;
}

static unsigned target_of(unsigned members, unsigned max_voters)
{
    unsigned t = members < max_voters ? members : max_voters;
    if (t == 0) {
        return 1;
    }
    return t % 2 == 1 ? t : t - 1;
}

static unsigned max_voters_of(const struct jr__rc_policy *p)
{
    return p->max_voters == 0 ? 1 : p->max_voters;
}

static void view_init(struct view *v,
                      const struct jr__rc_member *m,
                      unsigned n,
                      uint64_t leader_id,
                      uint64_t last_index,
                      uint64_t now_ms,
                      const struct jr__rc_policy *p)
{
    unsigned i;
    memset(v, 0, sizeof *v);
    v->m = m;
    v->n = n;
    v->leader_id = leader_id;
    v->last_index = last_index;
    v->now_ms = now_ms;
    v->p = p;
    v->leader = -1;
    for (i = 0; i < n; i++) {
        const struct jr__rc_member *s = &m[i];
        if (is_leader(v, s)) {
            v->leader = (int)i;
        }
        if ((s->role == RAFT_VOTER || s->role == RAFT_STANDBY) && !s->leaving) {
            v->members++;
        }
        if (s->role == RAFT_VOTER) {
            v->voters++;
            v->leaving += s->leaving ? 1 : 0;
            v->reachable += is_reachable(v, s) ? 1 : 0;
        }
        if (standby_state(v, s) == SB_ELIGIBLE) {
            v->eligible++;
        }
    }
    v->target = target_of(v->members, max_voters_of(p));
}

unsigned jr__reconcile_target(const struct jr__rc_member *m,
                              unsigned n,
                              const struct jr__rc_policy *p)
{
    struct view v;
    view_init(&v, m, n, 0, 0, 0, p);
    return v.target;
}

/* A majority of a set of voters: what quorum needs. */
static unsigned majority(unsigned voters)
{
    return voters / 2 + 1;
}

/* ---- ranking ---- */

/* Negative if a should be promoted before b. */
static int promote_cmp(const struct view *v,
                       const struct jr__rc_member *a,
                       const struct jr__rc_member *b)
{
    unsigned za = zone_voters(v, a), zb = zone_voters(v, b);
    if (za != zb) {
        return za < zb ? -1 : 1; /* spread voters across zones */
    }
    if (a->match_index != b->match_index) {
        return a->match_index > b->match_index ? -1 : 1;
    }
    return a->id < b->id ? -1 : (a->id > b->id ? 1 : 0);
}

/* Negative if a should be demoted before b. Ties never pick the leader:
 * a transfer costs an election's worth of unavailability for nothing. */
static int demote_cmp(const struct view *v,
                      const struct jr__rc_member *a,
                      const struct jr__rc_member *b)
{
    bool ra = is_reachable(v, a), rb = is_reachable(v, b);
    unsigned za, zb;
    if (a->leaving != b->leaving) {
        return a->leaving ? -1 : 1;
    }
    if (ra != rb) {
        return ra ? 1 : -1;
    }
    za = zone_voters(v, a);
    zb = zone_voters(v, b);
    if (za != zb) {
        return za > zb ? -1 : 1; /* the most crowded zone first */
    }
    if (lag_of(v, a) != lag_of(v, b)) {
        return lag_of(v, a) > lag_of(v, b) ? -1 : 1;
    }
    if (is_leader(v, a) != is_leader(v, b)) {
        return is_leader(v, a) ? 1 : -1;
    }
    return a->id > b->id ? -1 : (a->id < b->id ? 1 : 0);
}

/* Negative if a makes a better leadership transfer target than b. */
static int transfer_cmp(const struct view *v,
                        const struct jr__rc_member *a,
                        const struct jr__rc_member *b)
{
    (void)v;
    if (a->match_index != b->match_index) {
        return a->match_index > b->match_index ? -1 : 1;
    }
    return a->id < b->id ? -1 : (a->id > b->id ? 1 : 0);
}

/* Dead members: voters first (they weigh on quorum), the longest
 * unreachable first, then by id. */
static int dead_cmp(const struct view *v,
                    const struct jr__rc_member *a,
                    const struct jr__rc_member *b)
{
    bool va = a->role == RAFT_VOTER, vb = b->role == RAFT_VOTER;
    (void)v;
    if (va != vb) {
        return va ? -1 : 1;
    }
    if (a->since_ms != b->since_ms) {
        return a->since_ms < b->since_ms ? -1 : 1;
    }
    return a->id < b->id ? -1 : (a->id > b->id ? 1 : 0);
}

typedef bool (*pick_filter)(const struct view *v,
                            const struct jr__rc_member *m);
typedef int (*pick_cmp)(const struct view *v,
                        const struct jr__rc_member *a,
                        const struct jr__rc_member *b);

/* The index of the best member passing keep that ranks after prev (-1:
 * from the start), or -1. Every cmp ends on the (unique) id, so this walks
 * a total order; quadratic, but configurations are a handful of servers
 * and there is no array to size. */
static int next_ranked(const struct view *v,
                       pick_filter keep,
                       pick_cmp cmp,
                       int prev)
{
    int best = -1;
    unsigned i;
    for (i = 0; i < v->n; i++) {
        const struct jr__rc_member *x = &v->m[i];
        if (!keep(v, x) || (prev >= 0 && cmp(v, &v->m[prev], x) >= 0)) {
            continue;
        }
        if (best < 0 || cmp(v, x, &v->m[best]) < 0) {
            best = (int)i;
        }
    }
    return best;
}

static bool keep_eligible(const struct view *v, const struct jr__rc_member *m)
{
    return standby_state(v, m) == SB_ELIGIBLE;
}

static bool keep_voter(const struct view *v, const struct jr__rc_member *m)
{
    (void)v;
    return m->role == RAFT_VOTER;
}

static bool keep_transfer_target(const struct view *v,
                                 const struct jr__rc_member *m)
{
    return m->role == RAFT_VOTER && !is_leader(v, m) && !m->leaving &&
           m->reachable && lag_of(v, m) <= v->p->max_lag;
}

static bool keep_dead(const struct view *v, const struct jr__rc_member *m)
{
    return v->p->dead_after_ms != 0 && !is_leader(v, m) && !m->reachable &&
           elapsed_ms(v, m) > v->p->dead_after_ms;
}

/* ---- planning ---- */

static void set(struct jr__rc_action *out,
                enum jr__rc_kind kind,
                uint64_t id,
                const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

static void set(struct jr__rc_action *out,
                enum jr__rc_kind kind,
                uint64_t id,
                const char *fmt,
                ...)
{
    va_list ap;
    out->kind = kind;
    out->id = id;
    va_start(ap, fmt);
    /* A reason cut at JR_ERRMSG_SIZE still reads. */
    (void)vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
}

static unsigned long long ull(uint64_t x)
{
    return (unsigned long long)x;
}

/* Whether a promotion now keeps the voter count able to end odd: it lands
 * on an odd count, or a second eligible standby or a leaving voter can
 * take the next step. */
static bool parity_ok(const struct view *v)
{
    return (v->voters + 1) % 2 == 1 || v->eligible >= 2 || v->leaving > 0;
}

/* Dead-node cleanup; true if it decided. *blocked is set when a dead
 * member is kept only by the quorum guard. */
static bool plan_remove(const struct view *v,
                        struct jr__rc_action *out,
                        char *blocked,
                        size_t size)
{
    int k;
    for (k = next_ranked(v, keep_dead, dead_cmp, -1); k >= 0;
         k = next_ranked(v, keep_dead, dead_cmp, k)) {
        const struct jr__rc_member *d = &v->m[k];
        unsigned after = v->voters - (d->role == RAFT_VOTER ? 1 : 0);
        /* d is unreachable, so the reachable voters stay as they are. */
        if (after >= 1 && v->reachable >= majority(after)) {
            set(out, JR__RC_REMOVE, d->id,
                "remove %llu: unreachable for %llu s (dead after %u s); %u "
                "of %u voters reachable afterwards",
                ull(d->id), ull(elapsed_ms(v, d) / 1000),
                v->p->dead_after_ms / 1000, v->reachable, after);
            return true;
        }
        if (blocked[0] == '\0') {
            (void)snprintf(blocked, size,
                           "%llu unreachable for %llu s but removing it "
                           "would leave %u reachable of %u voters",
                           ull(d->id), ull(elapsed_ms(v, d) / 1000),
                           v->reachable, after);
        }
    }
    return false;
}

static bool plan_promote(const struct view *v,
                         struct jr__rc_action *out,
                         char *note,
                         size_t size)
{
    const struct jr__rc_member *s;
    int best;
    unsigned stay = v->voters - v->leaving;
    if (stay >= v->target) {
        return false;
    }
    best = next_ranked(v, keep_eligible, promote_cmp, -1);
    if (best < 0) {
        (void)snprintf(note, size,
                       "%u voters of target %u, no standby can be promoted",
                       stay, v->target);
        return false;
    }
    s = &v->m[best];
    if (!parity_ok(v)) {
        (void)snprintf(note, size,
                       "%u voters of target %u, but promoting %llu would "
                       "leave an even number of voters and no second "
                       "standby is eligible",
                       stay, v->target, ull(s->id));
        return false;
    }
    if (v->reachable + 1 < majority(v->voters + 1)) {
        (void)snprintf(note, size,
                       "%u voters of target %u, but only %u voters are "
                       "reachable",
                       stay, v->target, v->reachable);
        return false;
    }
    set(out, JR__RC_PROMOTE, s->id,
        "promote %llu: %u voters of target %u; it is %llu entries behind, "
        "reachable for %llu s, zone \"%s\" has %u voters",
        ull(s->id), stay, v->target, ull(lag_of(v, s)),
        ull(elapsed_ms(v, s) / 1000), s->zone, zone_voters(v, s));
    return true;
}

static bool plan_demote(const struct view *v,
                        struct jr__rc_action *out,
                        char *note,
                        size_t size)
{
    int k, to;
    /* Only above target: an even count at or below target waits for a
     * promotion, as one voter fewer would keep committed entries on fewer
     * nodes. */
    if (v->voters <= v->target) {
        return false;
    }
    for (k = next_ranked(v, keep_voter, demote_cmp, -1); k >= 0;
         k = next_ranked(v, keep_voter, demote_cmp, k)) {
        const struct jr__rc_member *d = &v->m[k];
        unsigned after = v->voters - 1;
        unsigned reach = v->reachable - (is_reachable(v, d) ? 1 : 0);
        if (after == 0 || reach < majority(after)) {
            continue;
        }
        if (is_leader(v, d)) {
            /* canonical/raft steps a demoted leader down only once the
             * change commits, and then without a successor: hand over
             * first, demote from the new leader. */
            to = next_ranked(v, keep_transfer_target, transfer_cmp, -1);
            if (to < 0) {
                (void)snprintf(note, size,
                               "leader %llu should be demoted (%u voters of "
                               "target %u) but no caught-up reachable voter "
                               "can take over",
                               ull(d->id), v->voters, v->target);
                return false;
            }
            set(out, JR__RC_TRANSFER, v->m[to].id,
                "transfer leadership from %llu to %llu before demoting "
                "%llu: %u voters of target %u%s",
                ull(d->id), ull(v->m[to].id), ull(d->id), v->voters, v->target,
                d->leaving ? ", it is leaving" : "");
            return true;
        }
        set(out, JR__RC_DEMOTE, d->id,
            "demote %llu: %u voters of target %u%s; %u of %u voters "
            "reachable afterwards",
            ull(d->id), v->voters, v->target,
            d->leaving            ? ", it is leaving"
            : !is_reachable(v, d) ? ", it is unreachable"
                                  : "",
            reach, after);
        return true;
    }
    (void)snprintf(note, size,
                   "%u voters of target %u but demoting any would "
                   "leave fewer reachable voters than a majority",
                   v->voters, v->target);
    return false;
}

static void plan(const struct view *v, struct jr__rc_action *out)
{
    char blocked[JR_ERRMSG_SIZE] = "";
    char note[JR_ERRMSG_SIZE] = "";
    memset(out, 0, sizeof *out);
    if (v->leader < 0 || v->m[v->leader].role != RAFT_VOTER) {
        set(out, JR__RC_NONE, 0,
            "leader %llu is not a voter of the configuration",
            ull(v->leader_id));
        return;
    }
    if (plan_remove(v, out, blocked, sizeof blocked)) {
        return;
    }
    if (plan_promote(v, out, note, sizeof note)) {
        return;
    }
    if (plan_demote(v, out, note, sizeof note)) {
        return;
    }
    if (note[0] != '\0') {
        set(out, JR__RC_NONE, 0, "%s%s%s", note, blocked[0] ? "; " : "",
            blocked);
    } else {
        set(out, JR__RC_NONE, 0, "%u voters of target %u%s%s", v->voters,
            v->target, blocked[0] ? "; " : "", blocked);
    }
}

void jr__reconcile_plan(const struct jr__rc_member *m,
                        unsigned n,
                        uint64_t leader_id,
                        uint64_t leader_last_index,
                        uint64_t now_ms,
                        const struct jr__rc_policy *p,
                        struct jr__rc_action *out)
{
    struct view v;
    view_init(&v, m, n, leader_id, leader_last_index, now_ms, p);
    plan(&v, out);
}

void jr__reconcile_why(const struct jr__rc_member *m,
                       unsigned n,
                       uint64_t leader_id,
                       uint64_t leader_last_index,
                       uint64_t now_ms,
                       const struct jr__rc_policy *p,
                       unsigned i,
                       char *buf,
                       size_t size)
{
    struct view v;
    struct jr__rc_action a;
    const struct jr__rc_member *s;
    const char *role;
    if (size == 0) {
        return;
    }
    if (i >= n) {
        (void)snprintf(buf, size, "unknown");
        return;
    }
    s = &m[i];
    view_init(&v, m, n, leader_id, leader_last_index, now_ms, p);
    plan(&v, &a);
    role = s->role == RAFT_VOTER     ? "voter"
           : s->role == RAFT_STANDBY ? "standby"
           : s->role == RAFT_SPARE   ? "spare"
                                     : "unknown role";
    if (a.kind == JR__RC_REMOVE && a.id == s->id) {
        (void)snprintf(buf, size, "%s: to be removed (unreachable for %llu s)",
                       role, ull(elapsed_ms(&v, s) / 1000));
    } else if (a.kind == JR__RC_TRANSFER && is_leader(&v, s)) {
        (void)snprintf(buf, size,
                       "voter: leader, handing over to %llu before its "
                       "demotion",
                       ull(a.id));
    } else if (a.kind == JR__RC_TRANSFER && a.id == s->id) {
        (void)snprintf(buf, size, "voter: taking over leadership");
    } else if (a.kind == JR__RC_DEMOTE && a.id == s->id) {
        (void)snprintf(buf, size,
                       "voter: to be demoted (%u voters of target "
                       "%u)",
                       v.voters, v.target);
    } else if (a.kind == JR__RC_PROMOTE && a.id == s->id) {
        (void)snprintf(buf, size,
                       "standby: to be promoted (%u voters of "
                       "target %u)",
                       v.voters - v.leaving, v.target);
    } else if (s->role == RAFT_VOTER) {
        if (s->never_vote) {
            (void)snprintf(buf, size,
                           "voter: never votes (backup node), to be "
                           "demoted");
        } else if (s->leaving) {
            (void)snprintf(buf, size,
                           "voter: leaving, waiting for a standby to take "
                           "its place");
        } else if (!is_reachable(&v, s)) {
            (void)snprintf(buf, size, "voter: not reachable for %llu s",
                           ull(elapsed_ms(&v, s) / 1000));
        } else {
            (void)snprintf(buf, size, "%s",
                           is_leader(&v, s) ? "voter (leader)" : "voter");
        }
    } else if (s->role == RAFT_SPARE) {
        (void)snprintf(buf, size,
                       "spare: neither votes nor replicates, "
                       "never promoted");
    } else if (s->role != RAFT_STANDBY) {
        (void)snprintf(buf, size, "%s", role);
    } else {
        switch (standby_state(&v, s)) {
            case SB_LEAVING:
                (void)snprintf(buf, size, "%s",
                               s->never_vote
                                   ? "standby: never votes (backup node)"
                                   : "standby: leaving");
                break;
            case SB_UNREACHABLE:
                (void)snprintf(buf, size, "standby: not reachable");
                break;
            case SB_LAGGING:
                (void)snprintf(buf, size,
                               "standby: waiting for catch-up (%llu entries "
                               "behind)",
                               ull(lag_of(&v, s)));
                break;
            case SB_UNSTABLE:
                (void)snprintf(buf, size, "standby: stable for %llu s of %u s",
                               ull(elapsed_ms(&v, s) / 1000),
                               p->stable_ms / 1000);
                break;
            case SB_NOT_STANDBY:
            case SB_ELIGIBLE:
                if (v.voters - v.leaving >= v.target) {
                    (void)snprintf(buf, size,
                                   "standby: voter set is full (%u of "
                                   "target %u)",
                                   v.voters - v.leaving, v.target);
                } else if (!parity_ok(&v)) {
                    (void)snprintf(buf, size,
                                   "standby: promotion would leave an even "
                                   "number of voters");
                } else if (a.kind == JR__RC_PROMOTE) {
                    (void)snprintf(buf, size,
                                   "standby: eligible, %llu is promoted "
                                   "first",
                                   ull(a.id));
                } else {
                    (void)snprintf(buf, size, "standby: eligible (%s)",
                                   a.reason);
                }
                break;
        }
    }
}

/* ---- glue to a raft instance ---- */

bool jr__reconcile_busy(const struct raft *r)
{
    return r->state != RAFT_LEADER || r->transfer != NULL ||
           r->leader_state.change != NULL ||
           r->configuration_uncommitted_index != 0;
}

int jr__reconcile_members_from_raft(struct raft *r,
                                    struct jr__rc_member *out,
                                    unsigned cap,
                                    unsigned *n,
                                    uint64_t *last_index,
                                    jr__rc_contact_cb contact,
                                    void *arg)
{
    unsigned i, count = r->configuration.n;
    if (r->state != RAFT_LEADER || r->leader_state.progress == NULL) {
        return JR_ESTATE;
    }
    if (count > cap) {
        return JR_EINVAL;
    }
    for (i = 0; i < count; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        struct jr__rc_member *m = &out[i];
        memset(m, 0, sizeof *m);
        m->id = s->id;
        m->role = s->role;
        /* progress[] is indexed like configuration.servers (status.c). */
        m->match_index = s->id == r->id
                             ? raft_last_index(r)
                             : r->leader_state.progress[i].match_index;
        if (contact != NULL) {
            contact(arg, m);
        }
        if (s->id == r->id) {
            m->reachable = true;
        }
    }
    *n = count;
    *last_index = raft_last_index(r);
    return 0;
}

static void change_cb(struct raft_change *change, int status)
{
    struct jr__rc_req *req = change->data;
    req->cb(req, jr__err_from_raft(status));
}

static void transfer_cb(struct raft_transfer *transfer)
{
    struct jr__rc_req *req = transfer->data;
    raft_id leader;
    const char *address;
    raft_leader(req->raft, &leader, &address);
    /* raft_transfer() has no status: it succeeded if the target leads. */
    req->cb(req, leader == req->action.id ? 0 : JR_ETIMEDOUT);
}

int jr__reconcile_apply(struct raft *r,
                        const struct jr__rc_action *a,
                        struct jr__rc_req *req,
                        jr__rc_cb cb)
{
    int rv;
    if (a == NULL || req == NULL || cb == NULL) {
        return JR_EINVAL;
    }
    if (jr__reconcile_busy(r)) {
        return JR_EBUSY;
    }
    req->raft = r;
    req->action = *a;
    req->cb = cb;
    memset(&req->u, 0, sizeof req->u);
    switch (a->kind) {
        case JR__RC_PROMOTE:
        case JR__RC_DEMOTE:
            req->u.change.data = req;
            rv = raft_assign(
                r, &req->u.change, a->id,
                a->kind == JR__RC_PROMOTE ? RAFT_VOTER : RAFT_STANDBY,
                change_cb);
            break;
        case JR__RC_REMOVE:
            req->u.change.data = req;
            rv = raft_remove(r, &req->u.change, a->id, change_cb);
            break;
        case JR__RC_TRANSFER:
            req->u.transfer.data = req;
            rv = raft_transfer(r, &req->u.transfer, a->id, transfer_cb);
            break;
        case JR__RC_NONE:
        default: return JR_EINVAL;
    }
    return jr__err_from_raft(rv);
}

/* ---- the node's driver (loop thread) ---- */

#define RECONCILE_EVERY_MS 500

/* Reachability of a member from the contact table, with the time it last
 * changed (tracked here: the planner wants "reachable for how long"). */
static void node_contact(void *arg, struct jr__rc_member *m)
{
    struct jr_node *n = arg;
    struct jr__contact *c = jr__contact_get(n, m->id);
    int64_t age = jr__contact_age(n, m->id);
    bool reachable = age >= 0 && age <= (int64_t)n->cfg.election_timeout_ms;
    uint64_t now = jr__now(n);
    (void)snprintf(m->zone, sizeof m->zone, "%s",
                   jr__contact_zone_of(n, m->id));
    m->reachable = reachable;
    m->never_vote = jr__libstate_never_votes(n, m->id);
    /* A backup node is out of the vote for good: to the planner, it is
     * always on its way out. */
    m->leaving =
        (m->id == n->leaving_id && now < n->leaving_until) || m->never_vote;
    if (c == NULL) {
        m->since_ms = now;
        return;
    }
    if (!c->rc_seen || c->rc_reachable != reachable) {
        c->rc_seen = true;
        c->rc_reachable = reachable;
        c->rc_since = now;
    }
    m->since_ms = c->rc_since;
}

static void node_policy(struct jr_node *n, struct jr__rc_policy *p)
{
    jr__rc_policy_init(p);
    if (n->cfg.max_voters != 0) {
        p->max_voters = n->cfg.max_voters;
    }
    if (n->cfg.promote_after_ms != 0) {
        p->stable_ms = n->cfg.promote_after_ms;
    }
    p->dead_after_ms = n->cfg.dead_node_timeout_ms;
}

static void reconciled_cb(struct jr__rc_req *req, int status)
{
    struct jr_node *n = req->data;
    n->rc_inflight = false;
    if (status != 0) {
        jr__warnf(n, "reconciler: %s of node %llu failed: %s",
                  req->action.kind == JR__RC_PROMOTE    ? "promotion"
                  : req->action.kind == JR__RC_DEMOTE   ? "demotion"
                  : req->action.kind == JR__RC_TRANSFER ? "leadership transfer"
                                                        : "removal",
                  (unsigned long long)req->action.id, jr_strerror(status));
    }
}

static void never_vote_recorded_cb(struct jr_apply *req,
                                   int status,
                                   const void *result,
                                   size_t result_len)
{
    struct jr_node *n = req->data;
    (void)result;
    (void)result_len;
    n->never_vote_inflight = false;
    if (status != 0) {
        jr__debugf(n, "never-vote record: %s (will retry)",
                   jr_strerror(status));
    }
    free(req);
}

/* A node configured never to vote has the log say so, once it is a
 * member: whoever leads then keeps it out of the voter set. Retried every
 * tick until applied (no leader, a lost write). */
static void record_never_vote(struct jr_node *n)
{
    struct jr_apply *req;
    void *cmd;
    size_t len;
    if (!n->cfg.never_vote || n->never_vote_inflight ||
        n->cluster_id[0] == '\0' || n->raft.state == RAFT_UNAVAILABLE ||
        jr__libstate_never_votes(n, n->raft.id)) {
        return;
    }
    req = calloc(1, sizeof *req);
    cmd = jr__libstate_never_vote_cmd(n->raft.id, &len);
    if (req == NULL || cmd == NULL) {
        free(req);
        free(cmd);
        return;
    }
    req->data = n;
    n->never_vote_inflight = true;
    if (jr__apply_internal(n, req, cmd, len, never_vote_recorded_cb) != 0) {
        n->never_vote_inflight = false;
        free(req);
    }
    free(cmd);
}

void jr__reconciler_tick(struct jr_node *n)
{
    struct jr__rc_member members[64];
    struct jr__rc_policy policy;
    struct jr__rc_action a;
    uint64_t last_index, now = jr__now(n);
    unsigned count;
    int rv;

    if (n->rc_inflight || now < n->rc_next_ms || n->stopping) {
        return;
    }
    n->rc_next_ms = now + RECONCILE_EVERY_MS;
    record_never_vote(n); /* on every node, leader or not */
    if (n->transferring || jr__reconcile_busy(&n->raft)) {
        return;
    }
    if (jr__reconcile_members_from_raft(&n->raft, members, 64, &count,
                                        &last_index, node_contact, n) != 0) {
        return;
    }
    node_policy(n, &policy);
    jr__reconcile_plan(members, count, n->raft.id, last_index, now, &policy,
                       &a);
    if (a.kind == JR__RC_NONE) {
        return;
    }
    if (n->rc_reqp == NULL &&
        (n->rc_reqp = calloc(1, sizeof *n->rc_reqp)) == NULL) {
        return;
    }
    jr__infof(n, "reconciler: %s", a.reason);
    n->rc_reqp->data = n;
    rv = jr__reconcile_apply(&n->raft, &a, n->rc_reqp, reconciled_cb);
    if (rv == 0) {
        n->rc_inflight = true;
    } else if (rv != JR_EBUSY) {
        jr__warnf(n, "reconciler: cannot start: %s", jr_strerror(rv));
    }
}

void jr__reconciler_why(struct jr_node *n,
                        struct jr_status *st,
                        struct jr_peer_detail *details)
{
    struct jr__rc_member members[64];
    struct jr__rc_policy policy;
    uint64_t last_index;
    unsigned count, i, j;
    for (i = 0; i < st->n_peers; i++) {
        (void)snprintf(details[i].zone, sizeof details[i].zone, "%s",
                       jr__contact_zone_of(n, st->peers[i].id));
        (void)snprintf(details[i].role_reason, sizeof details[i].role_reason,
                       "%s", jr_role_name(st->peers[i].role));
    }
    if (jr__reconcile_members_from_raft(&n->raft, members, 64, &count,
                                        &last_index, node_contact, n) != 0) {
        return; /* only the leader knows why */
    }
    node_policy(n, &policy);
    for (j = 0; j < count; j++) {
        for (i = 0; i < st->n_peers; i++) {
            if (st->peers[i].id == members[j].id) {
                jr__reconcile_why(
                    members, count, n->raft.id, last_index, jr__now(n), &policy,
                    j, details[i].role_reason, sizeof details[i].role_reason);
            }
        }
    }
}

/* leaderwatch.c: how soon a follower stops believing in a leader that is
 * gone.
 *
 * raft 0.15 keeps a follower's leader until the follower's own randomized
 * election timer (one to two election timeouts) fires, and refuses every
 * vote, pre-votes included, while it has one (src/recv_request_vote.c).
 * After a leader dies, the first follower to time out is therefore turned
 * down by the other, and the election waits for the last follower's timer
 * rather than the first: about 1.7 election timeouts on average, up to 2.
 * Two rules shorten that. Neither can unseat a live leader: a pre-vote
 * still needs a majority, and the voters that hear from the leader refuse
 * it.
 *  - Silence: a follower that has not heard from its leader for a whole
 *    election timeout forgets it. The thesis (section 4.2.3) refuses votes
 *    only "within the minimum election timeout of hearing from a current
 *    leader"; raft 0.15 refuses them for its whole randomized timeout.
 *  - Refusal: a follower whose connection to its leader is refused by the
 *    leader's host (nothing listens at the leader's address: its process
 *    is gone) forgets it at once, and its election timer runs out one to
 *    two heartbeat intervals later. The delay lets the other followers see
 *    the refusal too, so that they grant the pre-vote instead of refusing
 *    it, and the randomness keeps two of them from standing at once.
 *
 * Both write raft's follower state, the way its own src/convert.c clears
 * it; they run on the loop thread between raft's calls. */
#include "jr_internal.h"

/* Forget the follower's leader, as raft does when it becomes a candidate. */
static void forget_leader(struct raft *r)
{
    r->follower_state.current_leader.id = 0;
    if (r->follower_state.current_leader.address != NULL) {
        raft_free(r->follower_state.current_leader.address);
    }
    r->follower_state.current_leader.address = NULL;
}

bool jr__leaderwatch_silence(struct raft *r, raft_time now)
{
    if (r->state != RAFT_FOLLOWER || r->follower_state.current_leader.id == 0 ||
        now - r->election_timer_start < r->election_timeout) {
        return false;
    }
    forget_leader(r);
    return true;
}

bool jr__leaderwatch_refused(struct raft *r,
                             raft_id id,
                             raft_time now,
                             unsigned delay_ms)
{
    unsigned timeout;
    raft_time start;
    if (r->state != RAFT_FOLLOWER ||
        r->follower_state.current_leader.id != id || id == 0) {
        return false;
    }
    forget_leader(r);
    /* The timer runs out when now - election_timer_start reaches the
     * randomized timeout; move its start so that this is delay_ms away,
     * unless it already runs out sooner. */
    timeout = r->follower_state.randomized_election_timeout;
    start = now + delay_ms >= timeout ? now + delay_ms - timeout : 0;
    if (start < r->election_timer_start) {
        r->election_timer_start = start;
    }
    return true;
}

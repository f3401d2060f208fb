/* staletail.c: a follower never tells its leader that it holds entries it
 * has not checked against the leader's log.
 *
 * raft 0.15 answers an AppendEntries whose entries it already has (a
 * heartbeat, most often) with its whole stored log as the point it reached
 * (src/recv_append_entries.c: last_log_index = last_stored), where the
 * thesis (Figure 3.1) reports prevLogIndex + len(entries). The leader only
 * caps that at its own last index (replicationUpdate). A follower that was
 * the last leader of an older term keeps that term's uncommitted tail
 * until a leader's entries conflict with it; if the new leader appended an
 * entry of its own term at the same index before the answer to its first
 * heartbeat came back, it counts the follower's stale tail as a copy of its
 * entry:
 *  - it may commit that entry without a majority holding it, and an
 *    acknowledged write can then be lost at the next election;
 *  - it ignores the follower's later rejections as stale (their index is
 *    below the match index), so the follower never truncates its tail and
 *    never applies another entry (t_restart, one full restart in about
 *    eighty: the follower stayed at its snapshot index).
 * The answer raft sends while it handles an AppendEntries (the entries
 * needed no write) is therefore capped at prevLogIndex + len(entries): the
 * entries this request proved the follower holds. Answers after a write
 * come from the write's callback and report what raft has just checked
 * and stored; they are left alone. */
#include "jr_internal.h"

void jr__staletail_recv(struct jr__staletail *t,
                        struct raft_io *io,
                        raft_io_recv_cb recv,
                        struct raft_message *m)
{
    bool was_open = t->open;
    raft_index upto = t->upto;
    if (m->type == RAFT_IO_APPEND_ENTRIES) {
        t->open = true;
        t->upto =
            m->append_entries.prev_log_index + m->append_entries.n_entries;
    }
    /* raft may free the entries before it answers: upto is kept apart. */
    recv(io, m);
    t->open = was_open;
    t->upto = upto;
}

bool jr__staletail_cap(const struct jr__staletail *t, struct raft_message *m)
{
    struct raft_append_entries_result *r = &m->append_entries_result;
    if (!t->open || m->type != RAFT_IO_APPEND_ENTRIES_RESULT ||
        r->rejected != 0 || r->last_log_index <= t->upto) {
        return false;
    }
    r->last_log_index = t->upto;
    return true;
}

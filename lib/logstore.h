/* logstore.h: the durable raft log: append-only, preallocated segment files
 * of checksummed record batches, written by a thread of its own with group
 * commit. Part of libjacoraft's own raft_io (issue: the replicated log). */
#ifndef JR_LOGSTORE_H
#define JR_LOGSTORE_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct jr__logstore;

/* Completion of an append or truncate: runs on the loop thread, never from
 * inside the call that submitted the request. status is 0 (the request is
 * durable: written and fdatasync'd), JR_ENOSPACE, JR_EIO or JR_ECANCELED
 * (store closed first). errmsg names the file and the operation. */
typedef void (*jr__logstore_cb)(void *arg, int status, const char *errmsg);

struct jr__logstore_config {
    const char *dir;     /* directory of the segment files; exists */
    size_t segment_size; /* bytes preallocated per segment (>= 64 KiB) */
    /* Fault injection for tests: when not NULL, called by the writer thread
     * before each write/fdatasync/fallocate/rename ("write", "sync",
     * "allocate", "rename"); a non-zero return is taken as that errno. */
    int (*fault)(void *data, const char *op, const char *file);
    void *fault_data;
    /* Logging (may be NULL): level as enum jr_log_level. */
    void (*log)(void *data, int level, const char *msg);
    void *log_data;
};

/* Open the store on an existing directory. Nothing is read yet. The store
 * posts completions to loop (the caller's loop thread). Errors: JR_ENOMEM,
 * JR_EINVAL. */
int jr__logstore_open(uv_loop_t *loop,
                      const struct jr__logstore_config *cfg,
                      struct jr__logstore **out,
                      char *errmsg);

/* Load the log (call once, before any append): verifies every checksum and
 * returns the entries from *start_index on (1 for an empty log, or the index
 * after the last removed prefix). Each entry's buffer is raft_malloc'd on
 * its own (batch NULL); the caller owns them (jr__logstore_entries_free).
 * A torn tail of the last segment (a
 * batch cut by a crash, followed by nothing valid) is cut back to the last
 * whole batch and reported through the log callback; any other damage
 * returns JR_ECORRUPT with errmsg naming the file, the byte offset, the
 * index and the action ("the log of this node is damaged: wipe the data
 * directory and rejoin the node"). Errors: JR_ECORRUPT, JR_EIO, JR_ENOMEM. */
int jr__logstore_load(struct jr__logstore *s,
                      uint64_t *start_index,
                      struct raft_entry **entries,
                      size_t *n_entries,
                      char *errmsg);

/* Free entries as jr__logstore_load returns them. */
void jr__logstore_entries_free(struct raft_entry *entries, size_t n);

/* Index of the last entry stored, 0 if none (valid after load). */
uint64_t jr__logstore_last_index(const struct jr__logstore *s);

/* Index the next append must start at, counting what was submitted: after
 * a failed write it falls back to the end of what is durable, which is
 * where raft, having dropped the failed entries, appends next. */
uint64_t jr__logstore_next_index(const struct jr__logstore *s);

/* Append entries[0..n-1] with indexes first_index.. (which must follow the
 * last index, or equal 1 for an empty log). The entries' buffers are
 * borrowed until cb runs. Appends submitted while a write is in flight are
 * coalesced into the next write+fdatasync (group commit); callbacks run in
 * submission order. Returns 0 (cb will run exactly once) or JR_EINVAL /
 * JR_ENOMEM / JR_ECANCELED (cb never runs). */
int jr__logstore_append(struct jr__logstore *s,
                        uint64_t first_index,
                        const struct raft_entry entries[],
                        unsigned n,
                        jr__logstore_cb cb,
                        void *arg);

/* Cork (true) or uncork (false) the store: while corked, requests are
 * queued but the writer thread is not woken (a writer already awake may
 * take them); uncorking wakes it if anything was queued. Waking a thread costs
 * the waker a system call (on a VM, an interprocessor interrupt of several
 * microseconds): a leader corks its store around raft_apply so that the
 * AppendEntries to the followers, which are on the commit's critical path, go
 * out before its own write, which is not. Loop thread. */
void jr__logstore_cork(struct jr__logstore *s, bool cork);

/* Delete the entries from index on (a conflicting suffix), ordered after
 * every append submitted before it and before every append submitted after.
 * Crash-safe: after a crash the log holds either the old or the truncated
 * suffix, never a mix or a gap. cb as for append (may be NULL). */
int jr__logstore_truncate(struct jr__logstore *s,
                          uint64_t index,
                          jr__logstore_cb cb,
                          void *arg);

/* Remove, in the background, whole segments holding only entries below
 * index (after a snapshot). Never blocks the loop. */
void jr__logstore_compact(struct jr__logstore *s, uint64_t index);

/* Hold mode (off at open): a request whose write fails with JR_ENOSPACE or
 * JR_EIO is retried every second, holding every request behind it, instead
 * of failing, until it succeeds, hold mode is switched off or the store
 * closes. For a follower, whose entries raft 0.15 would never write again
 * after a failure. Loop thread. */
void jr__logstore_hold(struct jr__logstore *s, bool hold);

/* While hold mode waits out a failing write: JR_ENOSPACE or JR_EIO; 0
 * once a write succeeds again. Any thread. */
int jr__logstore_held_error(struct jr__logstore *s);

/* Replace the whole log with nothing and set the next index to
 * start_index (after a snapshot install from the leader, the log is
 * discarded). Ordered like truncate. cb may be NULL. */
int jr__logstore_reset(struct jr__logstore *s,
                       uint64_t start_index,
                       jr__logstore_cb cb,
                       void *arg);

/* Stop the writer thread after the requests already queued (their
 * callbacks run first with their real status), then cb(arg). Nothing may be
 * submitted after this. Frees the store after cb. */
void jr__logstore_close(struct jr__logstore *s, void (*cb)(void *), void *arg);

#endif /* JR_LOGSTORE_H */

/* raftmsg.h: canonical/raft's messages (RequestVote, AppendEntries,
 * InstallSnapshot, TimeoutNow and their results) as msgpack frames on the
 * library's own connections. */
#ifndef JR_RAFTMSG_H
#define JR_RAFTMSG_H

#include <raft.h>
#include <uv.h>

#include "codec.h"

/* Frame types of raft messages, after the library's own RPC types. */
#define JR__MSG_RAFT_BASE 16 /* + RAFT_IO_APPEND_ENTRIES .. TIMEOUT_NOW */

/* True if a frame payload is a raft message (looks at its first bytes). */
bool jr__raftmsg_is(const char *buf, size_t len);

/* Encode m as one frame. Entry payloads are not copied: *bufs (malloc'd,
 * *n_bufs long) alternates pieces of f's buffer with the entries' own
 * memory, ready for one scatter/gather write; they stay valid while f and
 * the entries do. Errors: JR_ENOMEM, JR_ETOOBIG. */
int jr__raftmsg_encode(const struct raft_message *m,
                       struct jr__frame *f,
                       uv_buf_t **bufs,
                       unsigned *n_bufs);

/* Decode a frame payload into m. Allocations follow raft_io's recv
 * contract: entries (one raft_malloc'd batch, entry->batch set), the
 * snapshot configuration and data belong to raft once m is delivered; on
 * error nothing is allocated. server_id/server_address are not set. Errors:
 * JR_EPROTO (errmsg says what is wrong), JR_ENOMEM. */
int jr__raftmsg_decode(const char *buf,
                       size_t len,
                       struct raft_message *m,
                       char *errmsg);

/* The same for a frame held in its own raft_malloc'd buffer `owned` (==
 * buf): AppendEntries payloads and the InstallSnapshot state then stay in
 * it instead of being copied, and *adopted says the message owns it now
 * (otherwise the caller frees it). */
int jr__raftmsg_decode_owned(char *buf,
                             size_t len,
                             char *owned,
                             struct raft_message *m,
                             bool *adopted,
                             char *errmsg);

/* Release what jr__raftmsg_decode allocated (when not delivered). */
void jr__raftmsg_release(struct raft_message *m);

#endif /* JR_RAFTMSG_H */

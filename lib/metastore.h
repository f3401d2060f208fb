/* metastore.h: raft's persistent term and vote (Figure 3.1: updated on
 * stable storage before responding to RPCs), in one checksummed file
 * replaced atomically. */
#ifndef JR_METASTORE_H
#define JR_METASTORE_H

#include <stdint.h>

struct jr__raft_meta {
    uint64_t term;
    uint64_t vote; /* server id voted for in term, 0 if none */
};

/* Read dir/meta. A missing file is term 0, no vote (a new node).
 * JR_ECORRUPT (bad magic, version or checksum; errmsg names the file and
 * the action), JR_EIO. */
int jr__metastore_load(const char *dir, struct jr__raft_meta *m, char *errmsg);

/* Replace dir/meta durably: write a temporary file, fsync, rename, fsync
 * the directory. A crash at any point leaves the old value or the new one.
 * JR_ENOTFOUND (no such directory), JR_ENOSPACE, JR_EIO. Blocking (about
 * two fsyncs). */
int jr__metastore_store(const char *dir,
                        const struct jr__raft_meta *m,
                        char *errmsg);

#endif /* JR_METASTORE_H */

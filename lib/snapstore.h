/* snapstore.h: snapshot files: a checksummed header (index, term,
 * configuration) followed by the state as an lz4 frame with a content
 * checksum; written to a temporary name, fsync'd, renamed. Part of
 * libjacoraft's own raft_io (issue: the replicated log). */
#ifndef JR_SNAPSTORE_H
#define JR_SNAPSTORE_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jr__snapshot_info {
    uint64_t index;      /* last log index the snapshot covers */
    uint64_t term;       /* its term */
    uint64_t conf_index; /* index of the configuration below */
    struct raft_configuration conf;
    uint64_t data_len; /* uncompressed size of the state */
    char file[128];    /* name of the file inside the directory */
};

/* Write a snapshot of the state bufs[0..n-1] into dir, durably: stream the
 * buffers through lz4 into "<dir>/snapshot-<term>-<index>.tmp" (never
 * holding a second full copy of the state), fsync it, rename it to
 * "snapshot-<term>-<index>", fsync dir. Then remove older snapshot files,
 * keeping the newest `keep` (>= 1), and any leftover *.tmp. Blocking: call
 * it from a worker thread, not the loop. Errors: JR_ENOSPACE, JR_EIO,
 * JR_ENOMEM, with errmsg naming the file; on error nothing is left under
 * the final name and older snapshots are untouched. */
int jr__snapstore_put(const char *dir,
                      const struct jr__snapshot_info *info,
                      const struct raft_buffer bufs[],
                      unsigned n,
                      unsigned keep,
                      char *errmsg);

/* Find the newest snapshot in dir and read its header into info (without
 * the state). JR_ENOTFOUND if there is none; JR_ECORRUPT if the newest
 * file's header does not verify (errmsg names the file and says what to
 * do). The configuration in info is allocated: release it with
 * raft_configuration_close(). Blocking. */
int jr__snapstore_latest(const char *dir,
                         struct jr__snapshot_info *info,
                         char *errmsg);

/* Read the state of the snapshot described by info (from
 * jr__snapstore_latest) into one buffer allocated with raft_malloc,
 * decompressing as it reads and verifying the lz4 content checksum and the
 * length. JR_ECORRUPT (truncated, bit-flipped) with errmsg naming the file
 * and the byte offset; JR_EIO; JR_ENOMEM. Blocking. */
int jr__snapstore_read(const char *dir,
                       const struct jr__snapshot_info *info,
                       struct raft_buffer *data,
                       char *errmsg);

/* Snapshots travel packed: as the lz4 frame of their file, which the
 * leader reads without decoding it and the follower stores as it is (and
 * decodes, checking every block, to restore it).
 *
 * Read the frame of the snapshot info describes into one raft_malloc'd
 * buffer, checking the file's header and the frame's (not its blocks).
 * Errors as jr__snapstore_read. Blocking. */
int jr__snapstore_read_packed(const char *dir,
                              const struct jr__snapshot_info *info,
                              struct raft_buffer *frame,
                              char *errmsg);

/* Whether data starts as a packed snapshot does (an lz4 frame), rather
 * than as a state does (libstate.c's section). */
bool jr__snapstore_is_packed(const struct raft_buffer *data);

/* Decode a packed snapshot into a raft_malloc'd state, verifying the frame
 * (block and content checksums, the size it gives). JR_ECORRUPT with
 * errmsg giving the byte offset; JR_ENOMEM. */
int jr__snapstore_unpack(const struct raft_buffer *frame,
                         struct raft_buffer *data,
                         char *errmsg);

/* Store a packed snapshot received from the leader, as jr__snapstore_put
 * does, and decode it into data (raft_malloc'd) while the disk writes it
 * back: the frame is written as it is, and kept only if every block of it
 * verifies (errors of both). info's data_len is not used. Blocking. */
int jr__snapstore_install(const char *dir,
                          const struct jr__snapshot_info *info,
                          const struct raft_buffer *frame,
                          unsigned keep,
                          struct raft_buffer *data,
                          char *errmsg);

#endif /* JR_SNAPSTORE_H */

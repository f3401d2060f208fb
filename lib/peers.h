/* peers.h: raft/peers.json, the configuration an operator forces on the
 * survivors of a quorum loss (hashicorp/raft's and Dkron's format):
 *
 *     [ {"id": "626980046172116160", "address": "10.0.0.1:7400"},
 *       {"id": 2, "address": "10.0.0.2:7400", "role": "standby"} ]
 *
 * "id" is a positive integer or a string of decimal digits (jacod's ids are
 * 64-bit hashes, beyond what JSON numbers carry exactly); "role" is
 * "voter" (the default), "standby" or "spare"; "name" is optional. Parsed
 * with jansson, strictly: anything else is an error that names the file,
 * the element and the field. */
#ifndef JR_PEERS_H
#define JR_PEERS_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

#define JR__PEERS_MAX 64
#define JR__PEERS_FILE_MAX (64 << 10) /* bytes */

struct jr__peer {
    uint64_t id;
    char address[128];
    int role; /* RAFT_VOTER, RAFT_STANDBY or RAFT_SPARE */
    char name[64];
};

struct jr__peers {
    unsigned n;
    struct jr__peer p[JR__PEERS_MAX];
};

/* Parse text (len bytes). path names the file in messages only. Returns 0,
 * or JR_EINVAL with errmsg (JR_ERRMSG_SIZE) such as "peers.json: element 2:
 * \"address\": \"10.0.0.1\" has no port", out untouched; JR_ENOMEM. */
int jr__peers_parse(const char *text,
                    size_t len,
                    const char *path,
                    struct jr__peers *out,
                    char *errmsg);

/* Consistency: unique ids and addresses, at least one voter, and self_id
 * among them (0: not checked). JR_EINVAL naming the elements. */
int jr__peers_validate(const struct jr__peers *p,
                       uint64_t self_id,
                       const char *path,
                       char *errmsg);

/* Read and parse path: JR_ENOTFOUND when it does not exist, JR_EINVAL (also
 * for a file over JR__PEERS_FILE_MAX bytes), JR_EIO. */
int jr__peers_read_file(const char *path, struct jr__peers *out, char *errmsg);

/* The file's text for p (ids as strings): *out malloc'd, NUL-terminated.
 * JR_ENOMEM. */
int jr__peers_format(const struct jr__peers *p, char **out, size_t *len);

/* Write p to path atomically: a temporary file in the same directory, mode
 * 0600, fsync, rename, fsync of the directory. */
int jr__peers_write_file(const char *path,
                         const struct jr__peers *p,
                         char *errmsg);

/* The configuration p describes (conf initialised by the caller). */
int jr__peers_to_configuration(const struct jr__peers *p,
                               struct raft_configuration *conf);

#endif /* JR_PEERS_H */

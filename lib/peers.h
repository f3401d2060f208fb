/* peers.h: raft/peers.json, the configuration an operator forces on the
 * survivors of a quorum loss (hashicorp/raft's and Dkron's format):
 *
 *     [ {"id": "626980046172116160", "address": "10.0.0.1:7400"},
 *       {"id": 2, "address": "10.0.0.2:7400", "role": "standby",
 *        "name": "host2"} ]
 *
 * The top level is an array of 1 to JR__PEERS_MAX objects, each with
 *   "id"       required: an integer from 1 to 2^63 - 1, or a string of 1 to
 *              20 decimal digits from "1" to "18446744073709551615" without
 *              sign or leading zero (jacod's ids are 64-bit FNV-1a hashes,
 *              often above what a JSON integer carries; jansson's integers
 *              are signed 64-bit, so such ids must be strings);
 *   "address"  required: "A.B.C.D:PORT", a dotted-quad IPv4 address (no
 *              host names: the file is read before anything resolves) and
 *              a port of 1 to 65535 without leading zero, so that one
 *              server has one spelling and duplicates are found;
 *   "role"     optional: "voter" (the default), "standby" or "spare";
 *   "name"     optional: a string of up to 63 bytes, for people.
 * Anything else (another key, a key twice, another type) is an error that
 * names the file, the element (1-based) and the field. Parsed with jansson.
 * The writer always writes ids as strings and always writes the role.
 *
 * Internal to the library: nothing here is exported (jr__ names, hidden
 * visibility). No state: every function may be called from any thread.
 * Every errmsg is a caller buffer of JR_ERRMSG_SIZE bytes, never NULL,
 * written on failure only; values quoted from the file in a message are cut
 * to 40 bytes with non-printable bytes escaped, so a hostile file cannot
 * put control characters in a log line. */
#ifndef JR_PEERS_H
#define JR_PEERS_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

#define JR__PEERS_MAX 64              /* servers in one file */
#define JR__PEERS_FILE_MAX (64 << 10) /* bytes; larger files are refused */
#define JR__PEER_ADDRESS_SIZE 128     /* NUL included */
#define JR__PEER_NAME_SIZE 64         /* NUL included */

struct jr__peer {
    uint64_t id;                         /* 1..UINT64_MAX */
    char address[JR__PEER_ADDRESS_SIZE]; /* "A.B.C.D:PORT", NUL-terminated */
    int role;                      /* RAFT_VOTER, RAFT_STANDBY or RAFT_SPARE */
    char name[JR__PEER_NAME_SIZE]; /* UTF-8, NUL-terminated; "" when unset */
};

struct jr__peers {
    unsigned n; /* entries of p in use, 1..JR__PEERS_MAX once parsed */
    struct jr__peer p[JR__PEERS_MAX];
};

/* Parse text, len bytes of a file's content (need not be NUL-terminated;
 * a NUL byte inside is an error). path names the file in messages only.
 * Checks the format above, element by element, not the consistency between
 * elements (jr__peers_validate). Borrows everything.
 * Returns 0 with *out set, or, out untouched:
 *   JR_EINVAL  with errmsg naming the problem, e.g.
 *              "peers.json: element 2: \"address\": \"10.0.0.1\" has no
 *              port (want HOST:PORT)", or for text that is not JSON
 *              "peers.json: not valid JSON: line 1, column 22: <jansson's
 *              reason>"; text over JR__PEERS_FILE_MAX bytes is refused
 *              before jansson sees it;
 *   JR_ENOMEM  jansson or the parser could not allocate. */
int jr__peers_parse(const char *text,
                    size_t len,
                    const char *path,
                    struct jr__peers *out,
                    char *errmsg);

/* Check p as a whole: 1..JR__PEERS_MAX servers, each with an id other than
 * 0, a valid address, a known role and a terminated UTF-8 name (always
 * true of what jr__peers_parse returns; checked for structures filled by
 * hand); no two with the same id or the same address ("peers.json:
 * elements 1 and 3 have the same id 42"); at least one voter; and self_id
 * among the ids ("this node (id 7) is not among the servers"), unless
 * self_id is 0. path names the file in messages only. Borrows everything.
 * Returns 0, or JR_EINVAL with errmsg. */
int jr__peers_validate(const struct jr__peers *p,
                       uint64_t self_id,
                       const char *path,
                       char *errmsg);

/* Read the file at path and parse it (jr__peers_parse; no validation).
 * Returns 0 with *out set, or, out untouched:
 *   JR_ENOTFOUND  path does not exist ("<path> does not exist");
 *   JR_EINVAL     not a regular file, over JR__PEERS_FILE_MAX bytes, or
 *                 malformed (jr__peers_parse's message);
 *   JR_ENOMEM;
 *   other JR_E*   the failing open, fstat or read (JR_EIO for most),
 *                 errmsg naming the file and strerror's text. */
int jr__peers_read_file(const char *path, struct jr__peers *out, char *errmsg);

/* The file's text for p: a pretty-printed JSON array (two-space indent) of
 * objects with "id" (a string of decimal digits), "address", "role" and,
 * when not empty, "name", in that order, without a final newline (the
 * file has one; jaco prints the text with its own). *out is allocated with
 * malloc (free it with free), NUL-terminated, *len bytes without the NUL; both
 * set on success only. p should have passed jr__peers_validate. Returns 0, or
 * JR_EINVAL when p->n is over JR__PEERS_MAX or a field is unterminated or not
 * UTF-8, or JR_ENOMEM. */
int jr__peers_format(const struct jr__peers *p, char **out, size_t *len);

/* Write p to path as jr__peers_format's text, atomically: p is validated
 * first (jr__peers_validate with self_id 0), then written to path.tmp,
 * created afresh with mode 0600 (a leftover one is removed first), fsynced,
 * renamed over path, and the directory fsynced. A crash leaves the old
 * file or the new one, and at worst a stale path.tmp, which the next write
 * replaces and no reader looks at. On failure path.tmp is removed and path
 * is untouched. Borrows everything.
 * Returns 0, or JR_EINVAL (p refused, or path too long), JR_ENOMEM, or the
 * JR_E* of the failing system call (JR_ENOSPACE, JR_EIO, ...) with errmsg
 * naming the step and the file. */
int jr__peers_write_file(const char *path,
                         const struct jr__peers *p,
                         char *errmsg);

/* Initialise *conf (raft_configuration_init; no previous content is freed)
 * and add every server of p with its id, address and role: the
 * configuration to hand to raft_recover. On success the caller owns conf
 * and frees it with raft_configuration_close. On failure conf is left
 * empty and initialised (closing it is harmless). p should have passed
 * jr__peers_validate. Returns 0, JR_ENOMEM, or JR_EINVAL when raft refuses
 * a server (a duplicate id or address, a bad role). */
int jr__peers_to_configuration(const struct jr__peers *p,
                               struct raft_configuration *conf);

#endif /* JR_PEERS_H */

/* jointoken.h: the cluster secret kept in the data directory and the
 * printable, MAC-protected join tokens a cluster issues to new nodes. */
#ifndef JR_JOINTOKEN_H
#define JR_JOINTOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jr_internal.h"

/* Every errmsg below is a caller buffer of JR_ERRMSG_SIZE bytes, never
 * NULL, written on failure only. */

/* ---- the cluster secret ----
 *
 * Generated once at bootstrap and then copied, never regenerated: every
 * member must hold the same bytes to verify tokens another member issued.
 * It never appears in a log line, an error message or a token; a joining
 * node receives it only over the authenticated join exchange. */

#define JR__SECRET_LEN 32 /* bytes; the HMAC-SHA-256 key size */

/* Fill out with JR__SECRET_LEN bytes from the operating system's CSPRNG
 * (libsodium's randombytes_buf). Any thread. Returns 0, or JR_EIO when
 * libsodium cannot be initialised (no entropy source). */
int jr__secret_generate(unsigned char out[JR__SECRET_LEN]);

/* Store secret as the raw JR__SECRET_LEN bytes of dir/secret, replacing any
 * previous one atomically: a temporary file created with mode 0600 (before
 * any byte is written, so the secret is never readable by others even for
 * an instant), fsync, rename, fsync of dir. A crash leaves the old secret
 * or the new one, never a mix. dir must exist. Borrows dir and secret.
 * Returns 0, or JR_EINVAL (path too long) or the JR_E* of the failing
 * system call (JR_ENOSPACE, JR_EIO, ...) with the detail in errmsg
 * (JR_ERRMSG_SIZE bytes). */
int jr__secret_save(const char *dir,
                    const unsigned char secret[JR__SECRET_LEN],
                    char *errmsg);

/* Read dir/secret into out (set on success only). Returns 0, or
 *   JR_ENOTFOUND  no secret file (the node has not bootstrapped or joined);
 *   JR_EINVAL     the file grants any permission to group or others, or is
 *                 not a regular file: refused rather than used, because a
 *                 secret others could read is no longer a secret and one
 *                 others could write is not ours (the message says to fix
 *                 the mode with chmod 600, or to rotate the secret);
 *   JR_ECORRUPT   the file is not exactly JR__SECRET_LEN bytes;
 *   other JR_E*   the failing system call (errmsg has strerror's text).
 * errmsg (JR_ERRMSG_SIZE bytes) names the file, never its contents. */
int jr__secret_load(const char *dir,
                    unsigned char out[JR__SECRET_LEN],
                    char *errmsg);

/* ---- join tokens ----
 *
 * Text form (version 1):
 *
 *     "jaco1." base64url(payload || mac)
 *
 * base64url is RFC 4648 section 5 without '=' padding (libsodium's
 * URLSAFE_NO_PADDING variant), so the token is one word of [A-Za-z0-9_-]
 * after the prefix: no spaces, safe in a shell, a URL or a YAML file.
 * payload is one msgpack array of five elements, each in msgpack's
 * shortest encoding:
 *
 *     [ 1,              version (unsigned integer)
 *       cluster_id,     str: JR__CLUSTER_ID_LEN lowercase hex digits
 *       [address, ...], array of 1..JR__TOKEN_MAX_ADDRESSES str, each
 *                       1..JR__TOKEN_ADDRESS_MAX printable ASCII bytes
 *                       (0x21..0x7e): "host:port" of current members
 *       expires_ms,     unsigned integer: wall-clock expiry, milliseconds
 *                       since the Unix epoch (UTC)
 *       nonce ]         bin of 16 random bytes: the token's single-use id
 *
 * mac is HMAC-SHA-256 (RFC 2104; libsodium crypto_auth_hmacsha256) of
 * exactly the payload bytes, keyed with the cluster secret: 32 bytes.
 *
 * The token carries every member's address, not just the issuer's, so that
 * it still leads to the cluster after the issuing node has died. It is
 * signed, not encrypted: anyone holding it can read the cluster id and the
 * addresses, which the cluster's INFO RPC tells anyone anyway. It is a
 * bearer credential until its expiry or its first use: treat it like a
 * password. */

#define JR__TOKEN_VERSION 1
#define JR__TOKEN_PREFIX "jaco1."
#define JR__TOKEN_MAX_ADDRESSES 16
#define JR__TOKEN_ADDRESS_MAX 127 /* bytes, without the terminating NUL */
#define JR__TOKEN_NONCE_LEN 16
#define JR__TOKEN_MAC_LEN 32

/* Largest payload the encoder can produce: fixarray header, version,
 * str8 cluster id, array16 header, str8 addresses, uint64 expiry, bin8
 * nonce. The decoder refuses anything longer. */
#define JR__TOKEN_PAYLOAD_MAX                                    \
    (1 + 1 + (2 + JR__CLUSTER_ID_LEN) + 3 +                      \
     JR__TOKEN_MAX_ADDRESSES * (2 + JR__TOKEN_ADDRESS_MAX) + 9 + \
     (2 + JR__TOKEN_NONCE_LEN))
/* Size of a buffer that holds any token text, NUL included (2890 bytes):
 * prefix, unpadded base64 of payload and mac, NUL. A token with five
 * addresses of any length fits in under 1 KiB. */
#define JR__TOKEN_TEXT_SIZE        \
    (sizeof JR__TOKEN_PREFIX - 1 + \
     (4 * (JR__TOKEN_PAYLOAD_MAX + JR__TOKEN_MAC_LEN) + 2) / 3 + 1)

struct jr__join_token {
    char cluster_id[JR__CLUSTER_ID_LEN + 1];
    unsigned n_addresses; /* 1..JR__TOKEN_MAX_ADDRESSES */
    /* NUL-terminated; entries past n_addresses and bytes past each NUL are
     * ignored by the encoder, so they cannot change the token. */
    char addresses[JR__TOKEN_MAX_ADDRESSES][JR__TOKEN_ADDRESS_MAX + 1];
    uint64_t expires_ms; /* wall clock, ms since the epoch; see verify */
    unsigned char nonce[JR__TOKEN_NONCE_LEN];
};

/* Write t as token text, NUL-terminated, into out (out_size bytes;
 * JR__TOKEN_TEXT_SIZE always suffices). The encoding is deterministic: the
 * same t and secret give the same text, so two tokens differ only if some
 * field does, and the issuer must fill t->nonce with fresh random bytes
 * (libsodium's randombytes_buf) for every token: the nonce is what makes
 * two tokens issued in the same millisecond distinct, and single use
 * possible.
 * Borrows everything; any thread. Returns 0, or JR_EINVAL with errmsg
 * (JR_ERRMSG_SIZE bytes) when t is not encodable (cluster id not
 * JR__CLUSTER_ID_LEN lowercase hex digits, no address or more than
 * JR__TOKEN_MAX_ADDRESSES, an empty, unterminated or non-printable
 * address) or out_size is too small; out is untouched on failure. */
int jr__token_encode(const struct jr__join_token *t,
                     const unsigned char secret[JR__SECRET_LEN],
                     char *out,
                     size_t out_size,
                     char *errmsg);

/* Decode token text into t WITHOUT checking its MAC: a joining node has no
 * secret yet, and needs the cluster id and the addresses to make contact.
 * Nothing in t is authentic until jr__token_verify has accepted the same
 * text on the cluster side, so a joiner uses t only to decide where to
 * connect. text is a NUL-terminated string, taken exactly as issued:
 * surrounding whitespace is the caller's to strip (the CLI trims a pasted
 * line; the library does not guess). The decoder is strict and bounded: it
 * reads at most JR__TOKEN_TEXT_SIZE bytes of text, checks the msgpack value
 * with jr__msgpack_bounded before msgpack-c sees it, and accepts only the
 * version 1 layout above. Returns 0 (t set), or JR_EINVAL with errmsg
 * saying which check failed ("not a JACO join token", "join token of an
 * unknown version 2", "truncated join token", "join token carries 17
 * addresses, at most 16", ...), t untouched; JR_ENOMEM if msgpack-c cannot
 * allocate. Any thread. */
int jr__token_parse(const char *text, struct jr__join_token *t, char *errmsg);

/* The cluster side: parse text, then check, in this order,
 *   1. cluster id equals cluster_id, else JR_EMISMATCH "join token is for
 *      cluster X, this is cluster Y" (or "..., this node belongs to no
 *      cluster" when cluster_id is NULL or ""; checked before the MAC because a
 *      token of another cluster is under another secret: the MAC check
 *      would call it forged, and the operator would not learn that it was
 *      only sent to the wrong cluster);
 *   2. the MAC, compared in constant time, else JR_EMISMATCH "join token
 *      was not issued by this cluster (bad MAC)": forged, altered, or
 *      issued under a secret this cluster no longer has;
 *   3. now_ms < expires_ms, else JR_EINVAL "join token expired at
 *      <YYYY-MM-DDTHH:MM:SSZ>" (after the MAC, so a forged token is never
 *      reported as merely expired).
 * A malformed text gives jr__token_parse's JR_EINVAL or JR_ENOMEM. The
 * public error list gains nothing: the caller tells the cases apart by
 * code and passes errmsg on to the joining node.
 *
 * now_ms is the verifier's wall clock (ms since the epoch); the expiry was
 * computed from the issuer's, so clock skew between members moves the
 * expiry by that much. Pass it in rather than reading the clock here so
 * that tests can pin time.
 *
 * Single use is NOT checked here: it needs state every member agrees on.
 * The caller records t->nonce (with t->expires_ms) in the replicated state
 * in the same committed command that admits the node, and that command's
 * apply refuses a nonce already recorded (jr__token_nonce_equal). The check
 * belongs in apply, not before submitting, because two joins racing with
 * one token would both pass a check made before either committed. A
 * recorded nonce can be forgotten once its expiry has passed, since the
 * token is then refused by step 3 anyway; that keeps the set small.
 *
 * Sets t on success only. Borrows everything; any thread. */
int jr__token_verify(const char *text,
                     const unsigned char secret[JR__SECRET_LEN],
                     const char *cluster_id,
                     uint64_t now_ms,
                     struct jr__join_token *t,
                     char *errmsg);

/* The joining side of the join exchange (auth.h): decode text like
 * jr__token_parse and also return the payload bytes (at most
 * JR__TOKEN_PAYLOAD_MAX) and the MAC, which the joiner proves it knows
 * instead of sending it. */
int jr__token_split(const char *text,
                    struct jr__join_token *t,
                    unsigned char payload[JR__TOKEN_PAYLOAD_MAX],
                    size_t *payload_len,
                    unsigned char mac[JR__TOKEN_MAC_LEN],
                    char *errmsg);

/* The member side: decode payload bytes a joiner sent (no MAC: the member
 * recomputes it). Same checks and errors as jr__token_parse. */
int jr__token_payload_decode(const unsigned char *payload,
                             size_t len,
                             struct jr__join_token *t,
                             char *errmsg);

/* JR_EINVAL "join token expired at <UTC>" when now_ms >= t->expires_ms. */
int jr__token_check_expiry(const struct jr__join_token *t,
                           uint64_t now_ms,
                           char *errmsg);

/* True when two nonces are the same (for the caller's used-nonce set).
 * Constant time, though nonces are not secret: it costs nothing and keeps
 * every comparison in this module uniform. */
bool jr__token_nonce_equal(const unsigned char a[JR__TOKEN_NONCE_LEN],
                           const unsigned char b[JR__TOKEN_NONCE_LEN]);

#endif /* JR_JOINTOKEN_H */

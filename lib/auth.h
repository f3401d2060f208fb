/* auth.h: the mutual challenge-response that opens every peer connection,
 * and the proofs of the join exchange. Only libsodium's HMAC-SHA-256 and
 * secretbox are used: nothing here invents cryptography.
 *
 * Member handshake (both ends hold the cluster secret K):
 *
 *     dialer   -> preamble with nonce Nc and the MEMBER flag
 *     acceptor -> reply: status, its node id S, nonce Ns,
 *                 Ps = HMAC(K, "jaco-auth-v1 acceptor" | Nc | Ns | C | D | S)
 *     dialer   -> Pd = HMAC(K, "jaco-auth-v1 dialer" | Nc | Ns | C | D | S)
 *
 * where C is the cluster id and D the dialer's node id. Each side answers
 * a challenge the other chose fresh, so a recorded proof is worthless on
 * another connection, and the labels differ by role, so one side's proof
 * can never be reflected back as the other's. The acceptor hands the
 * stream to the RPC layer only after checking Pd; the dialer sends nothing
 * but Pd before checking Ps.
 *
 * A joiner (no secret yet) sends the preamble without the MEMBER flag; the
 * acceptor answers with Ns and no proof, and the connection may carry only
 * INFO and JOIN_TOKEN requests (rpc.c refuses anything else). */
#ifndef JR_AUTH_H
#define JR_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "jointoken.h"

#define JR__AUTH_NONCE_LEN 32
#define JR__AUTH_PROOF_LEN 32

/* Acceptor's reply to a preamble: "JACO", version, status, reason length
 * (2 bytes), acceptor's node id (8), Ns, Ps; then the reason text. */
#define JR__AUTH_REPLY_FIXED (4 + 1 + 1 + 2 + 8 + 32 + 32)
#define JR__AUTH_REASON_MAX 255

enum jr__auth_status {
    JR__AUTH_OK = 0,        /* member handshake: Ps follows, send Pd */
    JR__AUTH_JOINER = 1,    /* unauthenticated: INFO and JOIN_TOKEN only */
    JR__AUTH_REFUSED = 2,   /* reason follows; the acceptor closes */
    JR__AUTH_NO_SECRET = 3, /* the acceptor is not a member yet */
};

/* Fill out with fresh random bytes. Any thread. */
void jr__auth_nonce(unsigned char out[JR__AUTH_NONCE_LEN]);

/* The proof of role ("dialer" or "acceptor") over one handshake. */
void jr__auth_proof(const unsigned char key[JR__SECRET_LEN],
                    const char *role,
                    const unsigned char nc[JR__AUTH_NONCE_LEN],
                    const unsigned char ns[JR__AUTH_NONCE_LEN],
                    const char *cluster_id,
                    uint64_t dialer_id,
                    uint64_t acceptor_id,
                    unsigned char out[JR__AUTH_PROOF_LEN]);

/* Constant-time comparison of two proofs. */
bool jr__auth_equal(const unsigned char a[JR__AUTH_PROOF_LEN],
                    const unsigned char b[JR__AUTH_PROOF_LEN]);

/* Encode the acceptor's reply into out (JR__AUTH_REPLY_FIXED +
 * JR__AUTH_REASON_MAX bytes); returns its length. proof may be NULL (zero
 * bytes), reason NULL or "". */
size_t jr__auth_reply_encode(int status,
                             uint64_t acceptor_id,
                             const unsigned char ns[JR__AUTH_NONCE_LEN],
                             const unsigned char *proof,
                             const char *reason,
                             unsigned char *out);

/* ---- the join exchange (membership.c) ----
 *
 * The token's MAC M = HMAC(K, payload) is known to the token's holder and
 * to every member (who recompute it from the payload), and to nobody else.
 * The joiner sends the payload and a proof of M instead of the token, so
 * a token seen on the wire cannot be replayed; the member answers with its
 * own proof of M and the cluster secret sealed (secretbox) under a key
 * derived from M and both nonces. The secret never travels in clear. */

/* The token MAC recomputed from its payload (member side). */
void jr__join_mac(const unsigned char key[JR__SECRET_LEN],
                  const unsigned char *payload,
                  size_t len,
                  unsigned char out[JR__TOKEN_MAC_LEN]);

/* Proofs and sealing key for the join exchange, keyed with the token MAC;
 * role is "joiner", "member" or "seal". */
void jr__join_proof(const unsigned char mac[JR__TOKEN_MAC_LEN],
                    const char *role,
                    const unsigned char nc[JR__AUTH_NONCE_LEN],
                    const unsigned char ns[JR__AUTH_NONCE_LEN],
                    uint64_t joiner_id,
                    unsigned char out[JR__AUTH_PROOF_LEN]);

/* Sealed secret: 24-byte nonce, 16-byte tag, then the secret. */
#define JR__SEALED_LEN (24 + 16 + JR__SECRET_LEN)
void jr__seal_secret(const unsigned char key[JR__AUTH_PROOF_LEN],
                     const unsigned char secret[JR__SECRET_LEN],
                     unsigned char out[JR__SEALED_LEN]);
/* 0, or -1 when the box does not open under key (tampered or wrong). */
int jr__open_secret(const unsigned char key[JR__AUTH_PROOF_LEN],
                    const unsigned char in[JR__SEALED_LEN],
                    unsigned char secret[JR__SECRET_LEN]);

#endif /* JR_AUTH_H */

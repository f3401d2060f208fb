/* auth.c: the proofs of the connection handshake and of the join exchange
 * (see auth.h). jr_node_open has initialised libsodium before any of these
 * run. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"

_Static_assert(JR__AUTH_PROOF_LEN == crypto_auth_hmacsha256_BYTES,
               "a proof is one HMAC-SHA-256");
_Static_assert(JR__AUTH_PROOF_LEN == crypto_secretbox_KEYBYTES,
               "a join proof doubles as a secretbox key");
_Static_assert(JR__SEALED_LEN == crypto_secretbox_NONCEBYTES +
                                     crypto_secretbox_MACBYTES + JR__SECRET_LEN,
               "sealed secret layout");

void jr__auth_nonce(unsigned char out[JR__AUTH_NONCE_LEN])
{
    randombytes_buf(out, JR__AUTH_NONCE_LEN);
}

static void put64(unsigned char *p, uint64_t v)
{
    int i;
    for (i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

/* HMAC(key, "jaco-auth-v1 " role | nc | ns | ids | cluster id). Every
 * field has a fixed length or comes last, so no two inputs collide. */
static void proof(const unsigned char *key,
                  const char *kind,
                  const char *role,
                  const unsigned char *nc,
                  const unsigned char *ns,
                  uint64_t id1,
                  uint64_t id2,
                  const char *cluster_id,
                  unsigned char *out)
{
    crypto_auth_hmacsha256_state st;
    unsigned char ids[16];
    char label[64];
    size_t llen;
    llen = (size_t)snprintf(label, sizeof label, "%s %s", kind, role);
    put64(ids, id1);
    put64(ids + 8, id2);
    crypto_auth_hmacsha256_init(&st, key, 32);
    /* The label's NUL ends it, so "a b" + nonce never equals "a" + ... */
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)label, llen + 1);
    crypto_auth_hmacsha256_update(&st, nc, JR__AUTH_NONCE_LEN);
    crypto_auth_hmacsha256_update(&st, ns, JR__AUTH_NONCE_LEN);
    crypto_auth_hmacsha256_update(&st, ids, sizeof ids);
    if (cluster_id != NULL) {
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)cluster_id,
                                      strlen(cluster_id));
    }
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

void jr__auth_proof(const unsigned char key[JR__SECRET_LEN],
                    const char *role,
                    const unsigned char nc[JR__AUTH_NONCE_LEN],
                    const unsigned char ns[JR__AUTH_NONCE_LEN],
                    const char *cluster_id,
                    uint64_t dialer_id,
                    uint64_t acceptor_id,
                    unsigned char out[JR__AUTH_PROOF_LEN])
{
    proof(key, "jaco-auth-v1", role, nc, ns, dialer_id, acceptor_id, cluster_id,
          out);
}

bool jr__auth_equal(const unsigned char a[JR__AUTH_PROOF_LEN],
                    const unsigned char b[JR__AUTH_PROOF_LEN])
{
    return sodium_memcmp(a, b, JR__AUTH_PROOF_LEN) == 0;
}

size_t jr__auth_reply_encode(int status,
                             uint64_t acceptor_id,
                             const unsigned char ns[JR__AUTH_NONCE_LEN],
                             const unsigned char *proof_bytes,
                             const char *reason,
                             unsigned char *out)
{
    size_t rlen = reason != NULL ? strlen(reason) : 0;
    if (rlen > JR__AUTH_REASON_MAX) {
        rlen = JR__AUTH_REASON_MAX;
    }
    memset(out, 0, JR__AUTH_REPLY_FIXED);
    memcpy(out, "JACO", 4);
    out[4] = 2; /* the preamble's protocol version */
    out[5] = (unsigned char)status;
    out[6] = (unsigned char)(rlen >> 8);
    out[7] = (unsigned char)rlen;
    put64(out + 8, acceptor_id);
    memcpy(out + 16, ns, JR__AUTH_NONCE_LEN);
    if (proof_bytes != NULL) {
        memcpy(out + 48, proof_bytes, JR__AUTH_PROOF_LEN);
    }
    if (rlen > 0) {
        memcpy(out + JR__AUTH_REPLY_FIXED, reason, rlen);
    }
    return JR__AUTH_REPLY_FIXED + rlen;
}

void jr_client_proof(const unsigned char secret[JR_SECRET_SIZE],
                     int role,
                     const unsigned char cn[JR_CLIENT_NONCE_SIZE],
                     const unsigned char sn[JR_CLIENT_NONCE_SIZE],
                     unsigned char out[JR_CLIENT_PROOF_SIZE])
{
    proof(secret, "jaco-client-v1",
          role == JR_CLIENT_PROOF_SERVER ? "server" : "client", cn, sn, 0, 0,
          NULL, out);
}

int jr_node_client_proof(struct jr_node *n,
                         int role,
                         const unsigned char cn[JR_CLIENT_NONCE_SIZE],
                         const unsigned char sn[JR_CLIENT_NONCE_SIZE],
                         unsigned char out[JR_CLIENT_PROOF_SIZE])
{
    unsigned char secret[JR_SECRET_SIZE];
    if (n == NULL || !jr__secret_copy(n, secret)) {
        return JR_ESTATE;
    }
    jr_client_proof(secret, role, cn, sn, out);
    sodium_memzero(secret, sizeof secret);
    return 0;
}

void jr__join_mac(const unsigned char key[JR__SECRET_LEN],
                  const unsigned char *payload,
                  size_t len,
                  unsigned char out[JR__TOKEN_MAC_LEN])
{
    crypto_auth_hmacsha256(out, payload, len, key);
}

void jr__join_proof(const unsigned char mac[JR__TOKEN_MAC_LEN],
                    const char *role,
                    const unsigned char nc[JR__AUTH_NONCE_LEN],
                    const unsigned char ns[JR__AUTH_NONCE_LEN],
                    uint64_t joiner_id,
                    unsigned char out[JR__AUTH_PROOF_LEN])
{
    proof(mac, "jaco-join-v1", role, nc, ns, joiner_id, 0, NULL, out);
}

void jr__seal_secret(const unsigned char key[JR__AUTH_PROOF_LEN],
                     const unsigned char secret[JR__SECRET_LEN],
                     unsigned char out[JR__SEALED_LEN])
{
    randombytes_buf(out, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES, secret,
                          JR__SECRET_LEN, out, key);
}

int jr__open_secret(const unsigned char key[JR__AUTH_PROOF_LEN],
                    const unsigned char in[JR__SEALED_LEN],
                    unsigned char secret[JR__SECRET_LEN])
{
    return crypto_secretbox_open_easy(
               secret, in + crypto_secretbox_NONCEBYTES,
               JR__SEALED_LEN - crypto_secretbox_NONCEBYTES, in, key) == 0
               ? 0
               : -1;
}

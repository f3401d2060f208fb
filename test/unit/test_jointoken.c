/* test_jointoken.c: the cluster secret file and the join token format,
 * its encoder, its strict parser and its verifier. */
#include <ftw.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jointoken.h"
#include "suites.h"
#include "testutil.h"

#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* ---- helpers ---- */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/jr-jointoken-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    if (tmpdir[0] != '\0') {
        tu_rm_rf(tmpdir);
        tmpdir[0] = '\0';
    }
}

static const char id_a[] = "00112233445566778899aabbccddeeff";
static const char id_b[] = "ffeeddccbbaa99887766554433221100";
/* 2026-11-23T12:00:00Z */
#define EXPIRES_MS 1795435200000ull

/* Two fixed secrets, so that failures reproduce. */
static void secret_of(unsigned char out[JR__SECRET_LEN], unsigned char seed)
{
    unsigned i;
    for (i = 0; i < JR__SECRET_LEN; i++) {
        out[i] = (unsigned char)(seed + i * 7);
    }
}

/* A token of cluster id_a with n addresses "10.0.0.<i>:7000". */
static void token_init(struct jr__join_token *t, unsigned n)
{
    unsigned i;
    memset(t, 0, sizeof *t);
    memcpy(t->cluster_id, id_a, sizeof id_a);
    t->n_addresses = n;
    for (i = 0; i < n; i++) {
        snprintf(t->addresses[i], sizeof t->addresses[i], "10.0.0.%u:7000",
                 i + 1);
    }
    t->expires_ms = EXPIRES_MS;
    for (i = 0; i < JR__TOKEN_NONCE_LEN; i++) {
        t->nonce[i] = (unsigned char)(0xa0 + i);
    }
}

static void encode_ok(const struct jr__join_token *t,
                      const unsigned char *secret,
                      char out[JR__TOKEN_TEXT_SIZE])
{
    char errmsg[JR_ERRMSG_SIZE] = "";
    int rv = jr__token_encode(t, secret, out, JR__TOKEN_TEXT_SIZE, errmsg);
    ck_assert_msg(rv == 0, "encode failed with %d: %s", rv, errmsg);
}

static void assert_token_eq(const struct jr__join_token *a,
                            const struct jr__join_token *b)
{
    unsigned i;
    ck_assert_str_eq(a->cluster_id, b->cluster_id);
    ck_assert_uint_eq(a->n_addresses, b->n_addresses);
    for (i = 0; i < a->n_addresses; i++) {
        ck_assert_str_eq(a->addresses[i], b->addresses[i]);
    }
    ck_assert_uint_eq(a->expires_ms, b->expires_ms);
    ck_assert_mem_eq(a->nonce, b->nonce, JR__TOKEN_NONCE_LEN);
}

/* Parse a copy of text[0..len) held in a buffer of exactly len + 1 bytes
 * (valgrind sees any read past the end) and require JR_EINVAL, a message
 * mentioning `mention` (if not NULL), and t untouched. */
static void expect_parse_rejected(const char *text,
                                  size_t len,
                                  const char *mention,
                                  long where)
{
    char errmsg[JR_ERRMSG_SIZE] = "";
    struct jr__join_token t, before;
    char *copy = malloc(len + 1);
    int rv;
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, text, len);
    copy[len] = '\0';
    memset(&t, 0x5a, sizeof t);
    before = t;
    rv = jr__token_parse(copy, &t, errmsg);
    ck_assert_msg(rv == JR_EINVAL, "(%ld) parse of \"%s\" returned %d: %s",
                  where, copy, rv, errmsg);
    ck_assert_msg(errmsg[0] != '\0', "(%ld) empty message", where);
    ck_assert_msg(mention == NULL || strstr(errmsg, mention) != NULL,
                  "(%ld) message \"%s\" does not mention \"%s\"", where, errmsg,
                  mention);
    ck_assert_msg(memcmp(&t, &before, sizeof t) == 0,
                  "(%ld) rejected parse wrote its output", where);
    free(copy);
}

/* verify(text) must fail with code and a message mentioning `mention`,
 * leaving t untouched. */
static void expect_verify_fails(const char *text,
                                const unsigned char *secret,
                                const char *cluster_id,
                                uint64_t now_ms,
                                int code,
                                const char *mention)
{
    char errmsg[JR_ERRMSG_SIZE] = "";
    struct jr__join_token t, before;
    int rv;
    memset(&t, 0x5a, sizeof t);
    before = t;
    rv = jr__token_verify(text, secret, cluster_id, now_ms, &t, errmsg);
    ck_assert_msg(rv == code, "verify returned %d (%s), want %d", rv, errmsg,
                  code);
    ck_assert_msg(mention == NULL || strstr(errmsg, mention) != NULL,
                  "message \"%s\" does not mention \"%s\"", errmsg, mention);
    ck_assert_msg(memcmp(&t, &before, sizeof t) == 0,
                  "failed verify wrote its output");
}

/* An independent writer of the documented format: a msgpack payload of
 * any shape, its HMAC-SHA-256 under secret, base64url without padding,
 * the prefix. It lets tests build tokens the encoder refuses to produce,
 * and checks the encoder against the documentation. */
struct shape {
    unsigned n_fields; /* elements of the top-level array */
    uint64_t version;
    const char *cluster_id;
    unsigned n_addresses;
    const char *address; /* every address is this string */
    size_t address_len;
    bool negative_expiry;
    size_t nonce_len;
    const char *trailer; /* bytes appended after the payload, before mac */
};

static struct shape shape_default(void)
{
    struct shape s = {5, 1, id_a, 1, "10.0.0.1:7000", 13, false, 16, NULL};
    return s;
}

static void craft(const struct shape *sh,
                  const unsigned char *secret,
                  char *out,
                  size_t size)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    unsigned char bin[8192], nonce[64];
    unsigned i;
    size_t len;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    memset(nonce, 0xa0, sizeof nonce);
    msgpack_pack_array(&pk, sh->n_fields);
    msgpack_pack_uint64(&pk, sh->version);
    if (sh->n_fields > 1) {
        msgpack_pack_str(&pk, strlen(sh->cluster_id));
        msgpack_pack_str_body(&pk, sh->cluster_id, strlen(sh->cluster_id));
    }
    if (sh->n_fields > 2) {
        msgpack_pack_array(&pk, sh->n_addresses);
        for (i = 0; i < sh->n_addresses; i++) {
            msgpack_pack_str(&pk, sh->address_len);
            msgpack_pack_str_body(&pk, sh->address, sh->address_len);
        }
    }
    if (sh->n_fields > 3) {
        if (sh->negative_expiry) {
            msgpack_pack_int64(&pk, -1);
        } else {
            msgpack_pack_uint64(&pk, EXPIRES_MS);
        }
    }
    if (sh->n_fields > 4) {
        ck_assert_uint_le(sh->nonce_len, sizeof nonce);
        msgpack_pack_bin(&pk, sh->nonce_len);
        msgpack_pack_bin_body(&pk, nonce, sh->nonce_len);
    }
    for (i = 5; i < sh->n_fields; i++) {
        msgpack_pack_nil(&pk);
    }
    if (sh->trailer != NULL) {
        msgpack_sbuffer_write(&sb, sh->trailer, strlen(sh->trailer));
    }
    len = sb.size;
    ck_assert_uint_le(len + JR__TOKEN_MAC_LEN, sizeof bin);
    memcpy(bin, sb.data, len);
    msgpack_sbuffer_destroy(&sb);
    crypto_auth_hmacsha256(bin + len, bin, len, secret);
    len += JR__TOKEN_MAC_LEN;
    ck_assert_uint_ge(size, 6 + sodium_base64_ENCODED_LEN(len, B64));
    memcpy(out, "jaco1.", 6);
    sodium_bin2base64(out + 6, size - 6, bin, len, B64);
}

/* The bytes under the base64 of a token (payload then mac). */
static size_t token_bytes(const char *text, unsigned char *bin, size_t size)
{
    size_t len;
    ck_assert_int_eq(strncmp(text, "jaco1.", 6), 0);
    ck_assert_int_eq(sodium_base642bin(bin, size, text + 6, strlen(text + 6),
                                       NULL, &len, NULL, B64),
                     0);
    return len;
}

/* ---- encoding and round trips ---- */

START_TEST(encode_then_parse_round_trips)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE], errmsg[JR_ERRMSG_SIZE];
    struct jr__join_token in, out;
    unsigned n;
    secret_of(secret, 1);
    for (n = 1; n <= JR__TOKEN_MAX_ADDRESSES; n++) {
        token_init(&in, n);
        in.expires_ms = n == 2 ? 0 : n == 3 ? UINT64_MAX : EXPIRES_MS;
        encode_ok(&in, secret, text);
        memset(&out, 0xff, sizeof out);
        ck_assert_int_eq(jr__token_parse(text, &out, errmsg), 0);
        assert_token_eq(&in, &out);
    }
}
END_TEST

START_TEST(encode_then_verify_round_trips)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE], errmsg[JR_ERRMSG_SIZE];
    struct jr__join_token in, out;
    ck_assert_int_eq(jr__secret_generate(secret), 0);
    token_init(&in, 3);
    encode_ok(&in, secret, text);
    memset(&out, 0, sizeof out);
    ck_assert_int_eq(
        jr__token_verify(text, secret, id_a, EXPIRES_MS - 60000, &out, errmsg),
        0);
    assert_token_eq(&in, &out);
}
END_TEST

START_TEST(addresses_of_maximum_length_round_trip)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE], errmsg[JR_ERRMSG_SIZE];
    struct jr__join_token in, out;
    unsigned i;
    secret_of(secret, 1);
    token_init(&in, JR__TOKEN_MAX_ADDRESSES);
    for (i = 0; i < JR__TOKEN_MAX_ADDRESSES; i++) {
        memset(in.addresses[i], 'a' + (int)i, JR__TOKEN_ADDRESS_MAX);
        in.addresses[i][JR__TOKEN_ADDRESS_MAX] = '\0';
    }
    in.expires_ms = UINT64_MAX;
    encode_ok(&in, secret, text);
    /* The largest token there is fills JR__TOKEN_TEXT_SIZE exactly. */
    ck_assert_uint_eq(strlen(text) + 1, JR__TOKEN_TEXT_SIZE);
    ck_assert_int_eq(
        jr__token_verify(text, secret, id_a, EXPIRES_MS, &out, errmsg), 0);
    assert_token_eq(&in, &out);
}
END_TEST

START_TEST(token_is_one_printable_word_under_1_kib_for_5_addresses)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE];
    struct jr__join_token t;
    size_t i, len;
    secret_of(secret, 1);
    token_init(&t, 5);
    /* Five addresses of the greatest length allowed. */
    for (i = 0; i < 5; i++) {
        memset(t.addresses[i], 'h', JR__TOKEN_ADDRESS_MAX);
        t.addresses[i][JR__TOKEN_ADDRESS_MAX] = '\0';
    }
    t.expires_ms = UINT64_MAX;
    encode_ok(&t, secret, text);
    len = strlen(text);
    ck_assert_uint_lt(len, 1024);
    ck_assert_int_eq(strncmp(text, "jaco1.", 6), 0);
    for (i = 6; i < len; i++) {
        char c = text[i];
        ck_assert_msg((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '_',
                      "character %zu of the token is '%c'", i, c);
    }
}
END_TEST

START_TEST(encoder_writes_the_documented_format)
{
    unsigned char secret[JR__SECRET_LEN], bin[JR__TOKEN_TEXT_SIZE];
    char text[JR__TOKEN_TEXT_SIZE], crafted[8192];
    struct jr__join_token t;
    struct shape sh = shape_default();
    size_t len;
    secret_of(secret, 9);
    token_init(&t, 1);
    memset(t.nonce, 0xa0, sizeof t.nonce);
    encode_ok(&t, secret, text);
    craft(&sh, secret, crafted, sizeof crafted);
    ck_assert_str_eq(text, crafted);
    /* And the first bytes, spelled out for the man page: fixarray of 5,
     * version 1, str8 of 32, the cluster id, fixarray of 1, fixstr of 13. */
    len = token_bytes(text, bin, sizeof bin);
    ck_assert_uint_eq(len, 1 + 1 + 34 + 1 + 14 + 9 + 18 + 32);
    ck_assert_uint_eq(bin[0], 0x95);
    ck_assert_uint_eq(bin[1], 0x01);
    ck_assert_uint_eq(bin[2], 0xd9);
    ck_assert_uint_eq(bin[3], 32);
    ck_assert_mem_eq(bin + 4, id_a, 32);
    ck_assert_uint_eq(bin[36], 0x91);
    ck_assert_uint_eq(bin[37], 0xa0 | 13);
    ck_assert_mem_eq(bin + 38, "10.0.0.1:7000", 13);
    ck_assert_uint_eq(bin[51], 0xcf); /* uint64: the expiry */
    ck_assert_uint_eq(bin[60], 0xc4); /* bin8 of 16: the nonce */
    ck_assert_uint_eq(bin[61], 16);
}
END_TEST

START_TEST(encoding_is_deterministic_and_changes_with_the_nonce)
{
    unsigned char secret[JR__SECRET_LEN];
    char a[JR__TOKEN_TEXT_SIZE], b[JR__TOKEN_TEXT_SIZE];
    struct jr__join_token t, u;
    unsigned i;
    secret_of(secret, 1);
    token_init(&t, 3);
    encode_ok(&t, secret, a);
    encode_ok(&t, secret, b);
    ck_assert_str_eq(a, b);

    /* Bytes the token does not carry cannot change it: after each NUL,
     * and in the unused address slots. */
    u = t;
    for (i = 0; i < 3; i++) {
        size_t len = strlen(u.addresses[i]);
        memset(u.addresses[i] + len + 1, 'x', sizeof u.addresses[i] - len - 1);
    }
    for (i = 3; i < JR__TOKEN_MAX_ADDRESSES; i++) {
        memset(u.addresses[i], 'y', sizeof u.addresses[i]);
    }
    encode_ok(&u, secret, b);
    ck_assert_str_eq(a, b);

    /* Every bit of the nonce matters. */
    for (i = 0; i < 8 * JR__TOKEN_NONCE_LEN; i++) {
        u = t;
        u.nonce[i / 8] ^= (unsigned char)(1u << (i % 8));
        encode_ok(&u, secret, b);
        ck_assert_str_ne(a, b);
    }
}
END_TEST

START_TEST(nonce_equal_compares_every_byte)
{
    unsigned char a[JR__TOKEN_NONCE_LEN], b[JR__TOKEN_NONCE_LEN];
    unsigned i;
    for (i = 0; i < JR__TOKEN_NONCE_LEN; i++) {
        a[i] = b[i] = (unsigned char)i;
    }
    ck_assert(jr__token_nonce_equal(a, b));
    for (i = 0; i < JR__TOKEN_NONCE_LEN; i++) {
        b[i] ^= 0x80;
        ck_assert(!jr__token_nonce_equal(a, b));
        b[i] ^= 0x80;
    }
}
END_TEST

START_TEST(encode_rejects_what_the_format_cannot_carry)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE], errmsg[JR_ERRMSG_SIZE];
    struct jr__join_token t;
    secret_of(secret, 1);
    memset(text, 0x5a, sizeof text);

#define EXPECT_EINVAL(mention)                                          \
    do {                                                                \
        errmsg[0] = '\0';                                               \
        ck_assert_int_eq(                                               \
            jr__token_encode(&t, secret, text, sizeof text, errmsg),    \
            JR_EINVAL);                                                 \
        ck_assert_msg(strstr(errmsg, (mention)) != NULL,                \
                      "message \"%s\" does not mention \"%s\"", errmsg, \
                      (mention));                                       \
        ck_assert_uint_eq((unsigned char)text[0], 0x5a);                \
    } while (0)

    token_init(&t, 1);
    memcpy(t.cluster_id, "00112233445566778899AABBCCDDEEFF", 33);
    EXPECT_EINVAL("cluster id");
    token_init(&t, 1);
    t.cluster_id[31] = '\0';
    EXPECT_EINVAL("cluster id");
    token_init(&t, 1);
    memset(t.cluster_id, 'a', sizeof t.cluster_id); /* unterminated */
    EXPECT_EINVAL("cluster id");

    token_init(&t, 1);
    t.n_addresses = 0;
    EXPECT_EINVAL("addresses");
    t.n_addresses = JR__TOKEN_MAX_ADDRESSES + 1;
    EXPECT_EINVAL("addresses");

    token_init(&t, 2);
    t.addresses[1][0] = '\0';
    EXPECT_EINVAL("address 1");
    token_init(&t, 2);
    memset(t.addresses[1], 'a', sizeof t.addresses[1]); /* unterminated */
    EXPECT_EINVAL("address 1");
    token_init(&t, 2);
    strcpy(t.addresses[1], "host name:7000");
    EXPECT_EINVAL("address 1");
    token_init(&t, 2);
    strcpy(t.addresses[1], "host\033[2J:7000");
    EXPECT_EINVAL("address 1");
    token_init(&t, 2);
    strcpy(t.addresses[1], "h\xc3\xa9te:7000");
    EXPECT_EINVAL("address 1");
#undef EXPECT_EINVAL
}
END_TEST

START_TEST(encode_rejects_a_buffer_too_small_and_leaves_it_untouched)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE], small[JR__TOKEN_TEXT_SIZE];
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__join_token t;
    size_t need;
    secret_of(secret, 1);
    token_init(&t, 2);
    encode_ok(&t, secret, text);
    need = strlen(text) + 1;
    memset(small, 0x5a, sizeof small);
    ck_assert_int_eq(jr__token_encode(&t, secret, small, need - 1, errmsg),
                     JR_EINVAL);
    ck_assert_ptr_nonnull(strstr(errmsg, "buffer"));
    ck_assert_uint_eq((unsigned char)small[0], 0x5a);
    ck_assert_int_eq(jr__token_encode(&t, secret, small, need, errmsg), 0);
    ck_assert_str_eq(small, text);
}
END_TEST

/* ---- verification ---- */

START_TEST(verify_accepts_a_token_until_1_ms_before_its_expiry)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE], errmsg[JR_ERRMSG_SIZE];
    struct jr__join_token t, out;
    secret_of(secret, 1);
    token_init(&t, 2);
    encode_ok(&t, secret, text);
    ck_assert_int_eq(jr__token_verify(text, secret, id_a, 0, &out, errmsg), 0);
    ck_assert_int_eq(
        jr__token_verify(text, secret, id_a, EXPIRES_MS - 1, &out, errmsg), 0);
    assert_token_eq(&t, &out);
}
END_TEST

START_TEST(verify_rejects_a_token_expired_by_1_ms)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE];
    struct jr__join_token t;
    secret_of(secret, 1);
    token_init(&t, 2);
    encode_ok(&t, secret, text);
    /* The expiry is the first instant the token is refused. */
    expect_verify_fails(text, secret, id_a, EXPIRES_MS, JR_EINVAL,
                        "join token expired at 2026-11-23T12:00:00Z");
    expect_verify_fails(text, secret, id_a, EXPIRES_MS + 1, JR_EINVAL,
                        "join token expired at 2026-11-23T12:00:00Z");
    expect_verify_fails(text, secret, id_a, UINT64_MAX, JR_EINVAL, "expired");
}
END_TEST

START_TEST(verify_rejects_a_token_under_another_secret)
{
    unsigned char secret[JR__SECRET_LEN], other[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE];
    struct jr__join_token t;
    secret_of(secret, 1);
    secret_of(other, 2);
    token_init(&t, 2);
    encode_ok(&t, secret, text);
    expect_verify_fails(text, other, id_a, 0, JR_EMISMATCH,
                        "join token was not issued by this cluster (bad MAC)");
    /* Secrets differing in one bit. */
    memcpy(other, secret, sizeof other);
    other[JR__SECRET_LEN - 1] ^= 1;
    expect_verify_fails(text, other, id_a, 0, JR_EMISMATCH, "bad MAC");
}
END_TEST

START_TEST(verify_names_both_clusters_for_a_token_of_another_cluster)
{
    unsigned char secret[JR__SECRET_LEN], other[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE];
    struct jr__join_token t;
    secret_of(secret, 1);
    secret_of(other, 2);
    token_init(&t, 2);
    encode_ok(&t, other, text);
    /* The other cluster's secret signed it; the id is what the operator
     * needs to hear, not "forged". */
    expect_verify_fails(text, secret, id_b, 0, JR_EMISMATCH,
                        "join token is for cluster "
                        "00112233445566778899aabbccddeeff, this is cluster "
                        "ffeeddccbbaa99887766554433221100");
    expect_verify_fails(text, secret, "", 0, JR_EMISMATCH,
                        "this node belongs to no cluster");
    expect_verify_fails(text, secret, NULL, 0, JR_EMISMATCH,
                        "this node belongs to no cluster");
}
END_TEST

START_TEST(verify_reports_a_forged_expired_token_as_forged)
{
    unsigned char secret[JR__SECRET_LEN], other[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE];
    struct jr__join_token t;
    secret_of(secret, 1);
    secret_of(other, 2);
    token_init(&t, 2);
    encode_ok(&t, other, text);
    expect_verify_fails(text, secret, id_a, EXPIRES_MS + 1, JR_EMISMATCH,
                        "bad MAC");
}
END_TEST

START_TEST(verify_rejects_every_bit_flip_of_payload_and_mac)
{
    unsigned char secret[JR__SECRET_LEN], bin[JR__TOKEN_TEXT_SIZE];
    char text[JR__TOKEN_TEXT_SIZE], flipped[JR__TOKEN_TEXT_SIZE];
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__join_token t, out;
    size_t len, bit;
    secret_of(secret, 1);
    token_init(&t, 3);
    encode_ok(&t, secret, text);
    len = token_bytes(text, bin, sizeof bin);
    for (bit = 0; bit < 8 * len; bit++) {
        int rv;
        bin[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        memcpy(flipped, "jaco1.", 6);
        sodium_bin2base64(flipped + 6, sizeof flipped - 6, bin, len, B64);
        bin[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        rv = jr__token_verify(flipped, secret, id_a, 0, &out, errmsg);
        ck_assert_msg(rv != 0, "token with bit %zu flipped verified", bit);
    }
}
END_TEST

START_TEST(verify_rejects_every_character_substitution)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        "+/=. \n\x01\x7f\x80\xff";
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE], errmsg[JR_ERRMSG_SIZE];
    struct jr__join_token t, out;
    size_t len, i, k;
    secret_of(secret, 1);
    token_init(&t, 2);
    encode_ok(&t, secret, text);
    len = strlen(text);
    for (i = 0; i < len; i++) {
        char orig = text[i];
        for (k = 0; k < sizeof alphabet - 1; k++) {
            int rv;
            if (alphabet[k] == orig) {
                continue;
            }
            text[i] = alphabet[k];
            rv = jr__token_verify(text, secret, id_a, 0, &out, errmsg);
            ck_assert_msg(rv != 0,
                          "token with character %zu replaced by 0x%02x "
                          "verified",
                          i, (unsigned char)alphabet[k]);
            ck_assert_msg(errmsg[0] != '\0', "no message");
        }
        text[i] = orig;
    }
    /* Untouched, it still verifies. */
    ck_assert_int_eq(jr__token_verify(text, secret, id_a, 0, &out, errmsg), 0);
}
END_TEST

START_TEST(verify_rejects_a_truncated_token_at_every_length)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE], errmsg[JR_ERRMSG_SIZE];
    struct jr__join_token t, out;
    size_t len, cut;
    secret_of(secret, 1);
    token_init(&t, 2);
    encode_ok(&t, secret, text);
    len = strlen(text);
    for (cut = 0; cut < len; cut++) {
        char *copy = malloc(cut + 1);
        int rv;
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, text, cut);
        copy[cut] = '\0';
        errmsg[0] = '\0';
        rv = jr__token_verify(copy, secret, id_a, 0, &out, errmsg);
        free(copy);
        ck_assert_msg(rv == JR_EINVAL, "cut at %zu: verify returned %d (%s)",
                      cut, rv, errmsg);
        ck_assert_msg(errmsg[0] != '\0', "cut at %zu: no message", cut);
    }
}
END_TEST

/* ---- parsing ---- */

START_TEST(parse_needs_no_secret)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE], errmsg[JR_ERRMSG_SIZE];
    struct jr__join_token in, out;
    /* The joining node has no secret: a token under any secret, even an
     * expired one, parses. */
    ck_assert_int_eq(jr__secret_generate(secret), 0);
    token_init(&in, 4);
    in.expires_ms = 1;
    encode_ok(&in, secret, text);
    ck_assert_int_eq(jr__token_parse(text, &out, errmsg), 0);
    assert_token_eq(&in, &out);
}
END_TEST

START_TEST(parse_rejects_a_truncated_token_at_every_length)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE];
    struct jr__join_token t;
    size_t len, cut;
    secret_of(secret, 1);
    token_init(&t, 5);
    encode_ok(&t, secret, text);
    len = strlen(text);
    for (cut = 0; cut < len; cut++) {
        expect_parse_rejected(text, cut, NULL, (long)cut);
    }
    /* Losing the last few characters, the usual copy-and-paste accident,
     * is called what it is. */
    expect_parse_rejected(text, len - 3, "truncated", -1);
    expect_parse_rejected(text, 40, "truncated", -1);
}
END_TEST

START_TEST(parse_rejects_a_wrong_prefix)
{
    expect_parse_rejected("", 0, "not a JACO join token", 0);
    expect_parse_rejected("jaco", 4, "not a JACO join token", 1);
    expect_parse_rejected("jaco1", 5, "not a JACO join token", 2);
    expect_parse_rejected("JACO1.AAAA", 10, "not a JACO join token", 3);
    expect_parse_rejected("xjaco1.AAAA", 11, "not a JACO join token", 4);
    expect_parse_rejected("jaco.AAAA", 9, "not a JACO join token", 5);
    expect_parse_rejected("jaco1-AAAA", 10, "not a JACO join token", 6);
    expect_parse_rejected(" jaco1.AAAA", 11, "not a JACO join token", 7);
    expect_parse_rejected("K10abc::server:ab12", 19, "not a JACO join token",
                          8);
}
END_TEST

START_TEST(parse_names_an_unknown_version)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[8192];
    struct shape sh = shape_default();
    /* In the prefix ... */
    expect_parse_rejected("jaco2.AAAA", 10,
                          "join token of an unknown version 2", 0);
    expect_parse_rejected("jaco12.AAAA", 11,
                          "join token of an unknown version 12", 1);
    /* ... and in the payload, whatever shape follows the version. */
    secret_of(secret, 1);
    sh.version = 2;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text),
                          "join token of an unknown version 2", 2);
    sh.n_fields = 7;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text),
                          "join token of an unknown version 2", 3);
    sh.version = 0;
    sh.n_fields = 5;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text),
                          "join token of an unknown version 0", 4);
}
END_TEST

START_TEST(parse_rejects_too_many_addresses)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[8192], errmsg[JR_ERRMSG_SIZE];
    struct jr__join_token t;
    struct shape sh = shape_default();
    secret_of(secret, 1);
    sh.address = "a:1";
    sh.address_len = 3;
    sh.n_addresses = JR__TOKEN_MAX_ADDRESSES;
    craft(&sh, secret, text, sizeof text);
    ck_assert_int_eq(jr__token_parse(text, &t, errmsg), 0);
    ck_assert_uint_eq(t.n_addresses, JR__TOKEN_MAX_ADDRESSES);
    sh.n_addresses = JR__TOKEN_MAX_ADDRESSES + 1;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text),
                          "join token carries 17 addresses, at most 16", 0);
    sh.n_addresses = 0;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "join token carries no address",
                          1);
}
END_TEST

START_TEST(parse_rejects_bad_addresses)
{
    static char longs[JR__TOKEN_ADDRESS_MAX + 1];
    unsigned char secret[JR__SECRET_LEN];
    char text[8192], errmsg[JR_ERRMSG_SIZE];
    struct jr__join_token t;
    struct shape sh = shape_default();
    secret_of(secret, 1);
    memset(longs, 'a', sizeof longs);
    sh.address = longs;
    sh.address_len = JR__TOKEN_ADDRESS_MAX;
    craft(&sh, secret, text, sizeof text);
    ck_assert_int_eq(jr__token_parse(text, &t, errmsg), 0);
    ck_assert_uint_eq(strlen(t.addresses[0]), JR__TOKEN_ADDRESS_MAX);

    sh.address_len = JR__TOKEN_ADDRESS_MAX + 1;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text),
                          "join token address 0 is longer than 127 bytes", 0);
    sh.address = "";
    sh.address_len = 0;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "address 0", 1);
    sh.address = "a\0b:1";
    sh.address_len = 5;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "not printable", 2);
    sh.address = "\033]0;owned\007:1";
    sh.address_len = strlen(sh.address);
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "not printable", 3);
    sh.address = "a b:1";
    sh.address_len = 5;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "not printable", 4);
}
END_TEST

START_TEST(parse_rejects_fields_of_the_wrong_type_or_size)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[8192];
    struct shape sh;
    secret_of(secret, 1);

    sh = shape_default();
    sh.cluster_id = "00112233445566778899aabbccddeef";
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "cluster id", 0);
    sh.cluster_id = "00112233445566778899aabbccddeeff0";
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "cluster id", 1);
    sh.cluster_id = "00112233445566778899AABBCCDDEEFF";
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "cluster id", 2);

    sh = shape_default();
    sh.negative_expiry = true;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "expiry", 3);

    sh = shape_default();
    sh.nonce_len = 15;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "nonce", 4);
    sh.nonce_len = 17;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "nonce", 5);

    sh = shape_default();
    sh.n_fields = 6;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "6 fields, want 5", 6);
    sh.n_fields = 4;
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "4 fields, want 5", 7);

    /* Bytes between the payload and the mac. */
    sh = shape_default();
    sh.trailer = "\xc0";
    craft(&sh, secret, text, sizeof text);
    expect_parse_rejected(text, strlen(text), "corrupt", 8);
}
END_TEST

START_TEST(parse_rejects_garbage_base64)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE + 8];
    struct jr__join_token t;
    size_t len;
    expect_parse_rejected("jaco1.!!!!!!!!", 14, "invalid character '!'", 0);
    expect_parse_rejected("jaco1.", 6, "truncated", 1);
    expect_parse_rejected("jaco1.A", 7, "truncated", 2);
    expect_parse_rejected("jaco1.AAAA", 10, "truncated", 3);
    /* Standard base64's characters are not base64url's. */
    expect_parse_rejected("jaco1.ab+/cd", 12, "invalid character '+'", 4);

    secret_of(secret, 1);
    token_init(&t, 2);
    encode_ok(&t, secret, text);
    len = strlen(text);
    /* A pasted newline or space is the caller's to strip. */
    strcpy(text + len, "\n");
    expect_parse_rejected(text, len + 1, "invalid byte 0x0a", 5);
    strcpy(text + len, " ");
    expect_parse_rejected(text, len + 1, "invalid byte 0x20", 6);
    /* Padding is not part of the format. */
    strcpy(text + len, "==");
    expect_parse_rejected(text, len + 2, "invalid character '='", 7);
    text[len] = '\0';
    /* A space in the middle. */
    text[20] = ' ';
    expect_parse_rejected(text, len, "offset 20", 8);
}
END_TEST

START_TEST(parse_rejects_a_non_canonical_last_character)
{
    unsigned char secret[JR__SECRET_LEN];
    char text[JR__TOKEN_TEXT_SIZE];
    struct jr__join_token t;
    size_t len;
    unsigned n, tested = 0;
    secret_of(secret, 1);
    /* Token lengths of each residue mod 3 have 0, 4 or 2 unused bits in
     * their last character; setting them must not give a second text
     * for the same token. */

    for (n = 1; n <= 3; n++) {
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *p;
        unsigned v;
        token_init(&t, 1);
        strcpy(t.addresses[0], n == 1 ? "a:1" : n == 2 ? "ab:1" : "abc:1");
        encode_ok(&t, secret, text);
        len = strlen(text);
        if ((len - 6) % 4 == 0) {
            continue; /* a whole number of 3-byte groups: no unused bits */
        }
        p = strchr(b64, text[len - 1]);
        ck_assert_ptr_nonnull(p);
        v = (unsigned)(p - b64);
        ck_assert_uint_eq(v & 1, 0); /* libsodium writes them as zero */
        text[len - 1] = b64[v ^ 1];
        expect_parse_rejected(text, len, "part-way through a byte", (long)n);
        tested++;
    }
    ck_assert_uint_eq(tested, 2);
}
END_TEST

START_TEST(parse_rejects_an_overlong_text)
{
    char *text = malloc(JR__TOKEN_TEXT_SIZE + 1);
    ck_assert_ptr_nonnull(text);
    memcpy(text, "jaco1.", 6);
    memset(text + 6, 'A', JR__TOKEN_TEXT_SIZE - 6);
    text[JR__TOKEN_TEXT_SIZE] = '\0';
    expect_parse_rejected(text, JR__TOKEN_TEXT_SIZE, "too long", 0);
    expect_parse_rejected(text, JR__TOKEN_TEXT_SIZE - 1, NULL, 1);
    free(text);
}
END_TEST

START_TEST(parse_refuses_huge_declared_counts_before_allocating)
{
    unsigned char secret[JR__SECRET_LEN], bin[128 + JR__TOKEN_MAC_LEN];
    char text[512];
    /* A payload of an array32 declaring four billion nils, of which 123
     * follow, then a valid mac. msgpack-c alone would try to allocate
     * 64 GiB before noticing the payload is too short. */
    memset(bin, 0xc0, sizeof bin);
    bin[0] = 0xdd;
    bin[1] = bin[2] = bin[3] = bin[4] = 0xff;
    secret_of(secret, 1);
    crypto_auth_hmacsha256(bin + 128, bin, 128, secret);
    memcpy(text, "jaco1.", 6);
    sodium_bin2base64(text + 6, sizeof text - 6, bin, sizeof bin, B64);
    expect_parse_rejected(text, strlen(text), "corrupt", 0);
}
END_TEST

/* ---- the secret file ---- */

static void secret_path(char *out, size_t size, const char *name)
{
    ck_assert_int_lt(snprintf(out, size, "%s/%s", tmpdir, name), (int)size);
}

static void write_file(const char *name, const void *data, size_t len, int mode)
{
    char path[256];
    FILE *f;
    secret_path(path, sizeof path, name);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(path, (mode_t)mode), 0);
}

static void expect_load_fails(int code, const char *mention)
{
    unsigned char out[JR__SECRET_LEN], before[JR__SECRET_LEN];
    char errmsg[JR_ERRMSG_SIZE] = "";
    int rv;
    memset(out, 0x5a, sizeof out);
    memcpy(before, out, sizeof out);
    rv = jr__secret_load(tmpdir, out, errmsg);
    ck_assert_msg(rv == code, "load returned %d (%s), want %d", rv, errmsg,
                  code);
    ck_assert_msg(strstr(errmsg, mention) != NULL,
                  "message \"%s\" does not mention \"%s\"", errmsg, mention);
    ck_assert_mem_eq(out, before, sizeof out);
}

START_TEST(secret_generate_draws_fresh_bytes)
{
    unsigned char a[JR__SECRET_LEN], b[JR__SECRET_LEN];
    ck_assert_int_eq(jr__secret_generate(a), 0);
    ck_assert_int_eq(jr__secret_generate(b), 0);
    ck_assert_int_ne(memcmp(a, b, sizeof a), 0);
}
END_TEST

START_TEST(secret_save_then_load_round_trips)
{
    unsigned char in[JR__SECRET_LEN], out[JR__SECRET_LEN];
    char errmsg[JR_ERRMSG_SIZE], path[256];
    struct stat st;
    ck_assert_int_eq(jr__secret_generate(in), 0);
    ck_assert_int_eq(jr__secret_save(tmpdir, in, errmsg), 0);
    ck_assert_int_eq(jr__secret_load(tmpdir, out, errmsg), 0);
    ck_assert_mem_eq(in, out, sizeof in);
    secret_path(path, sizeof path, "secret");
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_size, JR__SECRET_LEN);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    secret_path(path, sizeof path, "secret.tmp");
    ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

START_TEST(secret_file_mode_is_0600_whatever_the_umask)
{
    static const mode_t masks[] = {0, 022, 0377, 0777};
    unsigned char in[JR__SECRET_LEN], out[JR__SECRET_LEN];
    char errmsg[JR_ERRMSG_SIZE], path[256];
    struct stat st;
    mode_t old;
    size_t i;
    secret_path(path, sizeof path, "secret");
    secret_of(in, 3);
    for (i = 0; i < sizeof masks / sizeof masks[0]; i++) {
        old = umask(masks[i]);
        ck_assert_int_eq(jr__secret_save(tmpdir, in, errmsg), 0);
        umask(old);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_msg((st.st_mode & 07777) == 0600, "umask %04o gave mode %04o",
                      (unsigned)masks[i], (unsigned)(st.st_mode & 07777));
        ck_assert_int_eq(jr__secret_load(tmpdir, out, errmsg), 0);
        ck_assert_mem_eq(in, out, sizeof in);
    }
}
END_TEST

START_TEST(secret_save_replaces_the_previous_secret)
{
    unsigned char a[JR__SECRET_LEN], b[JR__SECRET_LEN], out[JR__SECRET_LEN];
    char errmsg[JR_ERRMSG_SIZE];
    secret_of(a, 1);
    secret_of(b, 2);
    ck_assert_int_eq(jr__secret_save(tmpdir, a, errmsg), 0);
    ck_assert_int_eq(jr__secret_save(tmpdir, b, errmsg), 0);
    ck_assert_int_eq(jr__secret_load(tmpdir, out, errmsg), 0);
    ck_assert_mem_eq(b, out, sizeof b);
}
END_TEST

START_TEST(secret_save_ignores_a_leftover_temporary_file)
{
    unsigned char in[JR__SECRET_LEN], out[JR__SECRET_LEN];
    char errmsg[JR_ERRMSG_SIZE], path[256];
    struct stat st;
    /* A world-readable temporary file, as if planted: its mode must not
     * carry over to the secret. */
    write_file("secret.tmp", "leftover bytes of another length", 32, 0644);
    secret_of(in, 4);
    ck_assert_int_eq(jr__secret_save(tmpdir, in, errmsg), 0);
    ck_assert_int_eq(jr__secret_load(tmpdir, out, errmsg), 0);
    ck_assert_mem_eq(in, out, sizeof in);
    secret_path(path, sizeof path, "secret");
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
}
END_TEST

START_TEST(secret_save_reports_a_missing_directory)
{
    unsigned char in[JR__SECRET_LEN];
    char errmsg[JR_ERRMSG_SIZE] = "", dir[128];
    secret_of(in, 1);
    snprintf(dir, sizeof dir, "%s/absent", tmpdir);
    ck_assert_int_eq(jr__secret_save(dir, in, errmsg), JR_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(errmsg, "absent/secret.tmp"));
}
END_TEST

START_TEST(secret_load_reports_a_missing_file)
{
    expect_load_fails(JR_ENOTFOUND, "no cluster secret");
}
END_TEST

START_TEST(secret_load_refuses_a_file_group_or_others_can_access)
{
    static const int modes[] = {0644, 0640, 0604, 0620, 0602, 0610, 0601};
    unsigned char in[JR__SECRET_LEN];
    char errmsg[JR_ERRMSG_SIZE], path[256], mention[64];
    size_t i;
    secret_of(in, 1);
    ck_assert_int_eq(jr__secret_save(tmpdir, in, errmsg), 0);
    secret_path(path, sizeof path, "secret");
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        ck_assert_int_eq(chmod(path, (mode_t)modes[i]), 0);
        snprintf(mention, sizeof mention, "mode %04o", (unsigned)modes[i]);
        expect_load_fails(JR_EINVAL, mention);
        expect_load_fails(JR_EINVAL, "chmod 600");
    }
    /* The owner's own bits are the owner's business. */
    ck_assert_int_eq(chmod(path, 0400), 0);
    ck_assert_int_eq(jr__secret_load(tmpdir, in, errmsg), 0);
}
END_TEST

START_TEST(secret_load_rejects_a_file_of_the_wrong_size)
{
    static const size_t sizes[] = {0, 1, JR__SECRET_LEN - 1, JR__SECRET_LEN + 1,
                                   4096};
    static char bytes[4096];
    char mention[64];
    size_t i;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        write_file("secret", bytes, sizes[i], 0600);
        snprintf(mention, sizeof mention, "has %zu bytes, want 32", sizes[i]);
        expect_load_fails(JR_ECORRUPT, mention);
    }
}
END_TEST

START_TEST(secret_load_rejects_a_directory)
{
    char path[256];
    secret_path(path, sizeof path, "secret");
    ck_assert_int_eq(mkdir(path, 0700), 0);
    expect_load_fails(JR_EINVAL, "not a regular file");
}
END_TEST

Suite *jointoken_suite(void)
{
    Suite *s = suite_create("jointoken");
    TCase *tc;

    tc = tcase_create("encode");
    tcase_add_test(tc, encode_then_parse_round_trips);
    tcase_add_test(tc, encode_then_verify_round_trips);
    tcase_add_test(tc, addresses_of_maximum_length_round_trip);
    tcase_add_test(tc, token_is_one_printable_word_under_1_kib_for_5_addresses);
    tcase_add_test(tc, encoder_writes_the_documented_format);
    tcase_add_test(tc, encoding_is_deterministic_and_changes_with_the_nonce);
    tcase_add_test(tc, nonce_equal_compares_every_byte);
    tcase_add_test(tc, encode_rejects_what_the_format_cannot_carry);
    tcase_add_test(tc,
                   encode_rejects_a_buffer_too_small_and_leaves_it_untouched);
    suite_add_tcase(s, tc);

    tc = tcase_create("verify");
    /* Tens of thousands of verifications, slow under valgrind. */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, verify_accepts_a_token_until_1_ms_before_its_expiry);
    tcase_add_test(tc, verify_rejects_a_token_expired_by_1_ms);
    tcase_add_test(tc, verify_rejects_a_token_under_another_secret);
    tcase_add_test(tc,
                   verify_names_both_clusters_for_a_token_of_another_cluster);
    tcase_add_test(tc, verify_reports_a_forged_expired_token_as_forged);
    tcase_add_test(tc, verify_rejects_every_bit_flip_of_payload_and_mac);
    tcase_add_test(tc, verify_rejects_every_character_substitution);
    tcase_add_test(tc, verify_rejects_a_truncated_token_at_every_length);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, parse_needs_no_secret);
    tcase_add_test(tc, parse_rejects_a_truncated_token_at_every_length);
    tcase_add_test(tc, parse_rejects_a_wrong_prefix);
    tcase_add_test(tc, parse_names_an_unknown_version);
    tcase_add_test(tc, parse_rejects_too_many_addresses);
    tcase_add_test(tc, parse_rejects_bad_addresses);
    tcase_add_test(tc, parse_rejects_fields_of_the_wrong_type_or_size);
    tcase_add_test(tc, parse_rejects_garbage_base64);
    tcase_add_test(tc, parse_rejects_a_non_canonical_last_character);
    tcase_add_test(tc, parse_rejects_an_overlong_text);
    tcase_add_test(tc, parse_refuses_huge_declared_counts_before_allocating);
    suite_add_tcase(s, tc);

    tc = tcase_create("secret");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, secret_generate_draws_fresh_bytes);
    tcase_add_test(tc, secret_save_then_load_round_trips);
    tcase_add_test(tc, secret_file_mode_is_0600_whatever_the_umask);
    tcase_add_test(tc, secret_save_replaces_the_previous_secret);
    tcase_add_test(tc, secret_save_ignores_a_leftover_temporary_file);
    tcase_add_test(tc, secret_save_reports_a_missing_directory);
    tcase_add_test(tc, secret_load_reports_a_missing_file);
    tcase_add_test(tc, secret_load_refuses_a_file_group_or_others_can_access);
    tcase_add_test(tc, secret_load_rejects_a_file_of_the_wrong_size);
    tcase_add_test(tc, secret_load_rejects_a_directory);
    suite_add_tcase(s, tc);
    return s;
}

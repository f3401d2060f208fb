/* jointoken.c: the cluster secret file and the join tokens authenticated
 * with it; all cryptography is libsodium's (see jointoken.h for the
 * format). */
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jointoken.h"
#include "mpbound.h"

#define SECRET_FILE "secret"
#define PATH_SIZE 4096
#define B64_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define PREFIX_LEN (sizeof JR__TOKEN_PREFIX - 1)
#define DECODED_MAX (JR__TOKEN_PAYLOAD_MAX + JR__TOKEN_MAC_LEN)
/* Smallest decoded token: fixarray, version, str8 cluster id, fixarray of
 * one 1-byte fixstr address, fixint expiry, bin8 nonce, and the mac.
 * Anything shorter was cut off. */
#define DECODED_MIN                                 \
    (1 + 1 + (2 + JR__CLUSTER_ID_LEN) + 1 + 2 + 1 + \
     (2 + JR__TOKEN_NONCE_LEN) + JR__TOKEN_MAC_LEN)

_Static_assert(JR__SECRET_LEN == crypto_auth_hmacsha256_KEYBYTES,
               "the secret is the HMAC key");
_Static_assert(JR__TOKEN_MAC_LEN == crypto_auth_hmacsha256_BYTES,
               "the token's mac is one HMAC-SHA-256 output");
_Static_assert(JR__TOKEN_TEXT_SIZE ==
                   PREFIX_LEN +
                       sodium_base64_ENCODED_LEN(DECODED_MAX, B64_VARIANT),
               "JR__TOKEN_TEXT_SIZE is what libsodium needs for the "
               "largest token, plus the prefix");

/* sodium_init is idempotent and thread-safe; it must have run before the
 * random generator or the hash functions are used. */
static int sodium_ready(char *errmsg)
{
    if (sodium_init() < 0) {
        if (errmsg != NULL) {
            jr__errf(errmsg, "cannot initialise libsodium");
        }
        return JR_EIO;
    }
    return 0;
}

/* ---- the secret file ---- */

int jr__secret_generate(unsigned char out[JR__SECRET_LEN])
{
    int rv = sodium_ready(NULL);
    if (rv != 0) {
        return rv;
    }
    randombytes_buf(out, JR__SECRET_LEN);
    return 0;
}

static int path_of(const char *dir, const char *name, char *out, char *errmsg)
{
    int n = snprintf(out, PATH_SIZE, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_SIZE) {
        jr__errf(errmsg, "data directory path too long");
        return JR_EINVAL;
    }
    return 0;
}

/* Reads until len bytes or the end of the file; returns 0 or an errno.
 * *got is the count read either way. */
static int read_all(int fd, unsigned char *p, size_t len, size_t *got)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = read(fd, p + done, len - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            *got = done;
            return errno;
        }
        if (n == 0) {
            break;
        }
        done += (size_t)n;
    }
    *got = done;
    return 0;
}

int jr__secret_save(const char *dir,
                    const unsigned char secret[JR__SECRET_LEN],
                    char *errmsg)
{
    char path[PATH_SIZE];
    int rv;
    if ((rv = path_of(dir, SECRET_FILE, path, errmsg)) != 0) {
        return rv;
    }
    return jr__write_file_atomic(path, secret, JR__SECRET_LEN, errmsg);
}

int jr__secret_load(const char *dir,
                    unsigned char out[JR__SECRET_LEN],
                    char *errmsg)
{
    char path[PATH_SIZE];
    unsigned char buf[JR__SECRET_LEN];
    struct stat st;
    size_t got;
    int fd, e, rv;
    if ((rv = path_of(dir, SECRET_FILE, path, errmsg)) != 0) {
        return rv;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        if (e == ENOENT) {
            jr__errf(errmsg, "no cluster secret %s", path);
            return JR_ENOTFOUND;
        }
        jr__errf(errmsg, "open %s: %s", path, strerror(e));
        return jr__err_from_errno(e);
    }
    /* fstat the open file, not the path, so the checks apply to the bytes
     * we read even if the file is replaced meanwhile. */
    if (fstat(fd, &st) != 0) {
        e = errno;
        jr__errf(errmsg, "stat %s: %s", path, strerror(e));
        rv = jr__err_from_errno(e);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        jr__errf(errmsg, "cluster secret %s is not a regular file", path);
        rv = JR_EINVAL;
        goto out;
    }
    /* Like ssh with a private key: a secret that others could have read or
     * replaced is refused, so the mistake is fixed instead of used. */
    if ((st.st_mode & 077) != 0) {
        jr__errf(errmsg,
                 "cluster secret %s has mode %04o: group or others may access "
                 "it (chmod 600 it)",
                 path, (unsigned)(st.st_mode & 07777));
        rv = JR_EINVAL;
        goto out;
    }
    if (st.st_size != JR__SECRET_LEN) {
        jr__errf(errmsg, "cluster secret %s has %lld bytes, want %d", path,
                 (long long)st.st_size, JR__SECRET_LEN);
        rv = JR_ECORRUPT;
        goto out;
    }
    if ((e = read_all(fd, buf, sizeof buf, &got)) != 0) {
        jr__errf(errmsg, "read %s: %s", path, strerror(e));
        rv = jr__err_from_errno(e);
        goto out;
    }
    if (got != sizeof buf) {
        jr__errf(errmsg, "cluster secret %s has %zu bytes, want %d", path, got,
                 JR__SECRET_LEN);
        rv = JR_ECORRUPT;
        goto out;
    }
    memcpy(out, buf, sizeof buf);
    rv = 0;
out:
    sodium_memzero(buf, sizeof buf);
    (void)close(fd);
    return rv;
}

/* An operator's secret file: 64 hex digits, optionally followed by a
 * newline; the same mode rules as the data directory's copy. */
int jr_secret_read_file(const char *path,
                        unsigned char out[JR_SECRET_SIZE],
                        struct jr_error *err)
{
    char text[2 * JR__SECRET_LEN + 3];
    unsigned char bin[JR__SECRET_LEN];
    size_t got = 0, bin_len = 0;
    struct stat st;
    int fd, e, rv = 0;
    if (path == NULL || out == NULL) {
        return jr__error_set(err, JR_EINVAL, "secret file: bad arguments");
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        return jr__error_set(err,
                             e == ENOENT ? JR_ENOTFOUND : jr__err_from_errno(e),
                             "secret file %s: %s", path, strerror(e));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rv = jr__error_set(err, JR_EINVAL,
                           "secret file %s is not a regular file", path);
    } else if ((st.st_mode & 077) != 0) {
        rv = jr__error_set(err, JR_EINVAL,
                           "secret file %s has mode %04o: group or others may "
                           "access it (chmod 600 it)",
                           path, (unsigned)(st.st_mode & 07777));
    } else if ((e = read_all(fd, (unsigned char *)text, sizeof text - 1,
                             &got)) != 0) {
        rv = jr__error_set(err, jr__err_from_errno(e), "read %s: %s", path,
                           strerror(e));
    }
    (void)close(fd);
    if (rv != 0) {
        return rv;
    }
    if (st.st_size == JR__SECRET_LEN && got == JR__SECRET_LEN) {
        /* A data directory's own copy: the raw bytes. */
        memcpy(out, text, JR__SECRET_LEN);
        sodium_memzero(text, sizeof text);
        return 0;
    }
    while (got > 0 && (text[got - 1] == '\n' || text[got - 1] == '\r')) {
        got--;
    }
    text[got] = '\0';
    if (got != 2 * JR__SECRET_LEN ||
        sodium_hex2bin(bin, sizeof bin, text, got, NULL, &bin_len, NULL) != 0 ||
        bin_len != JR__SECRET_LEN) {
        rv = jr__error_set(err, JR_EINVAL,
                           "secret file %s must hold %d hexadecimal digits "
                           "(make one with: openssl rand -hex 32)",
                           path, 2 * JR__SECRET_LEN);
    } else {
        memcpy(out, bin, JR__SECRET_LEN);
    }
    sodium_memzero(text, sizeof text);
    sodium_memzero(bin, sizeof bin);
    return rv;
}

/* ---- encoding ---- */

/* A msgpack write callback into a fixed buffer: a token is small and
 * bounded, so encoding needs no allocation and has no out-of-memory
 * path. */
struct fixed_buf {
    unsigned char *data;
    size_t size;
    size_t len;
};

static int fixed_write(void *data, const char *p, size_t n)
{
    struct fixed_buf *b = data;
    if (n > b->size - b->len) {
        return -1;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static bool is_cluster_id(const char *s, size_t len)
{
    size_t i;
    if (len != JR__CLUSTER_ID_LEN) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* Addresses end up in messages and logs on the joining node: printable
 * ASCII without spaces keeps a hostile token from writing terminal escape
 * sequences or splitting lines there. */
static bool is_address(const char *s, size_t len)
{
    size_t i;
    if (len == 0 || len > JR__TOKEN_ADDRESS_MAX) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

static int check_encodable(const struct jr__join_token *t, char *errmsg)
{
    size_t len = strnlen(t->cluster_id, sizeof t->cluster_id);
    unsigned i;
    if (!is_cluster_id(t->cluster_id, len)) {
        jr__errf(errmsg, "cluster id is not %d lowercase hex digits",
                 JR__CLUSTER_ID_LEN);
        return JR_EINVAL;
    }
    if (t->n_addresses == 0 || t->n_addresses > JR__TOKEN_MAX_ADDRESSES) {
        jr__errf(errmsg, "a join token carries 1 to %d addresses, not %u",
                 JR__TOKEN_MAX_ADDRESSES, t->n_addresses);
        return JR_EINVAL;
    }
    for (i = 0; i < t->n_addresses; i++) {
        len = strnlen(t->addresses[i], sizeof t->addresses[i]);
        if (!is_address(t->addresses[i], len)) {
            jr__errf(errmsg,
                     "address %u is not 1 to %d printable characters "
                     "without spaces",
                     i, JR__TOKEN_ADDRESS_MAX);
            return JR_EINVAL;
        }
    }
    return 0;
}

/* Pack the payload of t into b; fails only if b is too small, which
 * JR__TOKEN_PAYLOAD_MAX rules out for a checked t. */
static int pack_payload(const struct jr__join_token *t, struct fixed_buf *b)
{
    msgpack_packer pk;
    unsigned i;
    int rv = 0;
    msgpack_packer_init(&pk, b, fixed_write);
    rv |= msgpack_pack_array(&pk, 5);
    rv |= msgpack_pack_uint64(&pk, JR__TOKEN_VERSION);
    rv |= msgpack_pack_str(&pk, JR__CLUSTER_ID_LEN);
    rv |= msgpack_pack_str_body(&pk, t->cluster_id, JR__CLUSTER_ID_LEN);
    rv |= msgpack_pack_array(&pk, t->n_addresses);
    for (i = 0; i < t->n_addresses; i++) {
        size_t len = strlen(t->addresses[i]);
        rv |= msgpack_pack_str(&pk, len);
        rv |= msgpack_pack_str_body(&pk, t->addresses[i], len);
    }
    rv |= msgpack_pack_uint64(&pk, t->expires_ms);
    rv |= msgpack_pack_bin(&pk, JR__TOKEN_NONCE_LEN);
    rv |= msgpack_pack_bin_body(&pk, t->nonce, JR__TOKEN_NONCE_LEN);
    return rv == 0 ? 0 : -1;
}

int jr__token_encode(const struct jr__join_token *t,
                     const unsigned char secret[JR__SECRET_LEN],
                     char *out,
                     size_t out_size,
                     char *errmsg)
{
    unsigned char bin[DECODED_MAX];
    struct fixed_buf b = {bin, JR__TOKEN_PAYLOAD_MAX, 0};
    size_t need;
    int rv;
    if ((rv = sodium_ready(errmsg)) != 0) {
        return rv;
    }
    if ((rv = check_encodable(t, errmsg)) != 0) {
        return rv;
    }
    if (pack_payload(t, &b) != 0) {
        jr__errf(errmsg, "join token payload over %d bytes",
                 JR__TOKEN_PAYLOAD_MAX);
        return JR_EINVAL;
    }
    /* Tag exactly the payload bytes the token carries: the verifier hashes
     * what it received, never a re-encoding. */
    crypto_auth_hmacsha256(bin + b.len, bin, b.len, secret);
    need = PREFIX_LEN +
           sodium_base64_encoded_len(b.len + JR__TOKEN_MAC_LEN, B64_VARIANT);
    if (out_size < need) {
        jr__errf(errmsg, "join token needs a buffer of %zu bytes, not %zu",
                 need, out_size);
        return JR_EINVAL;
    }
    memcpy(out, JR__TOKEN_PREFIX, PREFIX_LEN);
    (void)sodium_bin2base64(out + PREFIX_LEN, out_size - PREFIX_LEN, bin,
                            b.len + JR__TOKEN_MAC_LEN, B64_VARIANT);
    return 0;
}

/* ---- decoding ---- */

/* A decoded token text: payload then mac, in one buffer. */
struct decoded {
    unsigned char bin[DECODED_MAX];
    size_t payload_len; /* the mac is at bin + payload_len */
};

/* The prefix: "jaco1.", or "jaco<digits>." of a version we do not know
 * (so a token from a newer release says so), or anything else. */
static int check_prefix(const char *text, char *errmsg)
{
    size_t n = 0;
    if (strncmp(text, JR__TOKEN_PREFIX, PREFIX_LEN) == 0) {
        return 0;
    }
    if (strncmp(text, "jaco", 4) == 0) {
        while (n < 9 && text[4 + n] >= '0' && text[4 + n] <= '9') {
            n++;
        }
        if (n > 0 && text[4 + n] == '.') {
            jr__errf(errmsg, "join token of an unknown version %.*s", (int)n,
                     text + 4);
            return JR_EINVAL;
        }
    }
    jr__errf(errmsg, "not a JACO join token (it starts with \"%s\")",
             JR__TOKEN_PREFIX);
    return JR_EINVAL;
}

static bool is_b64url(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int decode_text(const char *text, struct decoded *d, char *errmsg)
{
    const char *b64;
    size_t len, b64_len, bin_len, i;
    int rv;
    if ((rv = check_prefix(text, errmsg)) != 0) {
        return rv;
    }
    /* Bound the work before anything else looks at the text. */
    len = strnlen(text, JR__TOKEN_TEXT_SIZE);
    if (len >= JR__TOKEN_TEXT_SIZE) {
        jr__errf(errmsg, "join token too long (over %zu characters)",
                 (size_t)JR__TOKEN_TEXT_SIZE - 1);
        return JR_EINVAL;
    }
    b64 = text + PREFIX_LEN;
    b64_len = len - PREFIX_LEN;
    /* Check the alphabet ourselves: libsodium 1.0.18 decodes every byte
     * from 0x80 to 0xff as '_' where char is signed, which would make 128
     * more texts of one token (the test substituting each character
     * caught it). */
    for (i = 0; i < b64_len; i++) {
        unsigned char c = (unsigned char)b64[i];
        if (!is_b64url(c)) {
            if (c > 0x20 && c < 0x7f) {
                jr__errf(errmsg,
                         "join token has an invalid character '%c' at offset "
                         "%zu",
                         c, PREFIX_LEN + i);
            } else {
                jr__errf(errmsg,
                         "join token has an invalid byte 0x%02x at offset %zu",
                         c, PREFIX_LEN + i);
            }
            return JR_EINVAL;
        }
    }
    if (sodium_base642bin(d->bin, sizeof d->bin, b64, b64_len, NULL, &bin_len,
                          NULL, B64_VARIANT) != 0) {
        /* Every character is in the alphabet, but the last one leaves bits
         * over. A length of 4k+1 can only be a cut-off token; otherwise the
         * unused bits of the last character are not zero, which a cut also
         * causes (decoders that ignore those bits would accept several
         * texts for one token; a token has exactly one). */
        if (b64_len % 4 == 1) {
            jr__errf(errmsg, "truncated join token");
        } else {
            jr__errf(errmsg,
                     "truncated or corrupt join token (it ends part-way "
                     "through a byte)");
        }
        return JR_EINVAL;
    }
    if (bin_len < DECODED_MIN) {
        jr__errf(errmsg, "truncated join token");
        return JR_EINVAL;
    }
    d->payload_len = bin_len - JR__TOKEN_MAC_LEN;
    return 0;
}

/* Copy a validated str into a fixed buffer of at least len + 1 bytes. */
static void copy_str(char *dst, const msgpack_object *o)
{
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
}

static int decode_fields(const msgpack_object *o,
                         struct jr__join_token *t,
                         char *errmsg)
{
    const msgpack_object *f, *a;
    uint32_t i, n;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0) {
        jr__errf(errmsg, "join token is corrupt: payload is not an array");
        return JR_EINVAL;
    }
    f = o->via.array.ptr;
    /* Version first, whatever the shape: a newer layout must be reported
     * as a newer version, not as corruption. */
    if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        jr__errf(errmsg, "join token is corrupt: bad version field");
        return JR_EINVAL;
    }
    if (f[0].via.u64 != JR__TOKEN_VERSION) {
        jr__errf(errmsg, "join token of an unknown version %llu",
                 (unsigned long long)f[0].via.u64);
        return JR_EINVAL;
    }
    if (o->via.array.size != 5) {
        jr__errf(errmsg, "join token is corrupt: %u fields, want 5",
                 (unsigned)o->via.array.size);
        return JR_EINVAL;
    }
    if (f[1].type != MSGPACK_OBJECT_STR ||
        !is_cluster_id(f[1].via.str.ptr, f[1].via.str.size)) {
        jr__errf(errmsg, "join token is corrupt: bad cluster id");
        return JR_EINVAL;
    }
    copy_str(t->cluster_id, &f[1]);
    if (f[2].type != MSGPACK_OBJECT_ARRAY) {
        jr__errf(errmsg, "join token is corrupt: addresses are not an array");
        return JR_EINVAL;
    }
    n = f[2].via.array.size;
    if (n == 0) {
        jr__errf(errmsg, "join token carries no address");
        return JR_EINVAL;
    }
    if (n > JR__TOKEN_MAX_ADDRESSES) {
        jr__errf(errmsg, "join token carries %u addresses, at most %d",
                 (unsigned)n, JR__TOKEN_MAX_ADDRESSES);
        return JR_EINVAL;
    }
    for (i = 0; i < n; i++) {
        a = &f[2].via.array.ptr[i];
        if (a->type != MSGPACK_OBJECT_STR || a->via.str.size == 0) {
            jr__errf(errmsg, "join token address %u is not a non-empty string",
                     (unsigned)i);
            return JR_EINVAL;
        }
        if (a->via.str.size > JR__TOKEN_ADDRESS_MAX) {
            jr__errf(errmsg, "join token address %u is longer than %d bytes",
                     (unsigned)i, JR__TOKEN_ADDRESS_MAX);
            return JR_EINVAL;
        }
        if (!is_address(a->via.str.ptr, a->via.str.size)) {
            jr__errf(errmsg,
                     "join token address %u has a character that is not "
                     "printable ASCII",
                     (unsigned)i);
            return JR_EINVAL;
        }
        copy_str(t->addresses[i], a);
    }
    t->n_addresses = n;
    if (f[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        jr__errf(errmsg, "join token is corrupt: bad expiry");
        return JR_EINVAL;
    }
    t->expires_ms = f[3].via.u64;
    if (f[4].type != MSGPACK_OBJECT_BIN ||
        f[4].via.bin.size != JR__TOKEN_NONCE_LEN) {
        jr__errf(errmsg, "join token is corrupt: bad nonce");
        return JR_EINVAL;
    }
    memcpy(t->nonce, f[4].via.bin.ptr, JR__TOKEN_NONCE_LEN);
    return 0;
}

/* Payload bytes to t. t may be partly written on failure: callers pass a
 * local. */
static int decode_payload(const unsigned char *bytes,
                          size_t len,
                          struct jr__join_token *t,
                          char *errmsg)
{
    msgpack_unpacked u;
    msgpack_unpack_return ret;
    const char *payload = (const char *)bytes;
    size_t off = 0;
    int rv;
    /* A cut-off token loses its tail, so what is taken for the payload is
     * then a prefix of the payload and the MAC: not one whole value. */
    if (len == 0 || !jr__msgpack_bounded(payload, len)) {
        jr__errf(errmsg, "truncated or corrupt join token");
        return JR_EINVAL;
    }
    memset(t, 0, sizeof *t);
    msgpack_unpacked_init(&u);
    ret = msgpack_unpack_next(&u, payload, len, &off);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR) {
        jr__errf(errmsg, "decode join token: out of memory");
        rv = JR_ENOMEM;
    } else if (ret != MSGPACK_UNPACK_SUCCESS || off != len) {
        jr__errf(errmsg, "truncated or corrupt join token");
        rv = JR_EINVAL;
    } else {
        rv = decode_fields(&u.data, t, errmsg);
    }
    msgpack_unpacked_destroy(&u);
    return rv;
}

/* Text to d (payload and mac) and t. */
static int decode(const char *text,
                  struct decoded *d,
                  struct jr__join_token *t,
                  char *errmsg)
{
    int rv;
    if (text == NULL) {
        jr__errf(errmsg, "no join token");
        return JR_EINVAL;
    }
    if ((rv = decode_text(text, d, errmsg)) != 0) {
        return rv;
    }
    return decode_payload(d->bin, d->payload_len, t, errmsg);
}

int jr__token_split(const char *text,
                    struct jr__join_token *t,
                    unsigned char payload[JR__TOKEN_PAYLOAD_MAX],
                    size_t *payload_len,
                    unsigned char mac[JR__TOKEN_MAC_LEN],
                    char *errmsg)
{
    struct decoded d;
    struct jr__join_token tok;
    int rv = decode(text, &d, &tok, errmsg);
    if (rv != 0) {
        return rv;
    }
    memcpy(payload, d.bin, d.payload_len);
    *payload_len = d.payload_len;
    memcpy(mac, d.bin + d.payload_len, JR__TOKEN_MAC_LEN);
    sodium_memzero(&d, sizeof d);
    *t = tok;
    return 0;
}

int jr__token_payload_decode(const unsigned char *payload,
                             size_t len,
                             struct jr__join_token *t,
                             char *errmsg)
{
    struct jr__join_token tok;
    int rv;
    if (len > JR__TOKEN_PAYLOAD_MAX) {
        jr__errf(errmsg, "join token payload of %zu bytes, at most %d", len,
                 (int)JR__TOKEN_PAYLOAD_MAX);
        return JR_EINVAL;
    }
    rv = decode_payload(payload, len, &tok, errmsg);
    if (rv == 0) {
        *t = tok;
    }
    return rv;
}

int jr__token_parse(const char *text, struct jr__join_token *t, char *errmsg)
{
    struct decoded d;
    struct jr__join_token tok;
    int rv = decode(text, &d, &tok, errmsg);
    if (rv != 0) {
        return rv;
    }
    *t = tok;
    return 0;
}

static void format_utc(uint64_t ms, char *out, size_t size)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    /* gmtime_r fails past year 2^31; such an expiry is still reported. */
    if (gmtime_r(&s, &tm) == NULL ||
        strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        (void)snprintf(out, size, "%llu ms after the epoch",
                       (unsigned long long)ms);
    }
}

int jr__token_verify(const char *text,
                     const unsigned char secret[JR__SECRET_LEN],
                     const char *cluster_id,
                     uint64_t now_ms,
                     struct jr__join_token *t,
                     char *errmsg)
{
    struct decoded d;
    struct jr__join_token tok;
    int rv;
    if ((rv = sodium_ready(errmsg)) != 0) {
        return rv;
    }
    if ((rv = decode(text, &d, &tok, errmsg)) != 0) {
        return rv;
    }
    /* The cluster id is public (INFO tells anyone): naming both is safe. */
    if (cluster_id == NULL || cluster_id[0] == '\0') {
        jr__errf(errmsg,
                 "join token is for cluster %s, this node belongs to no "
                 "cluster",
                 tok.cluster_id);
        return JR_EMISMATCH;
    }
    if (strcmp(tok.cluster_id, cluster_id) != 0) {
        jr__errf(errmsg, "join token is for cluster %s, this is cluster %.*s",
                 tok.cluster_id, JR__CLUSTER_ID_LEN, cluster_id);
        return JR_EMISMATCH;
    }
    if (crypto_auth_hmacsha256_verify(d.bin + d.payload_len, d.bin,
                                      d.payload_len, secret) != 0) {
        jr__errf(errmsg, "join token was not issued by this cluster (bad MAC)");
        return JR_EMISMATCH;
    }
    if ((rv = jr__token_check_expiry(&tok, now_ms, errmsg)) != 0) {
        return rv;
    }
    *t = tok;
    return 0;
}

int jr__token_check_expiry(const struct jr__join_token *t,
                           uint64_t now_ms,
                           char *errmsg)
{
    char when[64];
    if (now_ms >= t->expires_ms) {
        format_utc(t->expires_ms, when, sizeof when);
        jr__errf(errmsg, "join token expired at %s", when);
        return JR_EINVAL;
    }
    return 0;
}

bool jr__token_nonce_equal(const unsigned char a[JR__TOKEN_NONCE_LEN],
                           const unsigned char b[JR__TOKEN_NONCE_LEN])
{
    return sodium_memcmp(a, b, JR__TOKEN_NONCE_LEN) == 0;
}

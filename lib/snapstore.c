/* snapstore.c: snapshot files, a CRC32-checked header followed by the state
 * as one lz4 frame, written durably and read back with every length bounded. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lz4frame.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "jr_internal.h"
#include "snapstore.h"

/* Header layout, integers little-endian:
 *   0  magic "JRSNAP01"        8
 *   8  format version          u32
 *  12  header length           u32 (all of it, CRC included)
 *  16  index                   u64
 *  24  term                    u64
 *  32  conf_index              u64
 *  40  data_len                u64
 *  48  configuration           msgpack [[id, address, role], ...]
 *  header length - 4: CRC32 of every byte before it.
 * Then one lz4 frame, with content size, content checksum and block
 * checksums, ends the file. */
#define SNAP_MAGIC "JRSNAP01"
#define SNAP_MAGIC_LEN 8
#define SNAP_VERSION 1
#define SNAP_FIXED_LEN 48
#define SNAP_CRC_LEN 4
#define SNAP_MIN_HEADER (SNAP_FIXED_LEN + 1 + SNAP_CRC_LEN)

/* Bounds on what a header may claim, so that a damaged or hostile file can
 * never cause a large allocation. put refuses configurations beyond them. */
#define SNAP_MAX_SERVERS 1024
#define SNAP_MAX_ADDRESS 1024
#define SNAP_MAX_HEADER (2u << 20)
/* lz4 turns one byte of frame into at most 255 bytes of state (a match
 * length byte of 255), so a longer state than this is a lie. */
#define SNAP_MAX_RATIO 256

#define SNAP_CHUNK (256u << 10) /* state fed to lz4, or frame read, at once */
#define SNAP_PATH_MAX 4096
#define SNAP_PREFIX "snapshot-"
#define SNAP_PREFIX_LEN (sizeof SNAP_PREFIX - 1)
#define SNAP_TMP ".tmp"
#define SNAP_TMP_LEN (sizeof SNAP_TMP - 1)
#define SNAP_DIGITS 20

#define SNAP_ACTION                                                    \
    "remove this file to fall back to the previous snapshot, or wipe " \
    "the data directory and rejoin the node"

struct snap_header {
    uint32_t header_len;
    uint64_t index;
    uint64_t term;
    uint64_t conf_index;
    uint64_t data_len;
    uint8_t *buf; /* the whole header, malloc'd */
};

/* A final snapshot name found in the directory. */
struct snap_name {
    uint64_t term;
    uint64_t index;
};

static void put_u32(uint8_t *p, uint32_t v)
{
    int i;
    for (i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    int i;
    for (i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* The code for a failed write-side system call. */
static int io_error(int e)
{
    switch (e) {
        case ENOSPC:
        case EDQUOT: return JR_ENOSPACE;
        case ENOMEM: return JR_ENOMEM;
        default: return JR_EIO;
    }
}

/* Read up to len bytes at off; *got < len only at the end of the file.
 * Returns 0 or an errno value. */
static int read_at(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, p + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
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

/* "<dir>/snapshot-<term>-<index>[.tmp]"; JR_EINVAL if it does not fit. */
static int snap_path(char *out,
                     const char *dir,
                     uint64_t term,
                     uint64_t index,
                     bool tmp,
                     char *errmsg)
{
    int n = snprintf(out, SNAP_PATH_MAX, "%s/" SNAP_PREFIX "%020llu-%020llu%s",
                     dir, (unsigned long long)term, (unsigned long long)index,
                     tmp ? SNAP_TMP : "");
    if (n < 0 || n >= SNAP_PATH_MAX) {
        jr__errf(errmsg, "snapshot directory path too long: %s", dir);
        return JR_EINVAL;
    }
    return 0;
}

/* Exactly SNAP_DIGITS decimal digits that fit in 64 bits. */
static bool digits_parse(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    int i;
    for (i = 0; i < SNAP_DIGITS; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10) {
            return false;
        }
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

/* A final name "snapshot-<term>-<index>" as put writes it; anything else,
 * temporary names included, is not a snapshot. */
static bool name_parse(const char *name, struct snap_name *out)
{
    const char *p = name;
    struct snap_name sn;
    if (strncmp(p, SNAP_PREFIX, SNAP_PREFIX_LEN) != 0) {
        return false;
    }
    p += SNAP_PREFIX_LEN;
    if (!digits_parse(p, &sn.term) || p[SNAP_DIGITS] != '-') {
        return false;
    }
    p += SNAP_DIGITS + 1;
    if (!digits_parse(p, &sn.index) || p[SNAP_DIGITS] != '\0') {
        return false;
    }
    *out = sn;
    return true;
}

/* A temporary file of a put that did not finish. Only our own names: the
 * directory may hold other stores' files. */
static bool name_is_tmp(const char *name)
{
    size_t len = strlen(name);
    return len > SNAP_PREFIX_LEN + SNAP_TMP_LEN &&
           strncmp(name, SNAP_PREFIX, SNAP_PREFIX_LEN) == 0 &&
           strcmp(name + len - SNAP_TMP_LEN, SNAP_TMP) == 0;
}

/* Newest first: by index, then term. */
static int name_cmp_newest_first(const void *a, const void *b)
{
    const struct snap_name *x = a;
    const struct snap_name *y = b;
    if (x->index != y->index) {
        return x->index < y->index ? 1 : -1;
    }
    if (x->term != y->term) {
        return x->term < y->term ? 1 : -1;
    }
    return 0;
}

/* ---- header encoding ---- */

static int header_encode(const struct jr__snapshot_info *info,
                         uint64_t data_len,
                         uint8_t **out,
                         size_t *out_len,
                         char *errmsg)
{
    const struct raft_configuration *conf = &info->conf;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint8_t *buf;
    size_t len;
    unsigned i;
    bool ok;
    int rv;

    if (conf->n > SNAP_MAX_SERVERS) {
        jr__errf(errmsg, "snapshot configuration has %u servers, more than %u",
                 conf->n, SNAP_MAX_SERVERS);
        rv = JR_EINVAL;
        goto err;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ok = msgpack_pack_array(&pk, conf->n) == 0;
    for (i = 0; i < conf->n && ok; i++) {
        const struct raft_server *s = &conf->servers[i];
        size_t alen = strlen(s->address);
        if (alen > SNAP_MAX_ADDRESS) {
            jr__errf(errmsg,
                     "snapshot configuration: address of server %llu is %zu "
                     "bytes, more than %u",
                     (unsigned long long)s->id, alen, SNAP_MAX_ADDRESS);
            rv = JR_EINVAL;
            goto err_sb;
        }
        ok = msgpack_pack_array(&pk, 3) == 0 &&
             msgpack_pack_uint64(&pk, s->id) == 0 &&
             msgpack_pack_str(&pk, alen) == 0 &&
             msgpack_pack_str_body(&pk, s->address, alen) == 0 &&
             msgpack_pack_int(&pk, s->role) == 0;
    }
    if (!ok) {
        jr__errf(errmsg, "encode snapshot configuration: out of memory");
        rv = JR_ENOMEM;
        goto err_sb;
    }
    len = SNAP_FIXED_LEN + sb.size + SNAP_CRC_LEN;
    /* Bounded by the checks above. */
    assert(len <= SNAP_MAX_HEADER);
    if ((buf = malloc(len)) == NULL) {
        jr__errf(errmsg, "encode snapshot header: out of memory");
        rv = JR_ENOMEM;
        goto err_sb;
    }
    memcpy(buf, SNAP_MAGIC, SNAP_MAGIC_LEN);
    put_u32(buf + 8, SNAP_VERSION);
    put_u32(buf + 12, (uint32_t)len);
    put_u64(buf + 16, info->index);
    put_u64(buf + 24, info->term);
    put_u64(buf + 32, info->conf_index);
    put_u64(buf + 40, data_len);
    memcpy(buf + SNAP_FIXED_LEN, sb.data, sb.size);
    put_u32(
        buf + len - SNAP_CRC_LEN,
        (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(len - SNAP_CRC_LEN)));
    msgpack_sbuffer_destroy(&sb);
    *out = buf;
    *out_len = len;
    return 0;

err_sb:
    msgpack_sbuffer_destroy(&sb);
err:
    return rv;
}

/* ---- header decoding ---- */

/* Length of the msgpack unsigned integer or string at p[0..len), 0 if it is
 * something else or runs past len. *slen gets a string's length. */
static size_t scalar_size(const uint8_t *p, size_t len, bool str, size_t *slen)
{
    size_t head;
    size_t body = 0;
    if (len == 0) {
        return 0;
    }
    if (!str) {
        switch (p[0]) {
            case 0xcc: head = 2; break;
            case 0xcd: head = 3; break;
            case 0xce: head = 5; break;
            case 0xcf: head = 9; break;
            default: head = p[0] <= 0x7f ? 1 : 0; break;
        }
        return head <= len ? head : 0;
    }
    if ((p[0] & 0xe0) == 0xa0) {
        head = 1;
        body = p[0] & 0x1f;
    } else if (p[0] == 0xd9 && len >= 2) {
        head = 2;
        body = p[1];
    } else if (p[0] == 0xda && len >= 3) {
        head = 3;
        body = ((size_t)p[1] << 8) | p[2];
    } else if (p[0] == 0xdb && len >= 5) {
        head = 5;
        body = ((size_t)p[1] << 24) | ((size_t)p[2] << 16) |
               ((size_t)p[3] << 8) | p[4];
    } else {
        return 0;
    }
    if (body > len - head) {
        return 0;
    }
    *slen = body;
    return head + body;
}

/* Length of one [id, address, role] at p[0..len), 0 if it is malformed.
 * *alen gets the address length. */
static size_t server_size(const uint8_t *p, size_t len, size_t *alen)
{
    size_t pos = 1;
    size_t s;
    size_t unused;
    if (len == 0 || p[0] != 0x93) { /* fixarray of 3 */
        return 0;
    }
    if ((s = scalar_size(p + pos, len - pos, false, &unused)) == 0) {
        return 0;
    }
    pos += s;
    if ((s = scalar_size(p + pos, len - pos, true, alen)) == 0) {
        return 0;
    }
    pos += s;
    if ((s = scalar_size(p + pos, len - pos, false, &unused)) == 0) {
        return 0;
    }
    return pos + s;
}

/* Check the shape and every size of the configuration before msgpack-c
 * sees it: msgpack-c allocates what an array header claims up front. */
static bool conf_shape_ok(const uint8_t *p,
                          size_t len,
                          char *reason,
                          size_t reason_size)
{
    size_t pos;
    size_t n;
    size_t i;
    if (len >= 1 && (p[0] & 0xf0) == 0x90) {
        n = p[0] & 0x0f;
        pos = 1;
    } else if (len >= 3 && p[0] == 0xdc) {
        n = ((size_t)p[1] << 8) | p[2];
        pos = 3;
    } else {
        (void)snprintf(reason, reason_size, "configuration is not an array");
        return false;
    }
    if (n > SNAP_MAX_SERVERS) {
        (void)snprintf(reason, reason_size,
                       "configuration claims %zu servers, more than %u", n,
                       SNAP_MAX_SERVERS);
        return false;
    }
    for (i = 0; i < n; i++) {
        size_t alen = 0;
        size_t s = server_size(p + pos, len - pos, &alen);
        if (s == 0) {
            (void)snprintf(reason, reason_size,
                           "configuration: server %zu is not [id, address, "
                           "role]",
                           i);
            return false;
        }
        if (alen > SNAP_MAX_ADDRESS) {
            (void)snprintf(reason, reason_size,
                           "configuration: address of server %zu is %zu "
                           "bytes, more than %u",
                           i, alen, SNAP_MAX_ADDRESS);
            return false;
        }
        pos += s;
    }
    if (pos != len) {
        (void)snprintf(reason, reason_size,
                       "configuration: %zu stray bytes after it", len - pos);
        return false;
    }
    return true;
}

/* Decode the configuration into conf (initialised here). JR_ECORRUPT with
 * reason set, or JR_ENOMEM. */
static int conf_decode(const uint8_t *p,
                       size_t len,
                       struct raft_configuration *conf,
                       char *reason,
                       size_t reason_size)
{
    msgpack_unpacked u;
    const msgpack_object_array *a;
    size_t off = 0;
    uint32_t i;
    int rv;

    raft_configuration_init(conf);
    if (!conf_shape_ok(p, len, reason, reason_size)) {
        rv = JR_ECORRUPT;
        goto err;
    }
    msgpack_unpacked_init(&u);
    switch (msgpack_unpack_next(&u, (const char *)p, len, &off)) {
        case MSGPACK_UNPACK_SUCCESS: break;
        case MSGPACK_UNPACK_NOMEM_ERROR: rv = JR_ENOMEM; goto err_unpacked;
        default:
            (void)snprintf(reason, reason_size,
                           "configuration is not valid msgpack");
            rv = JR_ECORRUPT;
            goto err_unpacked;
    }
    /* conf_shape_ok has checked the shape; msgpack-c must agree. */
    if (off != len || u.data.type != MSGPACK_OBJECT_ARRAY) {
        (void)snprintf(reason, reason_size, "configuration is malformed");
        rv = JR_ECORRUPT;
        goto err_unpacked;
    }
    a = &u.data.via.array;
    for (i = 0; i < a->size; i++) {
        const msgpack_object *f = a->ptr[i].via.array.ptr;
        char address[SNAP_MAX_ADDRESS + 1];
        uint32_t alen;
        int r;
        if (a->ptr[i].type != MSGPACK_OBJECT_ARRAY ||
            a->ptr[i].via.array.size != 3 ||
            f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            f[1].type != MSGPACK_OBJECT_STR ||
            f[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            (void)snprintf(reason, reason_size,
                           "configuration: server %u is not [id, address, "
                           "role]",
                           i);
            rv = JR_ECORRUPT;
            goto err_unpacked;
        }
        alen = f[1].via.str.size;
        if (alen > SNAP_MAX_ADDRESS ||
            memchr(f[1].via.str.ptr, '\0', alen) != NULL) {
            (void)snprintf(reason, reason_size,
                           "configuration: bad address of server %u", i);
            rv = JR_ECORRUPT;
            goto err_unpacked;
        }
        memcpy(address, f[1].via.str.ptr, alen);
        address[alen] = '\0';
        if (f[0].via.u64 == 0) {
            (void)snprintf(reason, reason_size,
                           "configuration: server %u has id 0", i);
            rv = JR_ECORRUPT;
            goto err_unpacked;
        }
        if (f[2].via.u64 > RAFT_SPARE) {
            (void)snprintf(reason, reason_size,
                           "configuration: server %u has role %llu", i,
                           (unsigned long long)f[2].via.u64);
            rv = JR_ECORRUPT;
            goto err_unpacked;
        }
        r = raft_configuration_add(conf, f[0].via.u64, address,
                                   (int)f[2].via.u64);
        if (r == RAFT_NOMEM) {
            rv = JR_ENOMEM;
            goto err_unpacked;
        }
        if (r != 0) {
            (void)snprintf(reason, reason_size, "configuration: server %u: %s",
                           i, raft_strerror(r));
            rv = JR_ECORRUPT;
            goto err_unpacked;
        }
    }
    msgpack_unpacked_destroy(&u);
    return 0;

err_unpacked:
    msgpack_unpacked_destroy(&u);
err:
    raft_configuration_close(conf);
    return rv;
}

static int header_corrupt(char *errmsg, const char *path, const char *reason)
{
    jr__errf(errmsg, "%s: corrupt snapshot header (%s): " SNAP_ACTION, path,
             reason);
    return JR_ECORRUPT;
}

/* Read and verify the header of fd (the file path, size bytes long). On
 * success h->buf holds the whole header; the caller frees it. */
static int header_read(int fd,
                       const char *path,
                       uint64_t size,
                       struct snap_header *h,
                       char *errmsg)
{
    uint8_t fixed[SNAP_FIXED_LEN];
    char reason[128];
    struct snap_header hd;
    uint64_t frame_len;
    size_t got;
    int e;

    if ((e = read_at(fd, fixed, sizeof fixed, 0, &got)) != 0) {
        jr__errf(errmsg, "read %s: %s", path, strerror(e));
        return JR_EIO;
    }
    if (got < sizeof fixed) {
        (void)snprintf(reason, sizeof reason, "truncated at byte %zu", got);
        return header_corrupt(errmsg, path, reason);
    }
    if (memcmp(fixed, SNAP_MAGIC, SNAP_MAGIC_LEN) != 0) {
        return header_corrupt(errmsg, path, "bad magic");
    }
    if (get_u32(fixed + 8) != SNAP_VERSION) {
        (void)snprintf(reason, sizeof reason, "unknown format version %u",
                       (unsigned)get_u32(fixed + 8));
        return header_corrupt(errmsg, path, reason);
    }
    hd.header_len = get_u32(fixed + 12);
    if (hd.header_len < SNAP_MIN_HEADER || hd.header_len > SNAP_MAX_HEADER) {
        (void)snprintf(reason, sizeof reason, "header length %u out of range",
                       (unsigned)hd.header_len);
        return header_corrupt(errmsg, path, reason);
    }
    if (hd.header_len > size) {
        (void)snprintf(reason, sizeof reason,
                       "header length %u but the file has %llu bytes",
                       (unsigned)hd.header_len, (unsigned long long)size);
        return header_corrupt(errmsg, path, reason);
    }
    if ((hd.buf = malloc(hd.header_len)) == NULL) {
        jr__errf(errmsg, "read %s: out of memory", path);
        return JR_ENOMEM;
    }
    if ((e = read_at(fd, hd.buf, hd.header_len, 0, &got)) != 0) {
        jr__errf(errmsg, "read %s: %s", path, strerror(e));
        free(hd.buf);
        return JR_EIO;
    }
    if (got < hd.header_len) {
        /* The file shrank since fstat. */
        free(hd.buf);
        (void)snprintf(reason, sizeof reason, "truncated at byte %zu", got);
        return header_corrupt(errmsg, path, reason);
    }
    if (get_u32(hd.buf + hd.header_len - SNAP_CRC_LEN) !=
        (uint32_t)crc32(crc32(0L, Z_NULL, 0), hd.buf,
                        (uInt)(hd.header_len - SNAP_CRC_LEN))) {
        free(hd.buf);
        return header_corrupt(errmsg, path, "checksum mismatch");
    }
    hd.index = get_u64(hd.buf + 16);
    hd.term = get_u64(hd.buf + 24);
    hd.conf_index = get_u64(hd.buf + 32);
    hd.data_len = get_u64(hd.buf + 40);
    frame_len = size - hd.header_len;
    if (hd.data_len / SNAP_MAX_RATIO > frame_len ||
        (uint64_t)(size_t)hd.data_len != hd.data_len) {
        free(hd.buf);
        (void)snprintf(reason, sizeof reason,
                       "state of %llu bytes cannot fit in %llu bytes of lz4",
                       (unsigned long long)hd.data_len,
                       (unsigned long long)frame_len);
        return header_corrupt(errmsg, path, reason);
    }
    *h = hd;
    return 0;
}

/* Open path for reading and get its size. */
static int file_open(const char *path, int *fd, uint64_t *size, char *errmsg)
{
    struct stat st;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    int e;
    if (f < 0) {
        e = errno;
        jr__errf(errmsg, "open %s: %s", path, strerror(e));
        return e == ENOMEM ? JR_ENOMEM : JR_EIO;
    }
    if (fstat(f, &st) != 0) {
        e = errno;
        jr__errf(errmsg, "stat %s: %s", path, strerror(e));
        /* Read-only: nothing to lose if close fails. */
        (void)close(f);
        return JR_EIO;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* ---- put ---- */

static int unpack(const struct raft_buffer *frame,
                  uint64_t data_len,
                  struct raft_buffer *data,
                  char *errmsg);
static int packed_len(const struct raft_buffer *frame,
                      uint64_t *data_len,
                      char *errmsg);

/* Every WRITEBACK_STEP bytes written, their writeback starts: with
 * gigabytes of RAM the kernel would keep a whole snapshot dirty until the
 * final fsync, which then waited for the disk alone after the compression
 * had not waited for it at all. */
#define WRITEBACK_STEP (8u << 20)

struct out_file {
    int fd;
    uint64_t off;     /* bytes in the file so far */
    uint64_t flushed; /* writeback started below this offset */
};

static int out_write(struct out_file *o, const void *p, size_t len)
{
    int e = jr__write_all(o->fd, p, len);
    if (e != 0) {
        return e;
    }
    o->off += len;
    if (o->off - o->flushed >= WRITEBACK_STEP) {
        (void)sync_file_range(o->fd, (off_t)o->flushed,
                              (off_t)(o->off - o->flushed),
                              SYNC_FILE_RANGE_WRITE);
        o->flushed = o->off;
    }
    return 0;
}

/* Compress bufs into o as one lz4 frame, chunk by chunk. */
static int frame_write(struct out_file *o,
                       const char *path,
                       const struct raft_buffer bufs[],
                       unsigned n,
                       uint64_t data_len,
                       char *errmsg)
{
    LZ4F_preferences_t prefs;
    LZ4F_cctx *cctx;
    uint8_t *out;
    size_t cap;
    size_t r;
    unsigned i;
    int e;
    int rv;

    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max256KB;
    prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    /* The content checksum misses damage that decodes to the same state
     * (a match offset changed between two equal runs); block checksums
     * cover every byte of compressed data. */
    prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
    prefs.frameInfo.contentSize = data_len;
    /* Enough for any one update of SNAP_CHUNK, for the frame header and for
     * the end of the frame. */
    cap = LZ4F_compressBound(SNAP_CHUNK, &prefs);
    if (LZ4F_isError(LZ4F_createCompressionContext(&cctx, LZ4F_VERSION))) {
        jr__errf(errmsg, "compress %s: out of memory", path);
        rv = JR_ENOMEM;
        goto err;
    }
    if ((out = malloc(cap)) == NULL) {
        jr__errf(errmsg, "compress %s: out of memory", path);
        rv = JR_ENOMEM;
        goto err_cctx;
    }
    r = LZ4F_compressBegin(cctx, out, cap, &prefs);
    if (LZ4F_isError(r)) {
        goto err_lz4;
    }
    if ((e = out_write(o, out, r)) != 0) {
        goto err_write;
    }
    for (i = 0; i < n; i++) {
        const uint8_t *p = bufs[i].base;
        size_t left = bufs[i].len;
        while (left > 0) {
            size_t chunk = left < SNAP_CHUNK ? left : SNAP_CHUNK;
            r = LZ4F_compressUpdate(cctx, out, cap, p, chunk, NULL);
            if (LZ4F_isError(r)) {
                goto err_lz4;
            }
            if (r > 0 && (e = out_write(o, out, r)) != 0) {
                goto err_write;
            }
            p += chunk;
            left -= chunk;
        }
    }
    r = LZ4F_compressEnd(cctx, out, cap, NULL);
    if (LZ4F_isError(r)) {
        goto err_lz4;
    }
    if ((e = out_write(o, out, r)) != 0) {
        goto err_write;
    }
    free(out);
    (void)LZ4F_freeCompressionContext(cctx); /* always succeeds */
    return 0;

err_lz4:
    jr__errf(errmsg, "compress %s: %s", path, LZ4F_getErrorName(r));
    rv = JR_EIO;
    goto err_out;
err_write:
    jr__errf(errmsg, "write %s: %s", path, strerror(e));
    rv = io_error(e);
err_out:
    free(out);
err_cctx:
    (void)LZ4F_freeCompressionContext(cctx);
err:
    return rv;
}

static int dir_sync(const char *dir, char *errmsg)
{
    int e = jr__fsync_dir(dir);
    if (e != 0) {
        jr__errf(errmsg, "fsync directory %s: %s", dir, strerror(e));
        return io_error(e);
    }
    return 0;
}

/* Remove snapshots beyond the newest keep, and temporary files. Failures
 * are not reported: the new snapshot is already durable, and the next put
 * retries whatever is left. Returns how many files could not be removed. */
static unsigned remove_old(const char *dir, unsigned keep)
{
    struct snap_name *names = NULL;
    size_t n = 0;
    size_t cap = 0;
    unsigned failed = 0;
    char path[SNAP_PATH_MAX];
    char tmperr[JR_ERRMSG_SIZE];
    struct dirent *ent;
    DIR *d;
    size_t i;

    if ((d = opendir(dir)) == NULL) {
        return 1;
    }
    while ((ent = readdir(d)) != NULL) {
        struct snap_name sn;
        if (name_is_tmp(ent->d_name)) {
            if (snprintf(path, sizeof path, "%s/%s", dir, ent->d_name) >=
                    (int)sizeof path ||
                unlink(path) != 0) {
                failed++;
            }
            continue;
        }
        if (!name_parse(ent->d_name, &sn)) {
            continue;
        }
        if (n == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            struct snap_name *g = realloc(names, ncap * sizeof *names);
            if (g == NULL) {
                failed++;
                break;
            }
            names = g;
            cap = ncap;
        }
        names[n++] = sn;
    }
    if (closedir(d) != 0) {
        failed++;
    }
    if (n > keep) {
        qsort(names, n, sizeof *names, name_cmp_newest_first);
        for (i = keep; i < n; i++) {
            if (snap_path(path, dir, names[i].term, names[i].index, false,
                          tmperr) != 0 ||
                unlink(path) != 0) {
                failed++;
            }
        }
    }
    free(names);
    return failed;
}

/* Write frame, an lz4 frame already made, into o as it is, a writeback
 * step at a time. */
static int frame_copy(struct out_file *o,
                      const char *path,
                      const struct raft_buffer *frame,
                      char *errmsg)
{
    const uint8_t *p = frame->base;
    size_t left = frame->len;
    while (left > 0) {
        size_t chunk = left < WRITEBACK_STEP ? left : WRITEBACK_STEP;
        int e = out_write(o, p, chunk);
        if (e != 0) {
            jr__errf(errmsg, "write %s: %s", path, strerror(e));
            return io_error(e);
        }
        p += chunk;
        left -= chunk;
    }
    return 0;
}

/* A packed snapshot decoded on a thread of its own while the frame is
 * written: both take about as long. */
struct unpack_job {
    uv_thread_t thread;
    bool running;
    const struct raft_buffer *frame;
    uint64_t data_len;
    struct raft_buffer *out;
    int rv;
    char errmsg[JR_ERRMSG_SIZE];
};

static void unpack_run(void *arg)
{
    struct unpack_job *j = arg;
    j->rv = unpack(j->frame, j->data_len, j->out, j->errmsg);
}

static void unpack_start(struct unpack_job *j,
                         const struct raft_buffer *frame,
                         uint64_t data_len,
                         struct raft_buffer *out)
{
    j->frame = frame;
    j->data_len = data_len;
    j->out = out;
    j->running = uv_thread_create(&j->thread, unpack_run, j) == 0;
    if (!j->running) {
        unpack_run(j); /* no thread to be had: here, then */
    }
}

/* Wait for the decoding; its result. */
static int unpack_wait(struct unpack_job *j, char *errmsg)
{
    if (j->running) {
        (void)uv_thread_join(&j->thread); /* only fails for a bad thread */
        j->running = false;
    }
    if (j->rv != 0) {
        (void)snprintf(errmsg, JR_ERRMSG_SIZE, "%s", j->errmsg);
    }
    return j->rv;
}

/* jr__snapstore_put of the state bufs[0..n-1] or, with unpacked, of a
 * packed state of data_len bytes (bufs[0] is its frame), decoded into
 * unpacked before the file is kept. */
static int put_file(const char *dir,
                    const struct jr__snapshot_info *info,
                    const struct raft_buffer bufs[],
                    unsigned n,
                    uint64_t data_len,
                    struct raft_buffer *unpacked,
                    unsigned keep,
                    char *errmsg)
{
    char tmp[SNAP_PATH_MAX];
    char final[SNAP_PATH_MAX];
    uint8_t *header;
    size_t header_len;
    int fd;
    struct out_file out;
    struct unpack_job job;
    int e;
    int rv;

    assert(keep >= 1);
    job.running = false;
    job.rv = 0;
    if ((rv = snap_path(tmp, dir, info->term, info->index, true, errmsg)) !=
            0 ||
        (rv = snap_path(final, dir, info->term, info->index, false, errmsg)) !=
            0) {
        goto err;
    }
    if ((rv = header_encode(info, data_len, &header, &header_len, errmsg)) !=
        0) {
        goto err;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        e = errno;
        jr__errf(errmsg, "create %s: %s", tmp, strerror(e));
        rv = io_error(e);
        goto err_header;
    }
    if ((e = jr__write_all(fd, header, header_len)) != 0) {
        jr__errf(errmsg, "write %s: %s", tmp, strerror(e));
        rv = io_error(e);
        goto err_tmp;
    }
    out.fd = fd;
    out.off = header_len;
    out.flushed = 0;
    if (unpacked == NULL) {
        rv = frame_write(&out, tmp, bufs, n, data_len, errmsg);
    } else {
        unpack_start(&job, &bufs[0], data_len, unpacked);
        rv = frame_copy(&out, tmp, &bufs[0], errmsg);
    }
    if (rv != 0) {
        goto err_tmp;
    }
    if (fsync(fd) != 0) {
        e = errno;
        jr__errf(errmsg, "fsync %s: %s", tmp, strerror(e));
        rv = io_error(e);
        goto err_tmp;
    }
    e = close(fd) != 0 ? errno : 0;
    fd = -1;
    if (e != 0) {
        jr__errf(errmsg, "close %s: %s", tmp, strerror(e));
        rv = io_error(e);
        goto err_tmp;
    }
    /* Only a frame that decodes is kept. */
    if (unpacked != NULL && (rv = unpack_wait(&job, errmsg)) != 0) {
        goto err_tmp;
    }
    if (rename(tmp, final) != 0) {
        e = errno;
        jr__errf(errmsg, "rename %s to %s: %s", tmp, final, strerror(e));
        rv = io_error(e);
        goto err_tmp;
    }
    if ((rv = dir_sync(dir, errmsg)) != 0) {
        /* The rename may not survive a crash: take it back, so that no
         * snapshot exists that the caller believes failed. */
        (void)unlink(final);
        goto err_header;
    }
    free(header);
    (void)remove_old(dir, keep);
    return 0;

err_tmp:
    if (fd >= 0) {
        (void)close(fd); /* the file is being discarded */
    }
    /* If this fails too, the next put removes the leftover. */
    (void)unlink(tmp);
err_header:
    free(header);
err:
    if (unpacked != NULL) {
        char ignored[JR_ERRMSG_SIZE];
        (void)unpack_wait(&job, ignored); /* this error comes first */
        raft_free(unpacked->base);        /* unpacked, but not kept */
        unpacked->base = NULL;
    }
    return rv;
}

int jr__snapstore_put(const char *dir,
                      const struct jr__snapshot_info *info,
                      const struct raft_buffer bufs[],
                      unsigned n,
                      unsigned keep,
                      char *errmsg)
{
    uint64_t data_len = 0;
    unsigned i;
    for (i = 0; i < n; i++) {
        data_len += bufs[i].len;
    }
    return put_file(dir, info, bufs, n, data_len, NULL, keep, errmsg);
}

int jr__snapstore_install(const char *dir,
                          const struct jr__snapshot_info *info,
                          const struct raft_buffer *frame,
                          unsigned keep,
                          struct raft_buffer *data,
                          char *errmsg)
{
    uint64_t data_len;
    int rv;
    data->base = NULL;
    data->len = 0;
    if ((rv = packed_len(frame, &data_len, errmsg)) != 0) {
        return rv;
    }
    return put_file(dir, info, frame, 1, data_len, data, keep, errmsg);
}

/* ---- latest ---- */

int jr__snapstore_latest(const char *dir,
                         struct jr__snapshot_info *info,
                         char *errmsg)
{
    struct jr__snapshot_info out;
    struct snap_name best = {0, 0};
    struct snap_header h;
    char path[SNAP_PATH_MAX];
    char reason[128];
    struct dirent *ent;
    bool found = false;
    uint64_t size;
    DIR *d;
    int fd;
    int e;
    int rv;

    if ((d = opendir(dir)) == NULL) {
        e = errno;
        jr__errf(errmsg, "open directory %s: %s", dir, strerror(e));
        rv = e == ENOENT ? JR_ENOTFOUND : JR_EIO;
        goto err;
    }
    for (;;) {
        struct snap_name sn;
        errno = 0;
        if ((ent = readdir(d)) == NULL) {
            e = errno;
            break;
        }
        if (name_parse(ent->d_name, &sn) &&
            (!found || name_cmp_newest_first(&sn, &best) < 0)) {
            best = sn;
            found = true;
        }
    }
    if (e != 0) {
        jr__errf(errmsg, "list directory %s: %s", dir, strerror(e));
        (void)closedir(d); /* the listing error is the one to report */
        rv = JR_EIO;
        goto err;
    }
    if (closedir(d) != 0) {
        e = errno;
        jr__errf(errmsg, "close directory %s: %s", dir, strerror(e));
        rv = JR_EIO;
        goto err;
    }
    if (!found) {
        jr__errf(errmsg, "no snapshot in %s", dir);
        rv = JR_ENOTFOUND;
        goto err;
    }
    if ((rv = snap_path(path, dir, best.term, best.index, false, errmsg)) !=
        0) {
        goto err;
    }
    if ((rv = file_open(path, &fd, &size, errmsg)) != 0) {
        goto err;
    }
    if ((rv = header_read(fd, path, size, &h, errmsg)) != 0) {
        goto err_fd;
    }
    if (h.index != best.index || h.term != best.term) {
        (void)snprintf(reason, sizeof reason,
                       "it holds index %llu term %llu, not those of its name",
                       (unsigned long long)h.index, (unsigned long long)h.term);
        rv = header_corrupt(errmsg, path, reason);
        goto err_header;
    }
    rv = conf_decode(h.buf + SNAP_FIXED_LEN,
                     h.header_len - SNAP_FIXED_LEN - SNAP_CRC_LEN, &out.conf,
                     reason, sizeof reason);
    if (rv == JR_ECORRUPT) {
        rv = header_corrupt(errmsg, path, reason);
        goto err_header;
    }
    if (rv != 0) {
        jr__errf(errmsg, "read %s: out of memory", path);
        goto err_header;
    }
    if (close(fd) != 0) {
        e = errno;
        jr__errf(errmsg, "close %s: %s", path, strerror(e));
        rv = JR_EIO;
        raft_configuration_close(&out.conf);
        free(h.buf);
        goto err;
    }
    out.index = h.index;
    out.term = h.term;
    out.conf_index = h.conf_index;
    out.data_len = h.data_len;
    /* snapshot-<20>-<20> always fits in file[128]. */
    (void)snprintf(out.file, sizeof out.file, SNAP_PREFIX "%020llu-%020llu",
                   (unsigned long long)h.term, (unsigned long long)h.index);
    free(h.buf);
    *info = out;
    return 0;

err_header:
    free(h.buf);
err_fd:
    (void)close(fd); /* read-only: nothing to lose */
err:
    return rv;
}

/* ---- read ---- */

static int frame_corrupt(char *errmsg,
                         const char *path,
                         uint64_t offset,
                         const char *reason)
{
    jr__errf(errmsg, "%s: corrupt snapshot data at byte %llu: %s", path,
             (unsigned long long)offset, reason);
    return JR_ECORRUPT;
}

/* Where a frame is decoded from: a file, read SNAP_CHUNK at a time into a
 * scratch buffer, or memory (a snapshot received from the leader), used in
 * place. Offsets are the file's, or the frame's own. */
struct frame_src {
    int fd; /* -1: mem */
    const uint8_t *mem;
    uint64_t mem_len;
    uint8_t *scratch; /* SNAP_CHUNK bytes, for fd */
};

/* The bytes at pos (up to SNAP_CHUNK; *len 0 at the end). Returns 0 or an
 * errno value. */
static int src_fetch(struct frame_src *src,
                     uint64_t pos,
                     const uint8_t **p,
                     size_t *len)
{
    if (src->fd < 0) {
        uint64_t left = pos < src->mem_len ? src->mem_len - pos : 0;
        *p = src->mem + (pos < src->mem_len ? pos : src->mem_len);
        *len = left < SNAP_CHUNK ? (size_t)left : SNAP_CHUNK;
        return 0;
    }
    *p = src->scratch;
    return read_at(src->fd, src->scratch, SNAP_CHUNK, pos, len);
}

/* Check the lz4 frame header at in[0..len) (all of it, unless the frame
 * is shorter): our checksums on, content size data_len (any, if data_len
 * is NULL: then it is set). */
static int frame_info_check(LZ4F_dctx *dctx,
                            const char *path,
                            uint64_t off,
                            const uint8_t *in,
                            size_t *in_pos,
                            uint64_t *data_len,
                            bool any_len,
                            char *errmsg)
{
    LZ4F_frameInfo_t fi;
    char reason[128];
    size_t r = LZ4F_getFrameInfo(dctx, &fi, in, in_pos);
    if (LZ4F_isError(r)) {
        return frame_corrupt(errmsg, path, off, LZ4F_getErrorName(r));
    }
    if (fi.contentChecksumFlag != LZ4F_contentChecksumEnabled ||
        fi.blockChecksumFlag != LZ4F_blockChecksumEnabled) {
        return frame_corrupt(errmsg, path, off,
                             "the lz4 frame lacks its checksums");
    }
    if (any_len) {
        if (fi.contentSize == 0) {
            return frame_corrupt(errmsg, path, off,
                                 "the lz4 frame does not say its size");
        }
        *data_len = fi.contentSize;
        return 0;
    }
    if (fi.contentSize != *data_len) {
        (void)snprintf(reason, sizeof reason,
                       "the lz4 frame holds %llu bytes, the header says %llu",
                       (unsigned long long)fi.contentSize,
                       (unsigned long long)*data_len);
        return frame_corrupt(errmsg, path, off, reason);
    }
    return 0;
}

/* Decompress the frame that starts at off and must end the source into a
 * raft_malloc'd buffer of exactly data_len bytes, which the caller has
 * bounded by the source's size. */
static int frame_decode(struct frame_src *src,
                        const char *path,
                        uint64_t off,
                        uint64_t data_len,
                        void **out,
                        char *errmsg)
{
    LZ4F_decompressOptions_t opts;
    LZ4F_dctx *dctx;
    char reason[128];
    const uint8_t *in;
    uint8_t *dst = NULL;
    size_t in_pos;
    size_t in_len;
    size_t produced = 0;
    uint64_t pos = off; /* source offset of in[in_len] */
    uint64_t at;        /* source offset of in[in_pos] */
    uint64_t len = data_len;
    bool done = false;
    size_t got;
    size_t r;
    int e;
    int rv;

    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) {
        jr__errf(errmsg, "read %s: out of memory", path);
        rv = JR_ENOMEM;
        goto err;
    }

    /* The frame header, checked before any state is decoded. A chunk holds
     * all of it unless the source ends first. */
    if ((e = src_fetch(src, pos, &in, &got)) != 0) {
        goto err_read;
    }
    in_len = got;
    pos += got;
    in_pos = in_len;
    if ((rv = frame_info_check(dctx, path, off, in, &in_pos, &len, false,
                               errmsg)) != 0) {
        goto err_dctx;
    }
    if ((dst = raft_malloc(len > 0 ? (size_t)len : 1)) == NULL) {
        jr__errf(errmsg, "read %s: out of memory for %llu bytes", path,
                 (unsigned long long)len);
        rv = JR_ENOMEM;
        goto err_dctx;
    }

    memset(&opts, 0, sizeof opts);
    opts.stableDst = 1; /* dst is one buffer, never moved */
    while (!done) {
        size_t src_n;
        size_t dst_n;
        if (in_pos == in_len) {
            if ((e = src_fetch(src, pos, &in, &got)) != 0) {
                goto err_read;
            }
            if (got == 0) {
                rv = frame_corrupt(errmsg, path, pos,
                                   "truncated: the lz4 frame is incomplete");
                goto err_dctx;
            }
            in_pos = 0;
            in_len = got;
            pos += got;
        }
        at = pos - (in_len - in_pos);
        src_n = in_len - in_pos;
        dst_n = (size_t)len - produced;
        r = LZ4F_decompress(dctx, dst + produced, &dst_n, in + in_pos, &src_n,
                            &opts);
        if (LZ4F_isError(r)) {
            rv = frame_corrupt(errmsg, path, at, LZ4F_getErrorName(r));
            goto err_dctx;
        }
        if (r != 0 && src_n == 0 && dst_n == 0) {
            /* lz4 has more state to give than data_len leaves room for. */
            (void)snprintf(reason, sizeof reason,
                           "the lz4 frame holds more than %llu bytes",
                           (unsigned long long)len);
            rv = frame_corrupt(errmsg, path, at, reason);
            goto err_dctx;
        }
        in_pos += src_n;
        produced += dst_n;
        done = r == 0;
    }
    at = pos - (in_len - in_pos);
    if (produced != len) {
        (void)snprintf(reason, sizeof reason,
                       "the lz4 frame ends after %zu bytes of %llu", produced,
                       (unsigned long long)len);
        rv = frame_corrupt(errmsg, path, at, reason);
        goto err_dctx;
    }
    if (in_pos == in_len) {
        if ((e = src_fetch(src, pos, &in, &got)) != 0) {
            goto err_read;
        }
        in_len += got; /* only the count matters */
    }
    if (in_pos < in_len) {
        rv = frame_corrupt(errmsg, path, at, "data follows the lz4 frame");
        goto err_dctx;
    }
    (void)LZ4F_freeDecompressionContext(dctx); /* frame complete: 0 */
    *out = dst;
    return 0;

err_read:
    jr__errf(errmsg, "read %s at byte %llu: %s", path, (unsigned long long)pos,
             strerror(e));
    rv = JR_EIO;
err_dctx:
    (void)LZ4F_freeDecompressionContext(dctx);
    raft_free(dst);
err:
    return rv;
}

/* Open the file of the snapshot info describes, and read and check its
 * header against info. */
static int snap_open(const char *dir,
                     const struct jr__snapshot_info *info,
                     char *path,
                     int *fd,
                     uint64_t *size,
                     struct snap_header *h,
                     char *errmsg)
{
    int rv;
    assert(memchr(info->file, '\0', sizeof info->file) != NULL);
    if (snprintf(path, SNAP_PATH_MAX, "%s/%s", dir, info->file) >=
        SNAP_PATH_MAX) {
        jr__errf(errmsg, "snapshot directory path too long: %s", dir);
        return JR_EINVAL;
    }
    if ((rv = file_open(path, fd, size, errmsg)) != 0) {
        return rv;
    }
    if ((rv = header_read(*fd, path, *size, h, errmsg)) != 0) {
        (void)close(*fd); /* read-only: nothing to lose */
        return rv;
    }
    free(h->buf);
    h->buf = NULL;
    if (h->index != info->index || h->term != info->term ||
        h->data_len != info->data_len) {
        jr__errf(errmsg,
                 "%s: header holds index %llu term %llu length %llu, not the "
                 "snapshot that was found",
                 path, (unsigned long long)h->index,
                 (unsigned long long)h->term, (unsigned long long)h->data_len);
        (void)close(*fd);
        return JR_ECORRUPT;
    }
    return 0;
}

static int snap_close(int fd, const char *path, char *errmsg)
{
    if (close(fd) != 0) {
        int e = errno;
        jr__errf(errmsg, "close %s: %s", path, strerror(e));
        return JR_EIO;
    }
    return 0;
}

int jr__snapstore_read(const char *dir,
                       const struct jr__snapshot_info *info,
                       struct raft_buffer *data,
                       char *errmsg)
{
    char path[SNAP_PATH_MAX];
    struct snap_header h;
    struct frame_src src;
    uint64_t size;
    void *buf;
    int fd;
    int rv;

    if ((rv = snap_open(dir, info, path, &fd, &size, &h, errmsg)) != 0) {
        return rv;
    }
    memset(&src, 0, sizeof src);
    src.fd = fd;
    if ((src.scratch = malloc(SNAP_CHUNK)) == NULL) {
        jr__errf(errmsg, "read %s: out of memory", path);
        (void)close(fd);
        return JR_ENOMEM;
    }
    rv = frame_decode(&src, path, h.header_len, h.data_len, &buf, errmsg);
    free(src.scratch);
    if (rv != 0) {
        (void)close(fd);
        return rv;
    }
    if ((rv = snap_close(fd, path, errmsg)) != 0) {
        raft_free(buf);
        return rv;
    }
    data->base = buf;
    data->len = (size_t)h.data_len;
    return 0;
}

int jr__snapstore_read_packed(const char *dir,
                              const struct jr__snapshot_info *info,
                              struct raft_buffer *frame,
                              char *errmsg)
{
    char path[SNAP_PATH_MAX];
    struct snap_header h;
    LZ4F_dctx *dctx;
    uint64_t size;
    uint64_t len;
    size_t got;
    size_t in_pos;
    void *buf;
    int fd;
    int e;
    int rv;

    if ((rv = snap_open(dir, info, path, &fd, &size, &h, errmsg)) != 0) {
        return rv;
    }
    len = size - h.header_len;
    if ((uint64_t)(size_t)len != len ||
        (buf = raft_malloc(len > 0 ? (size_t)len : 1)) == NULL) {
        jr__errf(errmsg, "read %s: out of memory for %llu bytes", path,
                 (unsigned long long)len);
        (void)close(fd);
        return JR_ENOMEM;
    }
    if ((e = read_at(fd, buf, (size_t)len, h.header_len, &got)) != 0) {
        jr__errf(errmsg, "read %s: %s", path, strerror(e));
        rv = JR_EIO;
        goto err;
    }
    if (got < len) {
        /* The file shrank since fstat. */
        rv = frame_corrupt(errmsg, path, h.header_len + got,
                           "truncated: the lz4 frame is incomplete");
        goto err;
    }
    /* The frame's own header, so that a file that would not decode is not
     * sent; the receiver checks every block as it decodes. */
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) {
        jr__errf(errmsg, "read %s: out of memory", path);
        rv = JR_ENOMEM;
        goto err;
    }
    in_pos = (size_t)len;
    rv = frame_info_check(dctx, path, h.header_len, buf, &in_pos, &h.data_len,
                          false, errmsg);
    (void)LZ4F_freeDecompressionContext(dctx);
    if (rv != 0) {
        goto err;
    }
    if ((rv = snap_close(fd, path, errmsg)) != 0) {
        raft_free(buf);
        return rv;
    }
    frame->base = buf;
    frame->len = (size_t)len;
    return 0;

err:
    raft_free(buf);
    (void)close(fd); /* read-only: nothing to lose */
    return rv;
}

bool jr__snapstore_is_packed(const struct raft_buffer *data)
{
    static const uint8_t magic[4] = {0x04, 0x22, 0x4d, 0x18};
    return data->len >= sizeof magic &&
           memcmp(data->base, magic, sizeof magic) == 0;
}

#define PACKED_LABEL "the snapshot from the leader"

static void packed_src(struct frame_src *src, const struct raft_buffer *frame)
{
    memset(src, 0, sizeof *src);
    src->fd = -1;
    src->mem = frame->base;
    src->mem_len = frame->len;
}

/* The size of the state a packed snapshot holds, from its frame header
 * (bounded by the frame's size). */
static int packed_len(const struct raft_buffer *frame,
                      uint64_t *data_len,
                      char *errmsg)
{
    char reason[128];
    LZ4F_dctx *dctx;
    size_t in_pos = frame->len;
    int rv;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) {
        jr__errf(errmsg, "read %s: out of memory", PACKED_LABEL);
        return JR_ENOMEM;
    }
    rv = frame_info_check(dctx, PACKED_LABEL, 0, frame->base, &in_pos, data_len,
                          true, errmsg);
    (void)LZ4F_freeDecompressionContext(dctx);
    if (rv == 0 && (*data_len / SNAP_MAX_RATIO > frame->len ||
                    (uint64_t)(size_t)*data_len != *data_len)) {
        (void)snprintf(reason, sizeof reason,
                       "a state of %llu bytes cannot fit in %zu bytes of lz4",
                       (unsigned long long)*data_len, frame->len);
        rv = frame_corrupt(errmsg, PACKED_LABEL, 0, reason);
    }
    return rv;
}

static int unpack(const struct raft_buffer *frame,
                  uint64_t data_len,
                  struct raft_buffer *data,
                  char *errmsg)
{
    struct frame_src src;
    void *buf;
    int rv;
    packed_src(&src, frame);
    rv = frame_decode(&src, PACKED_LABEL, 0, data_len, &buf, errmsg);
    if (rv != 0) {
        return rv;
    }
    data->base = buf;
    data->len = (size_t)data_len;
    return 0;
}

int jr__snapstore_unpack(const struct raft_buffer *frame,
                         struct raft_buffer *data,
                         char *errmsg)
{
    uint64_t data_len;
    int rv = packed_len(frame, &data_len, errmsg);
    if (rv != 0) {
        return rv;
    }
    return unpack(frame, data_len, data, errmsg);
}

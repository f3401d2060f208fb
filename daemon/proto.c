/* proto.c: see proto.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/mpbound.h"
#include "mp.h"
#include "proto.h"

int jd_request_decode(const char *buf,
                      size_t len,
                      struct jd_request *req,
                      char *err,
                      size_t errlen)
{
    size_t off = 0;
    const msgpack_object *op;
    memset(req, 0, sizeof *req);
    if (len > JD_MAX_REQUEST) {
        snprintf(err, errlen, "request of %zu bytes (at most %u)", len,
                 JD_MAX_REQUEST);
        return -1;
    }
    /* msgpack-c allocates for declared sizes before reading: check first. */
    if (!jr__msgpack_bounded(buf, len)) {
        snprintf(err, errlen, "request is not one well-formed msgpack value");
        return -1;
    }
    msgpack_unpacked_init(&req->unpacked);
    if (msgpack_unpack_next(&req->unpacked, buf, len, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        req->unpacked.data.type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "request is not a msgpack map");
        goto fail;
    }
    op = jd_mp_get(&req->unpacked.data, "op");
    if (jd_mp_copy_str(op, req->op, sizeof req->op) != 0 ||
        req->op[0] == '\0') {
        snprintf(err, errlen, "request has no \"op\" string");
        goto fail;
    }
    req->args = jd_mp_get(&req->unpacked.data, "args");
    if (req->args != NULL && req->args->type == MSGPACK_OBJECT_NIL) {
        req->args = NULL;
    }
    if (req->args != NULL && req->args->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "\"args\" is not a map");
        goto fail;
    }
    return 0;
fail:
    msgpack_unpacked_destroy(&req->unpacked);
    memset(req, 0, sizeof *req);
    return -1;
}

void jd_request_free(struct jd_request *req)
{
    msgpack_unpacked_destroy(&req->unpacked);
}

void jd_frame_header(unsigned char hdr[4], uint32_t len)
{
    hdr[0] = (unsigned char)(len >> 24);
    hdr[1] = (unsigned char)(len >> 16);
    hdr[2] = (unsigned char)(len >> 8);
    hdr[3] = (unsigned char)len;
}

uint32_t jd_frame_length(const unsigned char hdr[4])
{
    return (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
           (uint32_t)hdr[2] << 8 | hdr[3];
}

void jd_reply_ok(msgpack_sbuffer *sb, msgpack_packer *pk)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(pk, 3);
    jd_mp_kv_str(pk, "code", JD_CODE_OK);
    jd_mp_kv_str(pk, "message", "");
    jd_mp_key(pk, "result");
}

void jd_reply_error(msgpack_sbuffer *sb, const char *code, const char *fmt, ...)
{
    msgpack_packer pk;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    jd_mp_kv_str(&pk, "code", code);
    jd_mp_kv_str(&pk, "message", msg);
    jd_mp_key(&pk, "result");
    msgpack_pack_nil(&pk);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (n == 0) {
            errno = ECONNRESET;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int jd_frame_send(int fd, const void *body, size_t len)
{
    unsigned char hdr[4];
    if (len > UINT32_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    jd_frame_header(hdr, (uint32_t)len);
    return write_all(fd, hdr, sizeof hdr) == 0 ? write_all(fd, body, len) : -1;
}

int jd_frame_recv(int fd, char **buf, size_t *len, size_t max)
{
    unsigned char hdr[4];
    uint32_t n;
    char *b;
    if (read_all(fd, hdr, sizeof hdr) != 0) {
        return -1;
    }
    n = jd_frame_length(hdr);
    if (n > max) {
        errno = EPROTO;
        return -1;
    }
    b = malloc(n > 0 ? n : 1);
    if (b == NULL) {
        return -1;
    }
    if (read_all(fd, b, n) != 0) {
        free(b);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* proto.h: jacod's client protocol, shared by jacod and jaco.
 *
 * Over the unix socket or TCP, each message is a frame: a 4-byte big-endian
 * length, then that many bytes holding exactly one msgpack value.
 *   request: {"op": STR, "args": MAP (optional)}
 *   reply:   {"code": STR, "message": STR, "result": ANY}
 * "code" is "ok" or a stable error code (JD_CODE_* below, or the library's
 * slugs: no_leader, quorum_lost, timeout, ...). One request is answered at
 * a time per connection, in order. A "watch" request is answered with a
 * stream of replies whose result is {"index": N, "type": STR}, one per
 * change of the cluster state, until the connection closes. */
#ifndef JD_PROTO_H
#define JD_PROTO_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JD_MAX_REQUEST (64u << 10) /* bytes of a request's msgpack body */
#define JD_MAX_REPLY (64u << 20)
#define JD_OP_MAX 32

#define JD_CODE_OK "ok"
#define JD_CODE_INVALID "invalid_argument"
#define JD_CODE_NOT_FOUND "not_found"
#define JD_CODE_MALFORMED "malformed_request"
#define JD_CODE_TOO_LARGE "too_large"
#define JD_CODE_UNKNOWN_OP "unknown_op"
#define JD_CODE_UNAUTHENTICATED "unauthenticated"
#define JD_CODE_NOT_INITIALISED "not_initialised"
#define JD_CODE_INTERNAL "internal"

struct jd_request {
    char op[JD_OP_MAX];
    const msgpack_object *args; /* a map, or NULL: inside unpacked */
    msgpack_unpacked unpacked;
};

/* Decode one request body. On failure returns -1 with a message in err
 * (errlen bytes) and nothing to free; on success free with
 * jd_request_free(). */
int jd_request_decode(const char *buf,
                      size_t len,
                      struct jd_request *req,
                      char *err,
                      size_t errlen);
void jd_request_free(struct jd_request *req);

/* Frame prefix for a body of len bytes. */
void jd_frame_header(unsigned char hdr[4], uint32_t len);
uint32_t jd_frame_length(const unsigned char hdr[4]);

/* Reply builders into a fresh sbuffer (the caller destroys it). An ok reply
 * opens the map and the "result" key: pack exactly one value after it. */
void jd_reply_ok(msgpack_sbuffer *sb, msgpack_packer *pk);
void jd_reply_error(msgpack_sbuffer *sb, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Blocking I/O for clients: write a frame; read one (into *buf, malloc'd,
 * at most max bytes). Both return 0 or -1 with errno set (EPROTO for a
 * frame over max; 0-byte read at a frame boundary: ECONNRESET). */
int jd_frame_send(int fd, const void *body, size_t len);
int jd_frame_recv(int fd, char **buf, size_t *len, size_t max);

#endif

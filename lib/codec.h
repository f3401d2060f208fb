/* codec.h: msgpack encoding of the library's own RPC frames. */
#ifndef JR_CODEC_H
#define JR_CODEC_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpbound.h"

enum jr__msg_type {
    JR__MSG_FORWARD = 1,      /* follower -> leader: commands to apply */
    JR__MSG_APPLY_RESULT = 2, /* leader -> follower: results (of FORWARD
                                 and ADMIN) */
    JR__MSG_READ_INDEX = 3,   /* follower -> leader: linearizable read */
    JR__MSG_READ_INDEX_RESULT = 4,
    JR__MSG_INFO = 5, /* anyone -> member: cluster id, leader */
    JR__MSG_INFO_RESULT = 6,
    JR__MSG_JOIN = 7, /* joining node -> leader */
    JR__MSG_JOIN_RESULT = 8,
    /* joiner without the secret -> leader: proves a join token (auth.h) */
    JR__MSG_JOIN_TOKEN = 9,
    JR__MSG_JOIN_TOKEN_RESULT = 10, /* carries the sealed secret */
    JR__MSG_ADMIN = 11, /* follower -> leader: remove a member or transfer
                          leadership (admin.c); answered with an
                          APPLY_RESULT, like a forwarded write */
};

struct jr__str {
    const char *ptr; /* points into the frame; not terminated */
    size_t len;
};

/* One element of a batch (FORWARD and APPLY_RESULT carry several). */
struct jr__item {
    uint64_t req_id;
    int64_t status;
    uint64_t index;
    struct jr__str errmsg;
    struct jr__str data; /* command (FORWARD) or result (APPLY_RESULT) */
};

struct jr__msg {
    int type;
    uint64_t req_id;
    int64_t status;
    uint64_t index;
    uint64_t id;
    struct jr__str errmsg;
    struct jr__str cluster_id;
    struct jr__str address;
    struct jr__str name;
    uint64_t incarnation;   /* INFO_RESULT, JOIN_TOKEN_RESULT */
    struct jr__str payload; /* JOIN_TOKEN: the token's payload */
    struct jr__str proof;   /* JOIN_TOKEN(_RESULT): 32 bytes or empty */
    struct jr__str sealed;  /* JOIN_TOKEN_RESULT: the secret, sealed */
    uint64_t op;            /* ADMIN: enum jr__admin_op, flags */
    uint64_t flags;
    unsigned n_items;
    struct jr__item *items; /* malloc'd; jr__msg_free */
};

#define JR__MAX_ITEMS 65536
#define JR__MAX_STR 4096

/* Encoders append one whole frame (4-byte big-endian length + msgpack) to
 * sb. Errors: JR_ENOMEM. */
struct jr__frame {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t start; /* offset of the frame's length prefix */
};
void jr__frame_init(struct jr__frame *f);
void jr__frame_close(struct jr__frame *f);
/* Begin a frame: array header of the message's fields. */
void jr__frame_begin(struct jr__frame *f, int type, unsigned n_fields);
void jr__frame_end(struct jr__frame *f);
void jr__pack_str(msgpack_packer *pk, const char *s, size_t len);
void jr__pack_cstr(msgpack_packer *pk, const char *s);
void jr__pack_bin(msgpack_packer *pk, const void *p, size_t len);

/* Decode the payload of one frame (without the length prefix). On error
 * returns JR_EPROTO and describes the problem in errmsg; nothing to free.
 * On success the message's strings point into buf. */
int jr__msg_decode(const char *buf,
                   size_t len,
                   struct jr__msg *m,
                   char *errmsg);
void jr__msg_free(struct jr__msg *m);

#endif /* JR_CODEC_H */

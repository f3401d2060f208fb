/* codec.c: the library's RPC frames: length-prefixed msgpack arrays whose
 * first element is the message type. Decoding validates every field's type
 * and bounds every length and count. */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "jr_internal.h"

void jr__frame_init(struct jr__frame *f)
{
    msgpack_sbuffer_init(&f->sb);
    msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
    f->start = 0;
}

void jr__frame_close(struct jr__frame *f)
{
    msgpack_sbuffer_destroy(&f->sb);
}

void jr__frame_begin(struct jr__frame *f, int type, unsigned n_fields)
{
    static const char zero[4] = {0, 0, 0, 0};
    f->start = f->sb.size;
    msgpack_sbuffer_write(&f->sb, zero, 4);
    msgpack_pack_array(&f->pk, n_fields + 1);
    msgpack_pack_int(&f->pk, type);
}

void jr__frame_end(struct jr__frame *f)
{
    size_t len = f->sb.size - f->start - 4;
    unsigned char *p = (unsigned char *)f->sb.data + f->start;
    p[0] = (unsigned char)(len >> 24);
    p[1] = (unsigned char)(len >> 16);
    p[2] = (unsigned char)(len >> 8);
    p[3] = (unsigned char)len;
}

void jr__pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

void jr__pack_cstr(msgpack_packer *pk, const char *s)
{
    jr__pack_str(pk, s, strlen(s));
}

void jr__pack_bin(msgpack_packer *pk, const void *p, size_t len)
{
    msgpack_pack_bin(pk, len);
    msgpack_pack_bin_body(pk, p, len);
}

/* ---- decoding ---- */

static int get_u64(const msgpack_object *o, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return -1;
    }
    *v = o->via.u64;
    return 0;
}

static int get_i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        o->via.u64 <= (uint64_t)INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return 0;
    }
    return -1;
}

static int get_str(const msgpack_object *o, struct jr__str *s, size_t max)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max) {
        return -1;
    }
    s->ptr = o->via.str.ptr;
    s->len = o->via.str.size;
    return 0;
}

static int get_bin(const msgpack_object *o, struct jr__str *s)
{
    if (o->type == MSGPACK_OBJECT_NIL) {
        s->ptr = NULL;
        s->len = 0;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_BIN) {
        return -1;
    }
    s->ptr = o->via.bin.ptr;
    s->len = o->via.bin.size;
    return 0;
}

/* Number of fields after the type, per message type. */
static int fields_of(int type)
{
    switch (type) {
        case JR__MSG_FORWARD: return 1;
        case JR__MSG_APPLY_RESULT: return 1;
        case JR__MSG_READ_INDEX: return 1;
        case JR__MSG_READ_INDEX_RESULT: return 4;
        case JR__MSG_INFO: return 1;
        case JR__MSG_INFO_RESULT: return 7;
        case JR__MSG_JOIN: return 4;
        case JR__MSG_JOIN_RESULT: return 4;
        case JR__MSG_JOIN_TOKEN: return 6;
        case JR__MSG_JOIN_TOKEN_RESULT: return 8;
        case JR__MSG_ADMIN: return 4;
        default: return -1;
    }
}

static int decode_items(const msgpack_object *o,
                        struct jr__msg *m,
                        char *errmsg)
{
    uint32_t i;
    const msgpack_object_array *a;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 ||
        o->via.array.size > JR__MAX_ITEMS) {
        jr__errf(errmsg, "batch is not a non-empty array of at most %d",
                 JR__MAX_ITEMS);
        return JR_EPROTO;
    }
    a = &o->via.array;
    m->items = calloc(a->size, sizeof *m->items);
    if (m->items == NULL) {
        return JR_ENOMEM;
    }
    m->n_items = a->size;
    for (i = 0; i < a->size; i++) {
        const msgpack_object *e = &a->ptr[i];
        struct jr__item *it = &m->items[i];
        const msgpack_object *f;
        bool forward = m->type == JR__MSG_FORWARD;
        if (e->type != MSGPACK_OBJECT_ARRAY ||
            e->via.array.size != (forward ? 2u : 5u)) {
            jr__errf(errmsg, "batch item %u: wrong shape", i);
            return JR_EPROTO;
        }
        f = e->via.array.ptr;
        if (get_u64(&f[0], &it->req_id) != 0) {
            jr__errf(errmsg, "batch item %u: bad request id", i);
            return JR_EPROTO;
        }
        if (forward) {
            if (get_bin(&f[1], &it->data) != 0 || it->data.ptr == NULL) {
                jr__errf(errmsg, "batch item %u: bad command", i);
                return JR_EPROTO;
            }
            continue;
        }
        if (get_i64(&f[1], &it->status) != 0 ||
            get_str(&f[2], &it->errmsg, JR__MAX_STR) != 0 ||
            get_u64(&f[3], &it->index) != 0 || get_bin(&f[4], &it->data) != 0) {
            jr__errf(errmsg, "batch item %u: bad result", i);
            return JR_EPROTO;
        }
    }
    return 0;
}

int jr__msg_decode(const char *buf, size_t len, struct jr__msg *m, char *errmsg)
{
    msgpack_unpacked u;
    msgpack_unpack_return ret;
    const msgpack_object *f;
    size_t off = 0;
    uint32_t n;
    uint64_t type;
    int rv = JR_EPROTO;

    memset(m, 0, sizeof *m);
    if (!jr__msgpack_bounded(buf, len)) {
        jr__errf(errmsg, "frame is not exactly one well-formed msgpack value");
        return JR_EPROTO;
    }
    msgpack_unpacked_init(&u);
    ret = msgpack_unpack_next(&u, buf, len, &off);
    if (ret != MSGPACK_UNPACK_SUCCESS || off != len) {
        jr__errf(errmsg, "frame is not exactly one msgpack value");
        goto out;
    }
    if (u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size < 1) {
        jr__errf(errmsg, "frame is not an array");
        goto out;
    }
    f = u.data.via.array.ptr;
    n = u.data.via.array.size;
    if (get_u64(&f[0], &type) != 0 || type > 255 || fields_of((int)type) < 0) {
        jr__errf(errmsg, "unknown message type");
        goto out;
    }
    m->type = (int)type;
    if ((int)n != fields_of(m->type) + 1) {
        jr__errf(errmsg, "message type %d: %u fields, want %d", m->type, n - 1,
                 fields_of(m->type));
        goto out;
    }
    switch (m->type) {
        case JR__MSG_FORWARD:
        case JR__MSG_APPLY_RESULT:
            rv = decode_items(&f[1], m, errmsg);
            if (rv != 0) {
                jr__msg_free(m);
            }
            goto out;
        case JR__MSG_READ_INDEX:
        case JR__MSG_INFO:
            if (get_u64(&f[1], &m->req_id) != 0) {
                break;
            }
            rv = 0;
            goto out;
        case JR__MSG_READ_INDEX_RESULT:
            if (get_u64(&f[1], &m->req_id) || get_i64(&f[2], &m->status) ||
                get_str(&f[3], &m->errmsg, JR__MAX_STR) ||
                get_u64(&f[4], &m->index)) {
                break;
            }
            rv = 0;
            goto out;
        case JR__MSG_INFO_RESULT:
            if (get_u64(&f[1], &m->req_id) || get_i64(&f[2], &m->status) ||
                get_str(&f[3], &m->errmsg, JR__MAX_STR) ||
                get_str(&f[4], &m->cluster_id, JR__CLUSTER_ID_LEN) ||
                get_u64(&f[5], &m->id) || get_str(&f[6], &m->address, 255) ||
                get_u64(&f[7], &m->incarnation) ||
                m->incarnation > UINT32_MAX) {
                break;
            }
            rv = 0;
            goto out;
        case JR__MSG_JOIN:
            if (get_u64(&f[1], &m->req_id) || get_u64(&f[2], &m->id) ||
                m->id == 0 || get_str(&f[3], &m->address, 255) ||
                m->address.len == 0 || get_str(&f[4], &m->name, 63)) {
                break;
            }
            rv = 0;
            goto out;
        case JR__MSG_JOIN_RESULT:
            if (get_u64(&f[1], &m->req_id) || get_i64(&f[2], &m->status) ||
                get_str(&f[3], &m->errmsg, JR__MAX_STR) ||
                get_str(&f[4], &m->address, 255)) {
                break;
            }
            rv = 0;
            goto out;
        case JR__MSG_JOIN_TOKEN:
            if (get_u64(&f[1], &m->req_id) || get_u64(&f[2], &m->id) ||
                m->id == 0 || get_str(&f[3], &m->address, 255) ||
                m->address.len == 0 || get_str(&f[4], &m->name, 63) ||
                get_bin(&f[5], &m->payload) || m->payload.len == 0 ||
                m->payload.len > 4096 || get_bin(&f[6], &m->proof) ||
                m->proof.len != 32) {
                break;
            }
            rv = 0;
            goto out;
        case JR__MSG_JOIN_TOKEN_RESULT:
            if (get_u64(&f[1], &m->req_id) || get_i64(&f[2], &m->status) ||
                get_str(&f[3], &m->errmsg, JR__MAX_STR) ||
                get_str(&f[4], &m->address, 255) ||
                get_str(&f[5], &m->cluster_id, JR__CLUSTER_ID_LEN) ||
                get_u64(&f[6], &m->incarnation) ||
                m->incarnation > UINT32_MAX || get_bin(&f[7], &m->proof) ||
                (m->proof.len != 0 && m->proof.len != 32) ||
                get_bin(&f[8], &m->sealed) ||
                (m->sealed.len != 0 && m->sealed.len != 72)) {
                break;
            }
            rv = 0;
            goto out;
        case JR__MSG_ADMIN:
            if (get_u64(&f[1], &m->req_id) || get_u64(&f[2], &m->op) ||
                get_u64(&f[3], &m->id) || get_u64(&f[4], &m->flags)) {
                break;
            }
            rv = 0;
            goto out;
        default: break;
    }
    jr__errf(errmsg, "message type %d: malformed field", m->type);
out:
    /* Strings point into buf, not into the unpacked zone, so the zone can
     * go now. */
    msgpack_unpacked_destroy(&u);
    return rv;
}

void jr__msg_free(struct jr__msg *m)
{
    free(m->items);
    m->items = NULL;
    m->n_items = 0;
}

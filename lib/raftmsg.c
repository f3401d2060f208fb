/* raftmsg.c: encoding of canonical/raft's messages as msgpack frames, with
 * entry payloads sent by scatter/gather instead of being copied. */
#include <stdlib.h>
#include <string.h>

#include "jr_internal.h"
#include "raftmsg.h"

#define MAX_ENTRIES (1u << 20)
#define MAX_SERVERS 1024

bool jr__raftmsg_is(const char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t hdr;
    if (len < 2) {
        return false;
    }
    if (p[0] >= 0x90 && p[0] <= 0x9f) {
        hdr = 1; /* fixarray */
    } else if (p[0] == 0xdc) {
        hdr = 3;
    } else if (p[0] == 0xdd) {
        hdr = 5;
    } else {
        return false;
    }
    /* The type is a positive fixint right after the array header. */
    return len > hdr && p[hdr] > JR__MSG_RAFT_BASE &&
           p[hdr] <= JR__MSG_RAFT_BASE + RAFT_IO_TIMEOUT_NOW;
}

static void pack_conf(msgpack_packer *pk, const struct raft_configuration *c)
{
    unsigned i;
    msgpack_pack_array(pk, c->n);
    for (i = 0; i < c->n; i++) {
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint64(pk, c->servers[i].id);
        jr__pack_cstr(pk, c->servers[i].address);
        msgpack_pack_int(pk, c->servers[i].role);
    }
}

int jr__raftmsg_encode(const struct raft_message *m,
                       struct jr__frame *f,
                       uv_buf_t **bufs,
                       unsigned *n_bufs)
{
    msgpack_packer *pk = &f->pk;
    size_t *cut = NULL; /* offsets in f where entry data goes */
    const struct raft_append_entries *ae = &m->append_entries;
    unsigned n_ext = 0, i, k;
    uint64_t ext_len = 0;
    size_t start = f->sb.size;
    uv_buf_t *b;

    switch (m->type) {
        case RAFT_IO_APPEND_ENTRIES:
            if (ae->n_entries > MAX_ENTRIES) {
                return JR_ETOOBIG;
            }
            cut = malloc((ae->n_entries + 1) * sizeof *cut);
            if (cut == NULL) {
                return JR_ENOMEM;
            }
            jr__frame_begin(f, JR__MSG_RAFT_BASE + m->type, 5);
            msgpack_pack_uint64(pk, ae->term);
            msgpack_pack_uint64(pk, ae->prev_log_index);
            msgpack_pack_uint64(pk, ae->prev_log_term);
            msgpack_pack_uint64(pk, ae->leader_commit);
            msgpack_pack_array(pk, ae->n_entries);
            for (i = 0; i < ae->n_entries; i++) {
                const struct raft_entry *e = &ae->entries[i];
                msgpack_pack_array(pk, 3);
                msgpack_pack_uint64(pk, e->term);
                msgpack_pack_uint8(pk, (uint8_t)e->type);
                msgpack_pack_bin(pk, e->buf.len);
                if (e->buf.len > 0) {
                    cut[n_ext++] = f->sb.size;
                    ext_len += e->buf.len;
                }
            }
            break;
        case RAFT_IO_APPEND_ENTRIES_RESULT:
            jr__frame_begin(f, JR__MSG_RAFT_BASE + m->type, 3);
            msgpack_pack_uint64(pk, m->append_entries_result.term);
            msgpack_pack_uint64(pk, m->append_entries_result.rejected);
            msgpack_pack_uint64(pk, m->append_entries_result.last_log_index);
            break;
        case RAFT_IO_REQUEST_VOTE:
            jr__frame_begin(f, JR__MSG_RAFT_BASE + m->type, 6);
            msgpack_pack_uint64(pk, m->request_vote.term);
            msgpack_pack_uint64(pk, m->request_vote.candidate_id);
            msgpack_pack_uint64(pk, m->request_vote.last_log_index);
            msgpack_pack_uint64(pk, m->request_vote.last_log_term);
            if (m->request_vote.disrupt_leader) {
                msgpack_pack_true(pk);
            } else {
                msgpack_pack_false(pk);
            }
            if (m->request_vote.pre_vote) {
                msgpack_pack_true(pk);
            } else {
                msgpack_pack_false(pk);
            }
            break;
        case RAFT_IO_REQUEST_VOTE_RESULT:
            jr__frame_begin(f, JR__MSG_RAFT_BASE + m->type, 3);
            msgpack_pack_uint64(pk, m->request_vote_result.term);
            if (m->request_vote_result.vote_granted) {
                msgpack_pack_true(pk);
            } else {
                msgpack_pack_false(pk);
            }
            msgpack_pack_int(pk, (int)m->request_vote_result.pre_vote);
            break;
        case RAFT_IO_INSTALL_SNAPSHOT: {
            const struct raft_install_snapshot *is = &m->install_snapshot;
            cut = malloc(sizeof *cut);
            if (cut == NULL) {
                return JR_ENOMEM;
            }
            jr__frame_begin(f, JR__MSG_RAFT_BASE + m->type, 6);
            msgpack_pack_uint64(pk, is->term);
            msgpack_pack_uint64(pk, is->last_index);
            msgpack_pack_uint64(pk, is->last_term);
            msgpack_pack_uint64(pk, is->conf_index);
            pack_conf(pk, &is->conf);
            msgpack_pack_bin(pk, is->data.len);
            if (is->data.len > 0) {
                cut[n_ext++] = f->sb.size;
                ext_len += is->data.len;
            }
            break;
        }
        case RAFT_IO_TIMEOUT_NOW:
            jr__frame_begin(f, JR__MSG_RAFT_BASE + m->type, 3);
            msgpack_pack_uint64(pk, m->timeout_now.term);
            msgpack_pack_uint64(pk, m->timeout_now.last_log_index);
            msgpack_pack_uint64(pk, m->timeout_now.last_log_term);
            break;
        default: return JR_EINVAL;
    }
    if (f->sb.size - start - 4 + ext_len > 0xffffffffu) {
        free(cut);
        f->sb.size = start;
        return JR_ETOOBIG;
    }
    /* The length prefix counts the payloads that travel beside the
     * buffer. */
    jr__frame_end(f);
    {
        size_t len = f->sb.size - start - 4 + (size_t)ext_len;
        unsigned char *p = (unsigned char *)f->sb.data + start;
        p[0] = (unsigned char)(len >> 24);
        p[1] = (unsigned char)(len >> 16);
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
    }
    b = malloc((2 * n_ext + 1) * sizeof *b);
    if (b == NULL) {
        free(cut);
        return JR_ENOMEM;
    }
    k = 0;
    {
        size_t from = start;
        unsigned e = 0;
        for (i = 0; i < n_ext; i++) {
            const struct raft_buffer *data;
            if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
                data = &m->install_snapshot.data;
            } else {
                while (ae->entries[e].buf.len == 0) {
                    e++;
                }
                data = &ae->entries[e++].buf;
            }
            b[k++] = uv_buf_init(f->sb.data + from, (unsigned)(cut[i] - from));
            b[k++] = uv_buf_init(data->base, (unsigned)data->len);
            from = cut[i];
        }
        b[k++] = uv_buf_init(f->sb.data + from, (unsigned)(f->sb.size - from));
        if (b[k - 1].len == 0) {
            k--;
        }
    }
    free(cut);
    *bufs = b;
    *n_bufs = k;
    return 0;
}

/* ---- decoding ---- */

static int u64_of(const msgpack_object *o, unsigned long long *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return -1;
    }
    *v = o->via.u64;
    return 0;
}

static int bool_of(const msgpack_object *o, bool *v)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        return -1;
    }
    *v = o->via.boolean;
    return 0;
}

static int conf_of(const msgpack_object *o,
                   struct raft_configuration *conf,
                   char *errmsg)
{
    uint32_t i;
    raft_configuration_init(conf);
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > MAX_SERVERS) {
        jr__errf(errmsg, "configuration is not an array of servers");
        return JR_EPROTO;
    }
    for (i = 0; i < o->via.array.size; i++) {
        const msgpack_object *s = &o->via.array.ptr[i];
        const msgpack_object *f;
        char address[256];
        unsigned long long id;
        if (s->type != MSGPACK_OBJECT_ARRAY || s->via.array.size != 3) {
            goto bad;
        }
        f = s->via.array.ptr;
        if (u64_of(&f[0], &id) != 0 || id == 0 ||
            f[1].type != MSGPACK_OBJECT_STR || f[1].via.str.size == 0 ||
            f[1].via.str.size >= sizeof address ||
            f[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            f[2].via.u64 > RAFT_SPARE) {
            goto bad;
        }
        memcpy(address, f[1].via.str.ptr, f[1].via.str.size);
        address[f[1].via.str.size] = '\0';
        if (raft_configuration_add(conf, id, address, (int)f[2].via.u64) != 0) {
            goto bad;
        }
    }
    return 0;
bad:
    raft_configuration_close(conf);
    jr__errf(errmsg, "configuration: malformed server %u", i);
    return JR_EPROTO;
}

/* owned: the frame's own raft_malloc'd buffer, which may become the
 * entries' batch (their payloads are already in it), or NULL to copy. */
static int decode_entries(const msgpack_object *o,
                          struct raft_append_entries *ae,
                          char *owned,
                          bool *adopted,
                          char *errmsg)
{
    uint32_t i, n;
    size_t total = 0, off = 0;
    char *batch;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > MAX_ENTRIES) {
        jr__errf(errmsg, "entries is not an array");
        return JR_EPROTO;
    }
    n = o->via.array.size;
    for (i = 0; i < n; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        const msgpack_object *f;
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3) {
            jr__errf(errmsg, "entry %u: wrong shape", i);
            return JR_EPROTO;
        }
        f = e->via.array.ptr;
        if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            f[1].via.u64 < RAFT_COMMAND || f[1].via.u64 > RAFT_CHANGE ||
            f[2].type != MSGPACK_OBJECT_BIN) {
            jr__errf(errmsg, "entry %u: bad field", i);
            return JR_EPROTO;
        }
        total += f[2].via.bin.size;
    }
    ae->n_entries = n;
    ae->entries = NULL;
    if (n == 0) {
        return 0;
    }
    ae->entries = raft_calloc(n, sizeof *ae->entries);
    /* One batch for all payloads: raft frees it when the last entry
     * referencing it is released. */
    batch = owned != NULL ? owned : raft_malloc(total > 0 ? total : 1);
    if (ae->entries == NULL || batch == NULL) {
        raft_free(ae->entries);
        if (owned == NULL) {
            raft_free(batch);
        }
        ae->entries = NULL;
        return JR_ENOMEM;
    }
    if (owned != NULL) {
        *adopted = true;
    }
    for (i = 0; i < n; i++) {
        const msgpack_object *f = o->via.array.ptr[i].via.array.ptr;
        struct raft_entry *e = &ae->entries[i];
        e->term = f[0].via.u64;
        e->type = (unsigned short)f[1].via.u64;
        e->buf.len = f[2].via.bin.size;
        e->batch = batch;
        if (e->buf.len == 0) {
            e->buf.base = NULL;
        } else if (owned != NULL) {
            /* Zero copy: the payload already sits in the frame. */
            e->buf.base = (void *)f[2].via.bin.ptr;
        } else {
            e->buf.base = batch + off;
            memcpy(batch + off, f[2].via.bin.ptr, e->buf.len);
            off += e->buf.len;
        }
    }
    return 0;
}

int jr__raftmsg_decode(const char *buf,
                       size_t len,
                       struct raft_message *m,
                       char *errmsg)
{
    bool adopted = false;
    return jr__raftmsg_decode_owned((char *)buf, len, NULL, m, &adopted,
                                    errmsg);
}

int jr__raftmsg_decode_owned(char *buf,
                             size_t len,
                             char *owned,
                             struct raft_message *m,
                             bool *adopted,
                             char *errmsg)
{
    msgpack_unpacked u;
    const msgpack_object *f;
    size_t off = 0;
    uint32_t nf;
    int rv = JR_EPROTO;
    unsigned long long type;

    memset(m, 0, sizeof *m);
    if (!jr__msgpack_bounded(buf, len)) {
        jr__errf(errmsg, "raft message is not one well-formed msgpack value");
        return JR_EPROTO;
    }
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != len || u.data.type != MSGPACK_OBJECT_ARRAY ||
        u.data.via.array.size < 1) {
        jr__errf(errmsg, "raft message is not one msgpack array");
        goto out;
    }
    f = u.data.via.array.ptr;
    nf = u.data.via.array.size - 1;
    if (u64_of(&f[0], &type) != 0 || type <= JR__MSG_RAFT_BASE ||
        type > JR__MSG_RAFT_BASE + RAFT_IO_TIMEOUT_NOW) {
        jr__errf(errmsg, "not a raft message");
        goto out;
    }
    m->type = (unsigned short)(type - JR__MSG_RAFT_BASE);
    f++;
    switch (m->type) {
        case RAFT_IO_APPEND_ENTRIES: {
            struct raft_append_entries *ae = &m->append_entries;
            if (nf != 5 || u64_of(&f[0], &ae->term) ||
                u64_of(&f[1], &ae->prev_log_index) ||
                u64_of(&f[2], &ae->prev_log_term) ||
                u64_of(&f[3], &ae->leader_commit)) {
                break;
            }
            rv = decode_entries(&f[4], ae, owned, adopted, errmsg);
            goto out;
        }
        case RAFT_IO_APPEND_ENTRIES_RESULT: {
            struct raft_append_entries_result *r = &m->append_entries_result;
            if (nf != 3 || u64_of(&f[0], &r->term) ||
                u64_of(&f[1], &r->rejected) ||
                u64_of(&f[2], &r->last_log_index)) {
                break;
            }
            rv = 0;
            goto out;
        }
        case RAFT_IO_REQUEST_VOTE: {
            struct raft_request_vote *r = &m->request_vote;
            if (nf != 6 || u64_of(&f[0], &r->term) ||
                u64_of(&f[1], &r->candidate_id) ||
                u64_of(&f[2], &r->last_log_index) ||
                u64_of(&f[3], &r->last_log_term) ||
                bool_of(&f[4], &r->disrupt_leader) ||
                bool_of(&f[5], &r->pre_vote)) {
                break;
            }
            rv = 0;
            goto out;
        }
        case RAFT_IO_REQUEST_VOTE_RESULT: {
            struct raft_request_vote_result *r = &m->request_vote_result;
            unsigned long long pv;
            if (nf != 3 || u64_of(&f[0], &r->term) ||
                bool_of(&f[1], &r->vote_granted) || u64_of(&f[2], &pv) ||
                pv > raft_tribool_false) {
                break;
            }
            r->pre_vote = (raft_tribool)pv;
            rv = 0;
            goto out;
        }
        case RAFT_IO_INSTALL_SNAPSHOT: {
            struct raft_install_snapshot *is = &m->install_snapshot;
            if (nf != 6 || u64_of(&f[0], &is->term) ||
                u64_of(&f[1], &is->last_index) ||
                u64_of(&f[2], &is->last_term) ||
                u64_of(&f[3], &is->conf_index) ||
                f[5].type != MSGPACK_OBJECT_BIN) {
                break;
            }
            rv = conf_of(&f[4], &is->conf, errmsg);
            if (rv != 0) {
                goto out;
            }
            is->data.len = f[5].via.bin.size;
            if (owned != NULL) {
                /* The state is most of the frame: slide it to the front of
                 * the frame's buffer rather than holding it twice. */
                memmove(owned, f[5].via.bin.ptr, is->data.len);
                is->data.base = owned;
                *adopted = true;
                rv = 0;
                goto out;
            }
            is->data.base = raft_malloc(is->data.len > 0 ? is->data.len : 1);
            if (is->data.base == NULL) {
                raft_configuration_close(&is->conf);
                rv = JR_ENOMEM;
                goto out;
            }
            if (is->data.len > 0) {
                memcpy(is->data.base, f[5].via.bin.ptr, is->data.len);
            }
            rv = 0;
            goto out;
        }
        case RAFT_IO_TIMEOUT_NOW: {
            struct raft_timeout_now *t = &m->timeout_now;
            if (nf != 3 || u64_of(&f[0], &t->term) ||
                u64_of(&f[1], &t->last_log_index) ||
                u64_of(&f[2], &t->last_log_term)) {
                break;
            }
            rv = 0;
            goto out;
        }
    }
    jr__errf(errmsg, "raft message type %d: malformed fields", m->type);
out:
    msgpack_unpacked_destroy(&u);
    return rv;
}

void jr__raftmsg_release(struct raft_message *m)
{
    switch (m->type) {
        case RAFT_IO_APPEND_ENTRIES:
            if (m->append_entries.n_entries > 0) {
                raft_free(m->append_entries.entries[0].batch);
            }
            raft_free(m->append_entries.entries);
            break;
        case RAFT_IO_INSTALL_SNAPSHOT:
            raft_configuration_close(&m->install_snapshot.conf);
            raft_free(m->install_snapshot.data.base);
            break;
        default: break;
    }
}

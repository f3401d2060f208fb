/* libstate.c: the little state the library itself replicates through the
 * log, beside the embedder's: the join tokens already used (a token is
 * single use across the whole cluster and across leader changes, so the
 * record must be committed, not kept on the node that admitted the
 * joiner), and the members that must never vote (backup nodes: whichever
 * node leads, its reconciler must know them).
 *
 * Commands travel in envelopes flagged internal (apply.c) and never reach
 * the embedder's FSM. Snapshots start with a section of ours (magic, length,
 * msgpack) ahead of the embedder's bytes; a snapshot without the magic is
 * all the embedder's. */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "jointoken.h"
#include "jr_internal.h"
#include "mpbound.h"

#define CMD_TOKEN_USED 1
#define CMD_NEVER_VOTE 2
#define SECTION_MAGIC "\0JACOLIB"
#define SECTION_MAGIC_LEN 8
#define SECTION_VERSION 2 /* 1: without the never-vote list */
#define MAX_NEVER_VOTE 64
#define MAX_USED 65536 /* at most this many unexpired tokens remembered */

struct used_token {
    unsigned char nonce[JR__TOKEN_NONCE_LEN];
    uint64_t expires_ms;
    uint64_t joiner_id; /* a retry by the same node is not a reuse */
};

struct jr__libstate {
    struct used_token *used;
    unsigned n_used;
    uint64_t never_vote[MAX_NEVER_VOTE];
    unsigned n_never_vote;
};

static struct jr__libstate *state_of(struct jr_node *n)
{
    if (n->libstate == NULL) {
        n->libstate = calloc(1, sizeof *n->libstate);
    }
    return n->libstate;
}

void jr__libstate_free(struct jr_node *n)
{
    if (n->libstate != NULL) {
        free(n->libstate->used);
        free(n->libstate);
        n->libstate = NULL;
    }
}

void *jr__libstate_token_cmd(const unsigned char nonce[16],
                             uint64_t expires_ms,
                             uint64_t joiner_id,
                             uint64_t now_ms,
                             size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint64(&pk, CMD_TOKEN_USED);
    jr__pack_bin(&pk, nonce, JR__TOKEN_NONCE_LEN);
    msgpack_pack_uint64(&pk, expires_ms);
    msgpack_pack_uint64(&pk, joiner_id);
    msgpack_pack_uint64(&pk, now_ms);
    *len = sb.size;
    return sb.data; /* msgpack_sbuffer allocates with malloc */
}

/* Forget tokens expired at now_ms: they are refused as expired anyway. */
static void prune(struct jr__libstate *st, uint64_t now_ms)
{
    unsigned i, k = 0;
    for (i = 0; i < st->n_used; i++) {
        if (st->used[i].expires_ms > now_ms) {
            st->used[k++] = st->used[i];
        }
    }
    st->n_used = k;
}

static int add_used(struct jr__libstate *st,
                    const unsigned char *nonce,
                    uint64_t expires_ms,
                    uint64_t joiner_id)
{
    struct used_token *u;
    if (st->n_used == MAX_USED) {
        return JR_ENOMEM;
    }
    u = realloc(st->used, (st->n_used + 1) * sizeof *u);
    if (u == NULL) {
        return JR_ENOMEM;
    }
    st->used = u;
    memcpy(u[st->n_used].nonce, nonce, JR__TOKEN_NONCE_LEN);
    u[st->n_used].expires_ms = expires_ms;
    u[st->n_used].joiner_id = joiner_id;
    st->n_used++;
    return 0;
}

void *jr__libstate_never_vote_cmd(uint64_t id, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, CMD_NEVER_VOTE);
    msgpack_pack_uint64(&pk, id);
    *len = sb.size;
    return sb.data;
}

bool jr__libstate_is_never_vote_of(const void *buf, size_t len, uint64_t id)
{
    msgpack_unpacked u;
    size_t off = 0;
    bool ok;
    if (!jr__msgpack_bounded(buf, len)) {
        return false;
    }
    msgpack_unpacked_init(&u);
    ok = msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS &&
         u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 2 &&
         u.data.via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
         u.data.via.array.ptr[0].via.u64 == CMD_NEVER_VOTE &&
         u.data.via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
         u.data.via.array.ptr[1].via.u64 == id && id != 0;
    msgpack_unpacked_destroy(&u);
    return ok;
}

bool jr__libstate_never_votes(struct jr_node *n, uint64_t id)
{
    struct jr__libstate *st = state_of(n);
    unsigned i;
    for (i = 0; st != NULL && i < st->n_never_vote; i++) {
        if (st->never_vote[i] == id) {
            return true;
        }
    }
    return false;
}

static int add_never_vote(struct jr__libstate *st, uint64_t id)
{
    unsigned i;
    for (i = 0; i < st->n_never_vote; i++) {
        if (st->never_vote[i] == id) {
            return 0;
        }
    }
    if (st->n_never_vote == MAX_NEVER_VOTE) {
        return JR_ENOMEM;
    }
    st->never_vote[st->n_never_vote++] = id;
    return 0;
}

/* [CMD_NEVER_VOTE, id]: a full list is not an error of the log; the node
 * keeps asking and its status says it is not recorded. */
static int apply_never_vote(struct jr__libstate *st, const msgpack_object *o)
{
    const msgpack_object *f = o->via.array.ptr;
    if (o->via.array.size != 2 ||
        f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return JR_ECORRUPT;
    }
    (void)add_never_vote(st, f[1].via.u64);
    return 0;
}

/* Result: one byte, 0 = recorded (the token was unused, or used by this
 * same joiner: a retry after a lost answer), 1 = already used by another
 * node, 2 = not recorded (too many unexpired tokens). Every node reaches
 * the same outcome: it depends only on the log. */
int jr__libstate_apply(struct jr_node *n,
                       const void *buf,
                       size_t len,
                       void **result,
                       size_t *result_len)
{
    struct jr__libstate *st = state_of(n);
    msgpack_unpacked u;
    const msgpack_object *f;
    unsigned char outcome = 0, *res;
    size_t off = 0;
    unsigned i;
    int rv = JR_ECORRUPT;

    if (st == NULL) {
        return JR_ENOMEM;
    }
    if (!jr__msgpack_bounded(buf, len)) {
        return JR_ECORRUPT;
    }
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size < 1) {
        goto out;
    }
    f = u.data.via.array.ptr;
    if (f[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        f[0].via.u64 == CMD_NEVER_VOTE) {
        rv = apply_never_vote(st, &u.data);
        goto out;
    }
    if (u.data.via.array.size != 5) {
        goto out;
    }
    if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        f[0].via.u64 != CMD_TOKEN_USED || f[1].type != MSGPACK_OBJECT_BIN ||
        f[1].via.bin.size != JR__TOKEN_NONCE_LEN ||
        f[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        f[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        f[4].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        goto out;
    }
    prune(st, f[4].via.u64);
    for (i = 0; i < st->n_used; i++) {
        if (jr__token_nonce_equal(st->used[i].nonce,
                                  (const unsigned char *)f[1].via.bin.ptr)) {
            outcome = st->used[i].joiner_id == f[3].via.u64 ? 3 : 1;
            break;
        }
    }
    if (outcome == 3) {
        outcome = 0;
    } else if (outcome == 0 &&
               add_used(st, (const unsigned char *)f[1].via.bin.ptr,
                        f[2].via.u64, f[3].via.u64) != 0) {
        outcome = 2;
    }
    res = jr_malloc(1);
    if (res != NULL) {
        res[0] = outcome;
        *result = res;
        *result_len = 1;
    }
    rv = 0;
out:
    msgpack_unpacked_destroy(&u);
    return rv;
}

int jr__libstate_snapshot(struct jr_node *n, struct jr_snapshot_writer *w)
{
    struct jr__libstate *st = state_of(n);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    unsigned char hdr[SECTION_MAGIC_LEN + 4];
    unsigned i;
    int rv;
    if (st == NULL) {
        return JR_ENOMEM;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint64(&pk, SECTION_VERSION);
    msgpack_pack_array(&pk, st->n_used);
    for (i = 0; i < st->n_used; i++) {
        msgpack_pack_array(&pk, 3);
        jr__pack_bin(&pk, st->used[i].nonce, JR__TOKEN_NONCE_LEN);
        msgpack_pack_uint64(&pk, st->used[i].expires_ms);
        msgpack_pack_uint64(&pk, st->used[i].joiner_id);
    }
    msgpack_pack_array(&pk, st->n_never_vote);
    for (i = 0; i < st->n_never_vote; i++) {
        msgpack_pack_uint64(&pk, st->never_vote[i]);
    }
    memcpy(hdr, SECTION_MAGIC, SECTION_MAGIC_LEN);
    hdr[8] = (unsigned char)(sb.size >> 24);
    hdr[9] = (unsigned char)(sb.size >> 16);
    hdr[10] = (unsigned char)(sb.size >> 8);
    hdr[11] = (unsigned char)sb.size;
    rv = jr_snapshot_write(w, hdr, sizeof hdr);
    if (rv == 0) {
        rv = jr_snapshot_write(w, sb.data, sb.size);
    }
    msgpack_sbuffer_destroy(&sb);
    return rv;
}

int jr__libstate_restore(struct jr_node *n,
                         const void *buf,
                         size_t len,
                         size_t *skip)
{
    const unsigned char *p = buf;
    struct jr__libstate *st = state_of(n), fresh;
    msgpack_unpacked u;
    const msgpack_object *f;
    size_t slen, off = 0;
    uint32_t i;
    int rv = JR_ECORRUPT;

    *skip = 0;
    memset(&fresh, 0, sizeof fresh);
    if (st == NULL) {
        return JR_ENOMEM;
    }
    if (len < SECTION_MAGIC_LEN + 4 ||
        memcmp(p, SECTION_MAGIC, SECTION_MAGIC_LEN) != 0) {
        /* A snapshot from before the section existed: nothing used. */
        st->n_used = 0;
        st->n_never_vote = 0;
        return 0;
    }
    slen = ((size_t)p[8] << 24) | ((size_t)p[9] << 16) | ((size_t)p[10] << 8) |
           p[11];
    if (slen > len - SECTION_MAGIC_LEN - 4 ||
        !jr__msgpack_bounded((const char *)p + 12, slen)) {
        return JR_ECORRUPT;
    }
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)p + 12, slen, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size < 2) {
        goto out;
    }
    f = u.data.via.array.ptr;
    /* Version 1 has no never-vote list; version 2 adds it third. */
    if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        (f[0].via.u64 != 1 && f[0].via.u64 != SECTION_VERSION) ||
        u.data.via.array.size != (f[0].via.u64 == 1 ? 2u : 3u) ||
        f[1].type != MSGPACK_OBJECT_ARRAY || f[1].via.array.size > MAX_USED) {
        goto out;
    }
    if (u.data.via.array.size == 3) {
        const msgpack_object *l = &f[2];
        if (l->type != MSGPACK_OBJECT_ARRAY ||
            l->via.array.size > MAX_NEVER_VOTE) {
            goto out;
        }
        for (i = 0; i < l->via.array.size; i++) {
            if (l->via.array.ptr[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                goto out;
            }
            (void)add_never_vote(&fresh, l->via.array.ptr[i].via.u64);
        }
    }
    for (i = 0; i < f[1].via.array.size; i++) {
        const msgpack_object *e = &f[1].via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3 ||
            e->via.array.ptr[0].type != MSGPACK_OBJECT_BIN ||
            e->via.array.ptr[0].via.bin.size != JR__TOKEN_NONCE_LEN ||
            e->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            e->via.array.ptr[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            add_used(&fresh,
                     (const unsigned char *)e->via.array.ptr[0].via.bin.ptr,
                     e->via.array.ptr[1].via.u64,
                     e->via.array.ptr[2].via.u64) != 0) {
            free(fresh.used);
            goto out;
        }
    }
    free(st->used);
    *st = fresh;
    *skip = SECTION_MAGIC_LEN + 4 + slen;
    rv = 0;
out:
    msgpack_unpacked_destroy(&u);
    return rv;
}

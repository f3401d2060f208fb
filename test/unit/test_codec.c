/* test_codec.c: RPC frame encoding and decoding, and the 8-byte entry
 * envelope. */
#include <limits.h>
#include <raft.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "jr_internal.h"
#include "suites.h"

/* ---- helpers ---- */

/* The payload of the frame that starts at offset 0 of f. */
static const char *payload_of(const struct jr__frame *f, size_t *len)
{
    ck_assert_uint_ge(f->sb.size, 4);
    *len = f->sb.size - 4;
    return f->sb.data + 4;
}

/* Decode a payload that must be valid; m is left for the caller to check
 * and free. Strings in m point into f's buffer. */
static void decode_ok(const struct jr__frame *f, struct jr__msg *m)
{
    char errmsg[JR_ERRMSG_SIZE] = "";
    size_t len;
    const char *p = payload_of(f, &len);
    int rv = jr__msg_decode(p, len, m, errmsg);
    ck_assert_msg(rv == 0, "decode failed with %d: %s", rv, errmsg);
}

/* Decode a copy of buf[0..len) held in a buffer of exactly len bytes (so
 * that valgrind sees any read past the end) and require a clean rejection:
 * JR_EPROTO, a message, and nothing left to free. */
static void expect_rejected_at(const void *buf,
                               size_t len,
                               const char *what,
                               long where)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__msg m;
    char *copy = malloc(len > 0 ? len : 1);
    int rv;
    ck_assert_ptr_nonnull(copy);
    if (len > 0) {
        memcpy(copy, buf, len);
    }
    errmsg[0] = '\0';
    memset(&m, 0xa5, sizeof m);
    rv = jr__msg_decode(copy, len, &m, errmsg);
    free(copy);
    ck_assert_msg(rv == JR_EPROTO, "%s (%ld): decode returned %d, want %d",
                  what, where, rv, JR_EPROTO);
    ck_assert_msg(errmsg[0] != '\0', "%s (%ld): empty error message", what,
                  where);
    ck_assert_msg(m.items == NULL && m.n_items == 0,
                  "%s (%ld): rejected message still holds items", what, where);
}

static void expect_rejected(const void *buf, size_t len, const char *what)
{
    expect_rejected_at(buf, len, what, -1);
}

static void expect_frame_rejected(const struct jr__frame *f, const char *what)
{
    size_t len;
    const char *p = payload_of(f, &len);
    expect_rejected(p, len, what);
}

static bool str_is(struct jr__str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

#define ck_assert_jrstr_eq(s, want)                                   \
    ck_assert_msg(str_is((s), (want)), "%s is '%.*s', want '%s'", #s, \
                  (int)(s).len, (s).ptr != NULL ? (s).ptr : "", (want))

/* ---- builders of one valid frame of each type ---- */

static const char cmd_a[] = "first command";
static const char cmd_b[] = {0, 1, 2, 3, 4, 5, 6, 7};
static const char cmd_c[] = "x";

static void build_forward(struct jr__frame *f)
{
    jr__frame_begin(f, JR__MSG_FORWARD, 1);
    msgpack_pack_array(&f->pk, 3);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_uint64(&f->pk, 11);
    jr__pack_bin(&f->pk, cmd_a, sizeof cmd_a);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_uint64(&f->pk, 12);
    jr__pack_bin(&f->pk, cmd_b, sizeof cmd_b);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_uint64(&f->pk, UINT64_MAX);
    jr__pack_bin(&f->pk, cmd_c, 1);
    jr__frame_end(f);
}

static void build_apply_result(struct jr__frame *f)
{
    jr__frame_begin(f, JR__MSG_APPLY_RESULT, 1);
    msgpack_pack_array(&f->pk, 3);
    /* success with a result */
    msgpack_pack_array(&f->pk, 5);
    msgpack_pack_uint64(&f->pk, 1);
    msgpack_pack_int64(&f->pk, 0);
    jr__pack_cstr(&f->pk, "");
    msgpack_pack_uint64(&f->pk, 100);
    jr__pack_bin(&f->pk, "result", 6);
    /* success without a result */
    msgpack_pack_array(&f->pk, 5);
    msgpack_pack_uint64(&f->pk, 2);
    msgpack_pack_int64(&f->pk, 0);
    jr__pack_cstr(&f->pk, "");
    msgpack_pack_uint64(&f->pk, 101);
    msgpack_pack_nil(&f->pk);
    /* failure */
    msgpack_pack_array(&f->pk, 5);
    msgpack_pack_uint64(&f->pk, 3);
    msgpack_pack_int64(&f->pk, JR_EAPPLY);
    jr__pack_cstr(&f->pk, "the state machine returned 1");
    msgpack_pack_uint64(&f->pk, 102);
    msgpack_pack_nil(&f->pk);
    jr__frame_end(f);
}

static void build_read_index(struct jr__frame *f)
{
    jr__frame_begin(f, JR__MSG_READ_INDEX, 1);
    msgpack_pack_uint64(&f->pk, 77);
    jr__frame_end(f);
}

static void build_read_index_result(struct jr__frame *f)
{
    jr__frame_begin(f, JR__MSG_READ_INDEX_RESULT, 4);
    msgpack_pack_uint64(&f->pk, 77);
    msgpack_pack_int64(&f->pk, JR_ENOLEADER);
    jr__pack_cstr(&f->pk, "no leader");
    msgpack_pack_uint64(&f->pk, 4242);
    jr__frame_end(f);
}

static void build_info(struct jr__frame *f)
{
    jr__frame_begin(f, JR__MSG_INFO, 1);
    msgpack_pack_uint64(&f->pk, 5);
    jr__frame_end(f);
}

static const char cluster[] = "0123456789abcdef0123456789abcdef";

static void build_info_result(struct jr__frame *f)
{
    jr__frame_begin(f, JR__MSG_INFO_RESULT, 7);
    msgpack_pack_uint64(&f->pk, 5);
    msgpack_pack_int64(&f->pk, 0);
    jr__pack_cstr(&f->pk, "");
    jr__pack_cstr(&f->pk, cluster);
    msgpack_pack_uint64(&f->pk, 3);
    jr__pack_cstr(&f->pk, "127.0.0.1:9003");
    msgpack_pack_uint64(&f->pk, 0); /* incarnation */
    jr__frame_end(f);
}

static void build_join(struct jr__frame *f)
{
    jr__frame_begin(f, JR__MSG_JOIN, 4);
    msgpack_pack_uint64(&f->pk, 9);
    msgpack_pack_uint64(&f->pk, 4);
    jr__pack_cstr(&f->pk, "127.0.0.1:9004");
    jr__pack_cstr(&f->pk, "node4");
    jr__frame_end(f);
}

static void build_join_result(struct jr__frame *f)
{
    jr__frame_begin(f, JR__MSG_JOIN_RESULT, 4);
    msgpack_pack_uint64(&f->pk, 9);
    msgpack_pack_int64(&f->pk, JR_EMISMATCH);
    jr__pack_cstr(&f->pk, "another cluster");
    jr__pack_cstr(&f->pk, "127.0.0.1:9001");
    jr__frame_end(f);
}

static void build_admin(struct jr__frame *f)
{
    jr__frame_begin(f, JR__MSG_ADMIN, 4);
    msgpack_pack_uint64(&f->pk, 11);
    msgpack_pack_uint64(&f->pk, 1); /* JR__ADMIN_REMOVE */
    msgpack_pack_uint64(&f->pk, UINT64_MAX);
    msgpack_pack_uint64(&f->pk, 1); /* JR_REMOVE_FORCE */
    jr__frame_end(f);
}

static void (*const builders[])(struct jr__frame *) = {
    build_forward,    build_apply_result,
    build_read_index, build_read_index_result,
    build_info,       build_info_result,
    build_join,       build_join_result,
    build_admin,
};
#define N_BUILDERS (sizeof builders / sizeof builders[0])

/* ---- framing ---- */

START_TEST(frame_prefix_is_big_endian_payload_size)
{
    struct jr__frame f;
    const unsigned char *p;
    size_t i, len;
    static char big[70000];
    for (i = 0; i < N_BUILDERS; i++) {
        jr__frame_init(&f);
        builders[i](&f);
        p = (const unsigned char *)f.sb.data;
        len = ((size_t)p[0] << 24) | ((size_t)p[1] << 16) |
              ((size_t)p[2] << 8) | p[3];
        ck_assert_uint_eq(len, f.sb.size - 4);
        jr__frame_close(&f);
    }
    /* A payload over 64 KiB sets the third byte of the prefix. */
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_FORWARD, 1);
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_uint64(&f.pk, 1);
    jr__pack_bin(&f.pk, big, sizeof big);
    jr__frame_end(&f);
    p = (const unsigned char *)f.sb.data;
    len = ((size_t)p[0] << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) |
          p[3];
    ck_assert_uint_eq(p[1], 1);
    ck_assert_uint_eq(len, f.sb.size - 4);
    jr__frame_close(&f);
}
END_TEST

START_TEST(frames_appended_to_one_buffer_each_get_their_own_prefix)
{
    struct jr__frame f;
    struct jr__msg m;
    char errmsg[JR_ERRMSG_SIZE];
    const unsigned char *p;
    size_t first, second;
    jr__frame_init(&f);
    build_read_index(&f);
    first = f.sb.size;
    build_join(&f);
    second = f.sb.size - first;
    p = (const unsigned char *)f.sb.data + first;
    ck_assert_uint_eq(f.start, first);
    ck_assert_uint_eq(((size_t)p[0] << 24) | ((size_t)p[1] << 16) |
                          ((size_t)p[2] << 8) | p[3],
                      second - 4);
    ck_assert_int_eq(
        jr__msg_decode((const char *)p + 4, second - 4, &m, errmsg), 0);
    ck_assert_int_eq(m.type, JR__MSG_JOIN);
    jr__msg_free(&m);
    jr__frame_close(&f);
}
END_TEST

/* ---- round trips ---- */

START_TEST(forward_batch_round_trips_every_item)
{
    struct jr__frame f;
    struct jr__msg m;
    jr__frame_init(&f);
    build_forward(&f);
    decode_ok(&f, &m);
    ck_assert_int_eq(m.type, JR__MSG_FORWARD);
    ck_assert_uint_eq(m.n_items, 3);
    ck_assert_ptr_nonnull(m.items);
    ck_assert_uint_eq(m.items[0].req_id, 11);
    ck_assert_uint_eq(m.items[0].data.len, sizeof cmd_a);
    ck_assert_mem_eq(m.items[0].data.ptr, cmd_a, sizeof cmd_a);
    ck_assert_uint_eq(m.items[1].req_id, 12);
    ck_assert_uint_eq(m.items[1].data.len, sizeof cmd_b);
    ck_assert_mem_eq(m.items[1].data.ptr, cmd_b, sizeof cmd_b);
    ck_assert_uint_eq(m.items[2].req_id, UINT64_MAX);
    ck_assert_uint_eq(m.items[2].data.len, 1);
    ck_assert_mem_eq(m.items[2].data.ptr, cmd_c, 1);
    jr__msg_free(&m);
    ck_assert_ptr_null(m.items);
    ck_assert_uint_eq(m.n_items, 0);
    jr__frame_close(&f);
}
END_TEST

START_TEST(forward_batch_of_many_items_round_trips)
{
    struct jr__frame f;
    struct jr__msg m;
    uint64_t i, v;
    const unsigned n = 1000;
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_FORWARD, 1);
    msgpack_pack_array(&f.pk, n);
    for (i = 0; i < n; i++) {
        v = i * 3;
        msgpack_pack_array(&f.pk, 2);
        msgpack_pack_uint64(&f.pk, i + 1);
        jr__pack_bin(&f.pk, &v, sizeof v);
    }
    jr__frame_end(&f);
    decode_ok(&f, &m);
    ck_assert_uint_eq(m.n_items, n);
    for (i = 0; i < n; i++) {
        ck_assert_uint_eq(m.items[i].req_id, i + 1);
        ck_assert_uint_eq(m.items[i].data.len, sizeof v);
        memcpy(&v, m.items[i].data.ptr, sizeof v);
        ck_assert_uint_eq(v, i * 3);
    }
    jr__msg_free(&m);
    jr__frame_close(&f);
}
END_TEST

START_TEST(apply_result_round_trips_bin_and_nil_results)
{
    struct jr__frame f;
    struct jr__msg m;
    jr__frame_init(&f);
    build_apply_result(&f);
    decode_ok(&f, &m);
    ck_assert_int_eq(m.type, JR__MSG_APPLY_RESULT);
    ck_assert_uint_eq(m.n_items, 3);
    ck_assert_uint_eq(m.items[0].req_id, 1);
    ck_assert_int_eq(m.items[0].status, 0);
    ck_assert_uint_eq(m.items[0].errmsg.len, 0);
    ck_assert_uint_eq(m.items[0].index, 100);
    ck_assert_uint_eq(m.items[0].data.len, 6);
    ck_assert_mem_eq(m.items[0].data.ptr, "result", 6);
    ck_assert_uint_eq(m.items[1].req_id, 2);
    ck_assert_int_eq(m.items[1].status, 0);
    ck_assert_uint_eq(m.items[1].index, 101);
    ck_assert_ptr_null(m.items[1].data.ptr);
    ck_assert_uint_eq(m.items[1].data.len, 0);
    ck_assert_uint_eq(m.items[2].req_id, 3);
    ck_assert_int_eq(m.items[2].status, JR_EAPPLY);
    ck_assert_jrstr_eq(m.items[2].errmsg, "the state machine returned 1");
    ck_assert_uint_eq(m.items[2].index, 102);
    ck_assert_ptr_null(m.items[2].data.ptr);
    jr__msg_free(&m);
    jr__frame_close(&f);
}
END_TEST

START_TEST(apply_result_keeps_extreme_status_values)
{
    struct jr__frame f;
    struct jr__msg m;
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_APPLY_RESULT, 1);
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_array(&f.pk, 5);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_int64(&f.pk, INT64_MIN);
    jr__pack_cstr(&f.pk, "");
    msgpack_pack_uint64(&f.pk, 0);
    msgpack_pack_nil(&f.pk);
    msgpack_pack_array(&f.pk, 5);
    msgpack_pack_uint64(&f.pk, 2);
    msgpack_pack_int64(&f.pk, INT64_MAX);
    jr__pack_cstr(&f.pk, "");
    msgpack_pack_uint64(&f.pk, UINT64_MAX);
    msgpack_pack_nil(&f.pk);
    jr__frame_end(&f);
    decode_ok(&f, &m);
    ck_assert_int_eq(m.items[0].status, INT64_MIN);
    ck_assert_int_eq(m.items[1].status, INT64_MAX);
    ck_assert_uint_eq(m.items[1].index, UINT64_MAX);
    jr__msg_free(&m);
    jr__frame_close(&f);
}
END_TEST

START_TEST(read_index_round_trips)
{
    struct jr__frame f;
    struct jr__msg m;
    jr__frame_init(&f);
    build_read_index(&f);
    decode_ok(&f, &m);
    ck_assert_int_eq(m.type, JR__MSG_READ_INDEX);
    ck_assert_uint_eq(m.req_id, 77);
    ck_assert_ptr_null(m.items);
    jr__msg_free(&m);
    jr__frame_close(&f);
}
END_TEST

START_TEST(read_index_result_round_trips)
{
    struct jr__frame f;
    struct jr__msg m;
    jr__frame_init(&f);
    build_read_index_result(&f);
    decode_ok(&f, &m);
    ck_assert_int_eq(m.type, JR__MSG_READ_INDEX_RESULT);
    ck_assert_uint_eq(m.req_id, 77);
    ck_assert_int_eq(m.status, JR_ENOLEADER);
    ck_assert_jrstr_eq(m.errmsg, "no leader");
    ck_assert_uint_eq(m.index, 4242);
    jr__msg_free(&m);
    jr__frame_close(&f);
}
END_TEST

START_TEST(info_round_trips)
{
    struct jr__frame f;
    struct jr__msg m;
    jr__frame_init(&f);
    build_info(&f);
    decode_ok(&f, &m);
    ck_assert_int_eq(m.type, JR__MSG_INFO);
    ck_assert_uint_eq(m.req_id, 5);
    jr__msg_free(&m);
    jr__frame_close(&f);
}
END_TEST

START_TEST(info_result_round_trips)
{
    struct jr__frame f;
    struct jr__msg m;
    jr__frame_init(&f);
    build_info_result(&f);
    decode_ok(&f, &m);
    ck_assert_int_eq(m.type, JR__MSG_INFO_RESULT);
    ck_assert_uint_eq(m.req_id, 5);
    ck_assert_int_eq(m.status, 0);
    ck_assert_uint_eq(m.errmsg.len, 0);
    ck_assert_jrstr_eq(m.cluster_id, cluster);
    ck_assert_uint_eq(m.id, 3);
    ck_assert_jrstr_eq(m.address, "127.0.0.1:9003");
    jr__msg_free(&m);
    jr__frame_close(&f);
}
END_TEST

START_TEST(info_result_accepts_empty_cluster_id_and_address)
{
    struct jr__frame f;
    struct jr__msg m;
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_INFO_RESULT, 7);
    msgpack_pack_uint64(&f.pk, 5);
    msgpack_pack_int64(&f.pk, 0);
    jr__pack_cstr(&f.pk, "");
    jr__pack_cstr(&f.pk, "");
    msgpack_pack_uint64(&f.pk, 0);
    jr__pack_cstr(&f.pk, "");
    msgpack_pack_uint64(&f.pk, 0); /* incarnation */
    jr__frame_end(&f);
    decode_ok(&f, &m);
    ck_assert_uint_eq(m.cluster_id.len, 0);
    ck_assert_uint_eq(m.id, 0);
    ck_assert_uint_eq(m.address.len, 0);
    jr__msg_free(&m);
    jr__frame_close(&f);
}
END_TEST

START_TEST(join_round_trips)
{
    struct jr__frame f;
    struct jr__msg m;
    jr__frame_init(&f);
    build_join(&f);
    decode_ok(&f, &m);
    ck_assert_int_eq(m.type, JR__MSG_JOIN);
    ck_assert_uint_eq(m.req_id, 9);
    ck_assert_uint_eq(m.id, 4);
    ck_assert_jrstr_eq(m.address, "127.0.0.1:9004");
    ck_assert_jrstr_eq(m.name, "node4");
    jr__msg_free(&m);
    jr__frame_close(&f);
}
END_TEST

START_TEST(join_result_round_trips)
{
    struct jr__frame f;
    struct jr__msg m;
    jr__frame_init(&f);
    build_join_result(&f);
    decode_ok(&f, &m);
    ck_assert_int_eq(m.type, JR__MSG_JOIN_RESULT);
    ck_assert_uint_eq(m.req_id, 9);
    ck_assert_int_eq(m.status, JR_EMISMATCH);
    ck_assert_jrstr_eq(m.errmsg, "another cluster");
    ck_assert_jrstr_eq(m.address, "127.0.0.1:9001");
    jr__msg_free(&m);
    jr__frame_close(&f);
}
END_TEST

START_TEST(admin_round_trips)
{
    struct jr__frame f;
    struct jr__msg m;
    jr__frame_init(&f);
    build_admin(&f);
    decode_ok(&f, &m);
    ck_assert_int_eq(m.type, JR__MSG_ADMIN);
    ck_assert_uint_eq(m.req_id, 11);
    ck_assert_uint_eq(m.op, 1);
    ck_assert_uint_eq(m.id, UINT64_MAX);
    ck_assert_uint_eq(m.flags, 1);
    jr__msg_free(&m);
    jr__frame_close(&f);
}
END_TEST

START_TEST(decode_rejects_admin_with_a_string_id)
{
    struct jr__frame f;
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_ADMIN, 4);
    msgpack_pack_uint64(&f.pk, 11);
    msgpack_pack_uint64(&f.pk, 1);
    jr__pack_cstr(&f.pk, "n2");
    msgpack_pack_uint64(&f.pk, 0);
    jr__frame_end(&f);
    expect_frame_rejected(&f, "admin id string");
    jr__frame_close(&f);
}
END_TEST

START_TEST(strings_at_their_length_limit_are_accepted)
{
    struct jr__frame f;
    struct jr__msg m;
    char address[255], name[63], errmsg[JR__MAX_STR];
    memset(address, 'a', sizeof address);
    memset(name, 'n', sizeof name);
    memset(errmsg, 'e', sizeof errmsg);
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN, 4);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_uint64(&f.pk, 2);
    jr__pack_str(&f.pk, address, sizeof address);
    jr__pack_str(&f.pk, name, sizeof name);
    jr__frame_end(&f);
    decode_ok(&f, &m);
    ck_assert_uint_eq(m.address.len, sizeof address);
    ck_assert_uint_eq(m.name.len, sizeof name);
    jr__msg_free(&m);
    jr__frame_close(&f);

    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_READ_INDEX_RESULT, 4);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_int64(&f.pk, -1);
    jr__pack_str(&f.pk, errmsg, sizeof errmsg);
    msgpack_pack_uint64(&f.pk, 1);
    jr__frame_end(&f);
    decode_ok(&f, &m);
    ck_assert_uint_eq(m.errmsg.len, sizeof errmsg);
    jr__msg_free(&m);
    jr__frame_close(&f);
}
END_TEST

/* ---- rejection ---- */

START_TEST(decode_rejects_empty_input)
{
    expect_rejected("", 0, "empty");
}
END_TEST

START_TEST(decode_rejects_truncated_frame_at_every_offset)
{
    struct jr__frame f;
    size_t i, cut, len;
    const char *p;
    for (i = 0; i < N_BUILDERS; i++) {
        jr__frame_init(&f);
        builders[i](&f);
        p = payload_of(&f, &len);
        for (cut = 0; cut < len; cut++) {
            /* where: builder * 1000 + bytes kept */
            expect_rejected_at(p, cut, "truncated frame",
                               (long)(i * 1000 + cut));
        }
        jr__frame_close(&f);
    }
}
END_TEST

START_TEST(decode_rejects_trailing_garbage)
{
    struct jr__frame f;
    size_t i;
    for (i = 0; i < N_BUILDERS; i++) {
        jr__frame_init(&f);
        builders[i](&f);
        /* One extra byte that is itself a complete value (fixint 0). */
        msgpack_pack_uint64(&f.pk, 0);
        jr__frame_end(&f);
        expect_frame_rejected(&f, "trailing value");
        jr__frame_close(&f);
    }
    /* Two whole frames' payloads back to back are not one value. */
    jr__frame_init(&f);
    build_info(&f);
    build_info(&f);
    {
        char buf[64];
        size_t one = f.start - 4;
        ck_assert_uint_le(2 * one, sizeof buf);
        memcpy(buf, f.sb.data + 4, one);
        memcpy(buf + one, f.sb.data + f.start + 4, one);
        expect_rejected(buf, 2 * one, "two values");
    }
    jr__frame_close(&f);
}
END_TEST

START_TEST(decode_rejects_non_array)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_uint64(&pk, JR__MSG_INFO);
    expect_rejected(sb.data, sb.size, "integer");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 5);
    expect_rejected(sb.data, sb.size, "map");
    msgpack_sbuffer_clear(&sb);
    jr__pack_cstr(&pk, "\x95\x05");
    expect_rejected(sb.data, sb.size, "string");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_nil(&pk);
    expect_rejected(sb.data, sb.size, "nil");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 0);
    expect_rejected(sb.data, sb.size, "empty array");
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(decode_rejects_unknown_type)
{
    struct jr__frame f;
    int types[] = {0, 10, 255, 256, 1 + (1 << 8), -1, -7, INT_MAX};
    size_t i;
    for (i = 0; i < sizeof types / sizeof types[0]; i++) {
        jr__frame_init(&f);
        jr__frame_begin(&f, types[i], 1);
        msgpack_pack_uint64(&f.pk, 1);
        jr__frame_end(&f);
        expect_rejected_at(f.sb.data + 4, f.sb.size - 4, "type", types[i]);
        jr__frame_close(&f);
    }
    /* The type must be an integer, not a string or a float. */
    jr__frame_init(&f);
    msgpack_sbuffer_write(&f.sb, "\0\0\0\0", 4);
    msgpack_pack_array(&f.pk, 2);
    jr__pack_cstr(&f.pk, "5");
    msgpack_pack_uint64(&f.pk, 1);
    expect_frame_rejected(&f, "string type");
    jr__frame_close(&f);
    jr__frame_init(&f);
    msgpack_sbuffer_write(&f.sb, "\0\0\0\0", 4);
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_double(&f.pk, 5.0);
    msgpack_pack_uint64(&f.pk, 1);
    expect_frame_rejected(&f, "float type");
    jr__frame_close(&f);
}
END_TEST

START_TEST(decode_rejects_wrong_field_count)
{
    /* Field counts after the type for types 1..9. */
    static const unsigned want[] = {1, 1, 1, 4, 1, 6, 4, 4, 4};
    struct jr__frame f;
    unsigned type, k, n;
    for (type = 1; type <= 9; type++) {
        unsigned counts[3];
        counts[0] = 0;
        counts[1] = want[type - 1] - 1;
        counts[2] = want[type - 1] + 1;
        for (k = 0; k < 3; k++) {
            if (k == 1 && counts[1] == 0) {
                continue;
            }
            jr__frame_init(&f);
            jr__frame_begin(&f, (int)type, counts[k]);
            for (n = 0; n < counts[k]; n++) {
                /* Plausible values so that only the count is wrong. */
                msgpack_pack_uint64(&f.pk, 1);
            }
            jr__frame_end(&f);
            expect_rejected_at(f.sb.data + 4, f.sb.size - 4, "field count",
                               (long)(type * 100 + counts[k]));
            jr__frame_close(&f);
        }
    }
}
END_TEST

START_TEST(decode_rejects_string_where_integer_expected)
{
    struct jr__frame f;
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_READ_INDEX, 1);
    jr__pack_cstr(&f.pk, "77");
    jr__frame_end(&f);
    expect_frame_rejected(&f, "read_index req_id string");
    jr__frame_close(&f);

    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_READ_INDEX_RESULT, 4);
    msgpack_pack_uint64(&f.pk, 1);
    jr__pack_cstr(&f.pk, "-3");
    jr__pack_cstr(&f.pk, "");
    msgpack_pack_uint64(&f.pk, 1);
    jr__frame_end(&f);
    expect_frame_rejected(&f, "status string");
    jr__frame_close(&f);

    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_INFO_RESULT, 7);
    msgpack_pack_uint64(&f.pk, 5);
    msgpack_pack_int64(&f.pk, 0);
    jr__pack_cstr(&f.pk, "");
    jr__pack_cstr(&f.pk, cluster);
    jr__pack_cstr(&f.pk, "3");
    jr__pack_cstr(&f.pk, "127.0.0.1:9003");
    msgpack_pack_uint64(&f.pk, 0); /* incarnation */
    jr__frame_end(&f);
    expect_frame_rejected(&f, "leader id string");
    jr__frame_close(&f);
}
END_TEST

START_TEST(decode_rejects_negative_where_unsigned_expected)
{
    struct jr__frame f;
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_INFO, 1);
    msgpack_pack_int64(&f.pk, -5);
    jr__frame_end(&f);
    expect_frame_rejected(&f, "negative req_id");
    jr__frame_close(&f);

    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_READ_INDEX_RESULT, 4);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_int64(&f.pk, 0);
    jr__pack_cstr(&f.pk, "");
    msgpack_pack_int64(&f.pk, -1);
    jr__frame_end(&f);
    expect_frame_rejected(&f, "negative index");
    jr__frame_close(&f);

    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN, 4);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_int64(&f.pk, -4);
    jr__pack_cstr(&f.pk, "127.0.0.1:9004");
    jr__pack_cstr(&f.pk, "node4");
    jr__frame_end(&f);
    expect_frame_rejected(&f, "negative id");
    jr__frame_close(&f);
}
END_TEST

START_TEST(decode_rejects_status_beyond_int64)
{
    struct jr__frame f;
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN_RESULT, 4);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_uint64(&f.pk, (uint64_t)INT64_MAX + 1);
    jr__pack_cstr(&f.pk, "");
    jr__pack_cstr(&f.pk, "");
    jr__frame_end(&f);
    expect_frame_rejected(&f, "status > INT64_MAX");
    jr__frame_close(&f);
}
END_TEST

START_TEST(decode_rejects_bin_where_string_expected)
{
    struct jr__frame f;
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN, 4);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_uint64(&f.pk, 4);
    jr__pack_bin(&f.pk, "127.0.0.1:9004", 14);
    jr__pack_cstr(&f.pk, "node4");
    jr__frame_end(&f);
    expect_frame_rejected(&f, "bin address");
    jr__frame_close(&f);

    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN_RESULT, 4);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_int64(&f.pk, 0);
    msgpack_pack_nil(&f.pk);
    jr__pack_cstr(&f.pk, "");
    jr__frame_end(&f);
    expect_frame_rejected(&f, "nil errmsg");
    jr__frame_close(&f);
}
END_TEST

START_TEST(decode_rejects_empty_batch)
{
    struct jr__frame f;
    int type;
    for (type = JR__MSG_FORWARD; type <= JR__MSG_APPLY_RESULT; type++) {
        jr__frame_init(&f);
        jr__frame_begin(&f, type, 1);
        msgpack_pack_array(&f.pk, 0);
        jr__frame_end(&f);
        expect_rejected_at(f.sb.data + 4, f.sb.size - 4, "empty batch", type);
        jr__frame_close(&f);
    }
}
END_TEST

START_TEST(decode_rejects_batch_that_is_not_an_array)
{
    struct jr__frame f;
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_FORWARD, 1);
    jr__pack_bin(&f.pk, "cmd", 3);
    jr__frame_end(&f);
    expect_frame_rejected(&f, "bin batch");
    jr__frame_close(&f);
}
END_TEST

START_TEST(decode_rejects_batch_item_of_wrong_shape)
{
    struct jr__frame f;

    /* A good item followed by a non-array item: the rejection must also
     * free the items already decoded. */
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_FORWARD, 1);
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_uint64(&f.pk, 1);
    jr__pack_bin(&f.pk, "a", 1);
    jr__pack_bin(&f.pk, "b", 1);
    jr__frame_end(&f);
    expect_frame_rejected(&f, "non-array item");
    jr__frame_close(&f);

    /* A FORWARD item shaped like an APPLY_RESULT item. */
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_FORWARD, 1);
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_array(&f.pk, 5);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_int64(&f.pk, 0);
    jr__pack_cstr(&f.pk, "");
    msgpack_pack_uint64(&f.pk, 1);
    jr__pack_bin(&f.pk, "a", 1);
    jr__frame_end(&f);
    expect_frame_rejected(&f, "forward item of 5");
    jr__frame_close(&f);

    /* An APPLY_RESULT item shaped like a FORWARD item. */
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_APPLY_RESULT, 1);
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_uint64(&f.pk, 1);
    jr__pack_bin(&f.pk, "a", 1);
    jr__frame_end(&f);
    expect_frame_rejected(&f, "apply_result item of 2");
    jr__frame_close(&f);
}
END_TEST

START_TEST(decode_rejects_batch_item_with_bad_fields)
{
    struct jr__frame f;

    /* FORWARD: the command must be bin, not nil or a string. */
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_FORWARD, 1);
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_uint64(&f.pk, 1);
    jr__pack_bin(&f.pk, "a", 1);
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_uint64(&f.pk, 2);
    msgpack_pack_nil(&f.pk);
    jr__frame_end(&f);
    expect_frame_rejected(&f, "nil command");
    jr__frame_close(&f);

    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_FORWARD, 1);
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_uint64(&f.pk, 1);
    jr__pack_cstr(&f.pk, "a");
    jr__frame_end(&f);
    expect_frame_rejected(&f, "string command");
    jr__frame_close(&f);

    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_FORWARD, 1);
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_int64(&f.pk, -1);
    jr__pack_bin(&f.pk, "a", 1);
    jr__frame_end(&f);
    expect_frame_rejected(&f, "negative item req_id");
    jr__frame_close(&f);

    /* APPLY_RESULT: result must be bin or nil, errmsg a string. */
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_APPLY_RESULT, 1);
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_array(&f.pk, 5);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_int64(&f.pk, 0);
    jr__pack_cstr(&f.pk, "");
    msgpack_pack_uint64(&f.pk, 1);
    jr__pack_cstr(&f.pk, "result");
    jr__frame_end(&f);
    expect_frame_rejected(&f, "string result");
    jr__frame_close(&f);

    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_APPLY_RESULT, 1);
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_array(&f.pk, 5);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_int64(&f.pk, 0);
    msgpack_pack_uint64(&f.pk, 0);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_nil(&f.pk);
    jr__frame_end(&f);
    expect_frame_rejected(&f, "integer errmsg");
    jr__frame_close(&f);
}
END_TEST

START_TEST(decode_rejects_join_with_id_0)
{
    struct jr__frame f;
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN, 4);
    msgpack_pack_uint64(&f.pk, 9);
    msgpack_pack_uint64(&f.pk, 0);
    jr__pack_cstr(&f.pk, "127.0.0.1:9004");
    jr__pack_cstr(&f.pk, "node4");
    jr__frame_end(&f);
    expect_frame_rejected(&f, "join id 0");
    jr__frame_close(&f);
}
END_TEST

START_TEST(decode_rejects_join_with_empty_address)
{
    struct jr__frame f;
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN, 4);
    msgpack_pack_uint64(&f.pk, 9);
    msgpack_pack_uint64(&f.pk, 4);
    jr__pack_cstr(&f.pk, "");
    jr__pack_cstr(&f.pk, "node4");
    jr__frame_end(&f);
    expect_frame_rejected(&f, "join empty address");
    jr__frame_close(&f);
}
END_TEST

START_TEST(decode_rejects_over_long_strings)
{
    struct jr__frame f;
    static char longs[JR__MAX_STR + 1];
    memset(longs, 'z', sizeof longs);

    /* address: 255 bytes at most */
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN, 4);
    msgpack_pack_uint64(&f.pk, 9);
    msgpack_pack_uint64(&f.pk, 4);
    jr__pack_str(&f.pk, longs, 256);
    jr__pack_cstr(&f.pk, "node4");
    jr__frame_end(&f);
    expect_frame_rejected(&f, "address of 256");
    jr__frame_close(&f);

    /* name: 63 bytes at most */
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN, 4);
    msgpack_pack_uint64(&f.pk, 9);
    msgpack_pack_uint64(&f.pk, 4);
    jr__pack_cstr(&f.pk, "127.0.0.1:9004");
    jr__pack_str(&f.pk, longs, 64);
    jr__frame_end(&f);
    expect_frame_rejected(&f, "name of 64");
    jr__frame_close(&f);

    /* cluster id: 32 bytes at most */
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_INFO_RESULT, 7);
    msgpack_pack_uint64(&f.pk, 5);
    msgpack_pack_int64(&f.pk, 0);
    jr__pack_cstr(&f.pk, "");
    jr__pack_str(&f.pk, longs, JR__CLUSTER_ID_LEN + 1);
    msgpack_pack_uint64(&f.pk, 3);
    jr__pack_cstr(&f.pk, "127.0.0.1:9003");
    msgpack_pack_uint64(&f.pk, 0); /* incarnation */
    jr__frame_end(&f);
    expect_frame_rejected(&f, "cluster id of 33");
    jr__frame_close(&f);

    /* error messages: JR__MAX_STR at most, at top level and in a batch */
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_JOIN_RESULT, 4);
    msgpack_pack_uint64(&f.pk, 9);
    msgpack_pack_int64(&f.pk, -1);
    jr__pack_str(&f.pk, longs, sizeof longs);
    jr__pack_cstr(&f.pk, "");
    jr__frame_end(&f);
    expect_frame_rejected(&f, "errmsg over JR__MAX_STR");
    jr__frame_close(&f);

    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_APPLY_RESULT, 1);
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_array(&f.pk, 5);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_int64(&f.pk, -1);
    jr__pack_str(&f.pk, longs, sizeof longs);
    msgpack_pack_uint64(&f.pk, 1);
    msgpack_pack_nil(&f.pk);
    jr__frame_end(&f);
    expect_frame_rejected(&f, "batch errmsg over JR__MAX_STR");
    jr__frame_close(&f);
}
END_TEST

START_TEST(decode_rejects_batch_over_max_items)
{
    struct jr__frame f;
    unsigned i;
    jr__frame_init(&f);
    jr__frame_begin(&f, JR__MSG_FORWARD, 1);
    msgpack_pack_array(&f.pk, JR__MAX_ITEMS + 1);
    for (i = 0; i < JR__MAX_ITEMS + 1; i++) {
        msgpack_pack_array(&f.pk, 2);
        msgpack_pack_uint64(&f.pk, i);
        jr__pack_bin(&f.pk, "a", 1);
    }
    jr__frame_end(&f);
    expect_frame_rejected(&f, "too many items");
    jr__frame_close(&f);
}
END_TEST

/* ---- entry envelope ---- */

START_TEST(entry_wrap_pads_to_multiple_of_8_and_unwraps_intact)
{
    unsigned char data[64];
    size_t len, i;
    for (i = 0; i < sizeof data; i++) {
        data[i] = (unsigned char)(0xff - i);
    }
    for (len = 0; len <= 64; len++) {
        size_t wrapped_len = 0, data_len = 12345;
        unsigned char *w =
            jr__entry_wrap(len > 0 ? data : NULL, len, &wrapped_len);
        ck_assert_ptr_nonnull(w);
        ck_assert_msg(wrapped_len % 8 == 0, "len %zu wrapped to %zu", len,
                      wrapped_len);
        ck_assert_msg(wrapped_len > len && wrapped_len <= len + 8,
                      "len %zu wrapped to %zu", len, wrapped_len);
        ck_assert_int_eq(jr__entry_unwrap(w, wrapped_len, &data_len, NULL), 0);
        ck_assert_uint_eq(data_len, len);
        if (len > 0) {
            ck_assert_mem_eq(w, data, len);
        }
        raft_free(w);
    }
}
END_TEST

START_TEST(entry_unwrap_rejects_length_not_multiple_of_8)
{
    unsigned char buf[24];
    size_t len, data_len;
    memset(buf, 0, sizeof buf);
    for (len = 1; len < sizeof buf; len++) {
        if (len % 8 == 0) {
            continue;
        }
        buf[len - 1] = 1;
        ck_assert_msg(
            jr__entry_unwrap(buf, len, &data_len, NULL) == JR_ECORRUPT,
            "length %zu accepted", len);
        buf[len - 1] = 0;
    }
}
END_TEST

START_TEST(entry_unwrap_rejects_zero_length)
{
    unsigned char buf[8] = {0, 0, 0, 0, 0, 0, 0, 8};
    size_t data_len;
    ck_assert_int_eq(jr__entry_unwrap(buf, 0, &data_len, NULL), JR_ECORRUPT);
}
END_TEST

START_TEST(entry_unwrap_rejects_bad_padding_byte)
{
    unsigned char buf[16];
    size_t data_len;
    unsigned pad;
    memset(buf, 0, sizeof buf);
    buf[15] = 0;
    ck_assert_int_eq(jr__entry_unwrap(buf, sizeof buf, &data_len, NULL),
                     JR_ECORRUPT);
    for (pad = 9; pad <= 255; pad++) {
        buf[15] = (unsigned char)pad;
        ck_assert_msg(
            jr__entry_unwrap(buf, sizeof buf, &data_len, NULL) == JR_ECORRUPT,
            "padding byte %u accepted", pad);
    }
    for (pad = 1; pad <= 8; pad++) {
        buf[15] = (unsigned char)pad;
        ck_assert_int_eq(jr__entry_unwrap(buf, sizeof buf, &data_len, NULL), 0);
        ck_assert_uint_eq(data_len, 16 - pad);
    }
}
END_TEST

Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *tc;

    tc = tcase_create("frame");
    tcase_add_test(tc, frame_prefix_is_big_endian_payload_size);
    tcase_add_test(tc, frames_appended_to_one_buffer_each_get_their_own_prefix);
    suite_add_tcase(s, tc);

    tc = tcase_create("round_trip");
    tcase_add_test(tc, forward_batch_round_trips_every_item);
    tcase_add_test(tc, forward_batch_of_many_items_round_trips);
    tcase_add_test(tc, apply_result_round_trips_bin_and_nil_results);
    tcase_add_test(tc, apply_result_keeps_extreme_status_values);
    tcase_add_test(tc, read_index_round_trips);
    tcase_add_test(tc, read_index_result_round_trips);
    tcase_add_test(tc, info_round_trips);
    tcase_add_test(tc, info_result_round_trips);
    tcase_add_test(tc, info_result_accepts_empty_cluster_id_and_address);
    tcase_add_test(tc, join_round_trips);
    tcase_add_test(tc, join_result_round_trips);
    tcase_add_test(tc, admin_round_trips);
    tcase_add_test(tc, strings_at_their_length_limit_are_accepted);
    suite_add_tcase(s, tc);

    tc = tcase_create("decode_rejects");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, decode_rejects_empty_input);
    tcase_add_test(tc, decode_rejects_truncated_frame_at_every_offset);
    tcase_add_test(tc, decode_rejects_trailing_garbage);
    tcase_add_test(tc, decode_rejects_non_array);
    tcase_add_test(tc, decode_rejects_unknown_type);
    tcase_add_test(tc, decode_rejects_wrong_field_count);
    tcase_add_test(tc, decode_rejects_string_where_integer_expected);
    tcase_add_test(tc, decode_rejects_negative_where_unsigned_expected);
    tcase_add_test(tc, decode_rejects_status_beyond_int64);
    tcase_add_test(tc, decode_rejects_bin_where_string_expected);
    tcase_add_test(tc, decode_rejects_empty_batch);
    tcase_add_test(tc, decode_rejects_batch_that_is_not_an_array);
    tcase_add_test(tc, decode_rejects_batch_item_of_wrong_shape);
    tcase_add_test(tc, decode_rejects_batch_item_with_bad_fields);
    tcase_add_test(tc, decode_rejects_join_with_id_0);
    tcase_add_test(tc, decode_rejects_admin_with_a_string_id);
    tcase_add_test(tc, decode_rejects_join_with_empty_address);
    tcase_add_test(tc, decode_rejects_over_long_strings);
    tcase_add_test(tc, decode_rejects_batch_over_max_items);
    suite_add_tcase(s, tc);

    tc = tcase_create("entry_envelope");
    tcase_add_test(tc, entry_wrap_pads_to_multiple_of_8_and_unwraps_intact);
    tcase_add_test(tc, entry_unwrap_rejects_length_not_multiple_of_8);
    tcase_add_test(tc, entry_unwrap_rejects_zero_length);
    tcase_add_test(tc, entry_unwrap_rejects_bad_padding_byte);
    suite_add_tcase(s, tc);
    return s;
}

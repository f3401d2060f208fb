/* test_raftmsg.c: raft messages survive a round trip through frames, and
 * malformed frames are refused without crashing or leaking. */
#include <raft.h>
#include <stdlib.h>
#include <string.h>

#include "jr_internal.h"
#include "raftmsg.h"
#include "suites.h"

/* Flatten an encoded message (frame + scatter/gather pieces) into one
 * buffer, as the receiver sees it; returns the payload after the length. */
static char *flatten(const uv_buf_t *bufs, unsigned n, size_t *len)
{
    size_t total = 0, off = 0, declared;
    unsigned i;
    char *out;
    const unsigned char *p;
    for (i = 0; i < n; i++) {
        total += bufs[i].len;
    }
    out = malloc(total);
    ck_assert_ptr_nonnull(out);
    for (i = 0; i < n; i++) {
        memcpy(out + off, bufs[i].base, bufs[i].len);
        off += bufs[i].len;
    }
    p = (const unsigned char *)out;
    declared = ((size_t)p[0] << 24) | ((size_t)p[1] << 16) |
               ((size_t)p[2] << 8) | p[3];
    ck_assert_uint_eq(declared, total - 4);
    *len = total - 4;
    return out;
}

static char *encode(const struct raft_message *m, size_t *len)
{
    struct jr__frame f;
    uv_buf_t *bufs;
    unsigned n;
    char *out;
    jr__frame_init(&f);
    ck_assert_int_eq(jr__raftmsg_encode(m, &f, &bufs, &n), 0);
    out = flatten(bufs, n, len);
    free(bufs);
    jr__frame_close(&f);
    return out;
}

static void decode_ok(const char *payload, size_t len, struct raft_message *m)
{
    char errmsg[JR_ERRMSG_SIZE];
    ck_assert(jr__raftmsg_is(payload, len));
    ck_assert_int_eq(jr__raftmsg_decode(payload, len, m, errmsg), 0);
}

START_TEST(append_entries_round_trip_keeps_every_field)
{
    struct raft_message m, out;
    struct raft_entry entries[4];
    char data[3][40];
    size_t len;
    char *frame;
    unsigned i;
    memset(&m, 0, sizeof m);
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.append_entries.term = 7;
    m.append_entries.prev_log_index = 41;
    m.append_entries.prev_log_term = 6;
    m.append_entries.leader_commit = 40;
    for (i = 0; i < 3; i++) {
        memset(data[i], 'a' + (int)i, sizeof data[i]);
        entries[i].term = 6 + (i > 1);
        entries[i].type = RAFT_COMMAND;
        entries[i].buf.base = data[i];
        entries[i].buf.len = 8 * (i + 1);
        entries[i].batch = NULL;
    }
    entries[3].term = 7; /* an empty payload between others */
    entries[3].type = RAFT_BARRIER;
    entries[3].buf.base = NULL;
    entries[3].buf.len = 0;
    entries[3].batch = NULL;
    m.append_entries.entries = entries;
    m.append_entries.n_entries = 4;
    frame = encode(&m, &len);
    decode_ok(frame + 4, len, &out);
    ck_assert_int_eq(out.type, RAFT_IO_APPEND_ENTRIES);
    ck_assert_uint_eq(out.append_entries.term, 7);
    ck_assert_uint_eq(out.append_entries.prev_log_index, 41);
    ck_assert_uint_eq(out.append_entries.prev_log_term, 6);
    ck_assert_uint_eq(out.append_entries.leader_commit, 40);
    ck_assert_uint_eq(out.append_entries.n_entries, 4);
    for (i = 0; i < 4; i++) {
        const struct raft_entry *e = &out.append_entries.entries[i];
        ck_assert_uint_eq(e->term, entries[i].term);
        ck_assert_uint_eq(e->type, entries[i].type);
        ck_assert_uint_eq(e->buf.len, entries[i].buf.len);
        if (e->buf.len > 0) {
            ck_assert_mem_eq(e->buf.base, entries[i].buf.base, e->buf.len);
        }
        /* One batch for all: raft frees it when the last entry goes. */
        ck_assert_ptr_eq(e->batch, out.append_entries.entries[0].batch);
    }
    jr__raftmsg_release(&out);
    free(frame);
}
END_TEST

START_TEST(heartbeat_has_no_entries)
{
    struct raft_message m, out;
    size_t len;
    char *frame;
    memset(&m, 0, sizeof m);
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.append_entries.term = 2;
    frame = encode(&m, &len);
    decode_ok(frame + 4, len, &out);
    ck_assert_uint_eq(out.append_entries.n_entries, 0);
    ck_assert_ptr_null(out.append_entries.entries);
    jr__raftmsg_release(&out);
    free(frame);
}
END_TEST

START_TEST(small_messages_round_trip)
{
    struct raft_message m, out;
    size_t len;
    char *frame;

    memset(&m, 0, sizeof m);
    m.type = RAFT_IO_REQUEST_VOTE;
    m.request_vote.term = 9;
    m.request_vote.candidate_id = 3;
    m.request_vote.last_log_index = 100;
    m.request_vote.last_log_term = 8;
    m.request_vote.disrupt_leader = true;
    m.request_vote.pre_vote = true;
    frame = encode(&m, &len);
    decode_ok(frame + 4, len, &out);
    ck_assert_uint_eq(out.request_vote.term, 9);
    ck_assert_uint_eq(out.request_vote.candidate_id, 3);
    ck_assert_uint_eq(out.request_vote.last_log_index, 100);
    ck_assert_uint_eq(out.request_vote.last_log_term, 8);
    ck_assert(out.request_vote.disrupt_leader);
    ck_assert(out.request_vote.pre_vote);
    free(frame);

    memset(&m, 0, sizeof m);
    m.type = RAFT_IO_REQUEST_VOTE_RESULT;
    m.request_vote_result.term = 9;
    m.request_vote_result.vote_granted = true;
    m.request_vote_result.pre_vote = raft_tribool_false;
    frame = encode(&m, &len);
    decode_ok(frame + 4, len, &out);
    ck_assert(out.request_vote_result.vote_granted);
    ck_assert_int_eq(out.request_vote_result.pre_vote, raft_tribool_false);
    free(frame);

    memset(&m, 0, sizeof m);
    m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
    m.append_entries_result.term = 4;
    m.append_entries_result.rejected = 12;
    m.append_entries_result.last_log_index = 11;
    frame = encode(&m, &len);
    decode_ok(frame + 4, len, &out);
    ck_assert_uint_eq(out.append_entries_result.rejected, 12);
    ck_assert_uint_eq(out.append_entries_result.last_log_index, 11);
    free(frame);

    memset(&m, 0, sizeof m);
    m.type = RAFT_IO_TIMEOUT_NOW;
    m.timeout_now.term = 5;
    m.timeout_now.last_log_index = 77;
    m.timeout_now.last_log_term = 4;
    frame = encode(&m, &len);
    decode_ok(frame + 4, len, &out);
    ck_assert_uint_eq(out.timeout_now.last_log_index, 77);
    free(frame);
}
END_TEST

START_TEST(install_snapshot_round_trip)
{
    struct raft_message m, out;
    char data[1000];
    size_t len;
    char *frame;
    memset(&m, 0, sizeof m);
    m.type = RAFT_IO_INSTALL_SNAPSHOT;
    m.install_snapshot.term = 3;
    m.install_snapshot.last_index = 500;
    m.install_snapshot.last_term = 2;
    m.install_snapshot.conf_index = 1;
    raft_configuration_init(&m.install_snapshot.conf);
    ck_assert_int_eq(raft_configuration_add(&m.install_snapshot.conf, 1,
                                            "127.0.0.1:1", RAFT_VOTER),
                     0);
    ck_assert_int_eq(raft_configuration_add(&m.install_snapshot.conf, 2,
                                            "127.0.0.1:2", RAFT_STANDBY),
                     0);
    memset(data, 'z', sizeof data);
    m.install_snapshot.data.base = data;
    m.install_snapshot.data.len = sizeof data;
    frame = encode(&m, &len);
    decode_ok(frame + 4, len, &out);
    ck_assert_uint_eq(out.install_snapshot.last_index, 500);
    ck_assert_uint_eq(out.install_snapshot.conf.n, 2);
    ck_assert_str_eq(out.install_snapshot.conf.servers[1].address,
                     "127.0.0.1:2");
    ck_assert_int_eq(out.install_snapshot.conf.servers[1].role, RAFT_STANDBY);
    ck_assert_uint_eq(out.install_snapshot.data.len, sizeof data);
    ck_assert_mem_eq(out.install_snapshot.data.base, data, sizeof data);
    jr__raftmsg_release(&out);
    raft_configuration_close(&m.install_snapshot.conf);
    free(frame);
}
END_TEST

START_TEST(truncated_frames_are_refused_at_every_offset)
{
    struct raft_message m, out;
    struct raft_entry e;
    char data[16] = "0123456789abcdef";
    char errmsg[JR_ERRMSG_SIZE];
    size_t len, cut;
    char *frame;
    memset(&m, 0, sizeof m);
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.append_entries.term = 1;
    e.term = 1;
    e.type = RAFT_COMMAND;
    e.buf.base = data;
    e.buf.len = sizeof data;
    e.batch = NULL;
    m.append_entries.entries = &e;
    m.append_entries.n_entries = 1;
    frame = encode(&m, &len);
    for (cut = 0; cut < len; cut++) {
        /* An exact-size copy, so that any over-read is caught by valgrind
         * or ASan. */
        char *copy = malloc(cut > 0 ? cut : 1);
        memcpy(copy, frame + 4, cut);
        errmsg[0] = '\0';
        ck_assert_int_eq(jr__raftmsg_decode(copy, cut, &out, errmsg),
                         JR_EPROTO);
        ck_assert_str_ne(errmsg, "");
        free(copy);
    }
    free(frame);
}
END_TEST

START_TEST(malformed_fields_are_refused)
{
    char errmsg[JR_ERRMSG_SIZE];
    struct raft_message out;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    /* A RequestVote whose term is a string. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_int(&pk, JR__MSG_RAFT_BASE + RAFT_IO_REQUEST_VOTE);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "x", 1);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_false(&pk);
    msgpack_pack_false(&pk);
    ck_assert_int_eq(jr__raftmsg_decode(sb.data, sb.size, &out, errmsg),
                     JR_EPROTO);
    msgpack_sbuffer_clear(&sb);
    /* An entry of an unknown type. */
    msgpack_pack_array(&pk, 6);
    msgpack_pack_int(&pk, JR__MSG_RAFT_BASE + RAFT_IO_APPEND_ENTRIES);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint8(&pk, 9);
    msgpack_pack_bin(&pk, 0);
    ck_assert_int_eq(jr__raftmsg_decode(sb.data, sb.size, &out, errmsg),
                     JR_EPROTO);
    msgpack_sbuffer_clear(&sb);
    /* A snapshot configuration with server id 0. */
    msgpack_pack_array(&pk, 7);
    msgpack_pack_int(&pk, JR__MSG_RAFT_BASE + RAFT_IO_INSTALL_SNAPSHOT);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "a", 1);
    msgpack_pack_int(&pk, RAFT_VOTER);
    msgpack_pack_bin(&pk, 0);
    ck_assert_int_eq(jr__raftmsg_decode(sb.data, sb.size, &out, errmsg),
                     JR_EPROTO);
    ck_assert_ptr_nonnull(strstr(errmsg, "configuration"));
    msgpack_sbuffer_destroy(&sb);
    /* Declared counts and lengths beyond the frame are refused before
     * msgpack-c allocates for them (found by fuzz_frame). */
    {
        static const char huge_array[] = {(char)0x97, 0x13,       (char)0xdd,
                                          (char)0xff, (char)0xff, (char)0xff,
                                          (char)0xff};
        static const char huge_bin[] = {(char)0x92, 0x05,       (char)0xc6,
                                        0x7f,       (char)0xff, (char)0xff,
                                        (char)0xff};
        struct jr__msg rpc;
        ck_assert(!jr__msgpack_bounded(huge_array, sizeof huge_array));
        ck_assert_int_eq(
            jr__raftmsg_decode(huge_array, sizeof huge_array, &out, errmsg),
            JR_EPROTO);
        ck_assert_int_eq(
            jr__msg_decode(huge_bin, sizeof huge_bin, &rpc, errmsg), JR_EPROTO);
    }
    /* Library RPC types are not raft messages. */
    {
        char rpc[2] = {(char)0x92, 5};
        ck_assert(!jr__raftmsg_is(rpc, sizeof rpc));
    }
}
END_TEST

START_TEST(owned_frames_are_kept_without_a_copy)
{
    struct raft_message m, out;
    struct raft_entry e[2];
    char data[2][16], snap[64];
    size_t len;
    char *frame, *owned;
    bool adopted;
    char errmsg[JR_ERRMSG_SIZE];

    /* AppendEntries: the entries point into the frame, which is their
     * batch. */
    memset(&m, 0, sizeof m);
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.append_entries.term = 2;
    memset(data[0], 'x', sizeof data[0]);
    memset(data[1], 'y', sizeof data[1]);
    for (int i = 0; i < 2; i++) {
        e[i].term = 2;
        e[i].type = RAFT_COMMAND;
        e[i].buf.base = data[i];
        e[i].buf.len = sizeof data[i];
        e[i].batch = NULL;
    }
    m.append_entries.entries = e;
    m.append_entries.n_entries = 2;
    frame = encode(&m, &len);
    owned = raft_malloc(len);
    memcpy(owned, frame + 4, len);
    adopted = false;
    ck_assert_int_eq(
        jr__raftmsg_decode_owned(owned, len, owned, &out, &adopted, errmsg), 0);
    ck_assert(adopted);
    ck_assert_ptr_eq(out.append_entries.entries[0].batch, owned);
    ck_assert((char *)out.append_entries.entries[1].buf.base > owned &&
              (char *)out.append_entries.entries[1].buf.base < owned + len);
    ck_assert_mem_eq(out.append_entries.entries[1].buf.base, data[1], 16);
    jr__raftmsg_release(&out); /* frees owned */
    free(frame);

    /* InstallSnapshot: the state slides to the front of the frame. */
    memset(&m, 0, sizeof m);
    m.type = RAFT_IO_INSTALL_SNAPSHOT;
    m.install_snapshot.term = 2;
    raft_configuration_init(&m.install_snapshot.conf);
    ck_assert_int_eq(raft_configuration_add(&m.install_snapshot.conf, 1,
                                            "127.0.0.1:1", RAFT_VOTER),
                     0);
    memset(snap, 's', sizeof snap);
    m.install_snapshot.data.base = snap;
    m.install_snapshot.data.len = sizeof snap;
    frame = encode(&m, &len);
    owned = raft_malloc(len);
    memcpy(owned, frame + 4, len);
    adopted = false;
    ck_assert_int_eq(
        jr__raftmsg_decode_owned(owned, len, owned, &out, &adopted, errmsg), 0);
    ck_assert(adopted);
    ck_assert_ptr_eq(out.install_snapshot.data.base, owned);
    ck_assert_mem_eq(out.install_snapshot.data.base, snap, sizeof snap);
    ck_assert_str_eq(out.install_snapshot.conf.servers[0].address,
                     "127.0.0.1:1");
    jr__raftmsg_release(&out);
    raft_configuration_close(&m.install_snapshot.conf);
    free(frame);

    /* Anything else leaves the buffer to the caller. */
    memset(&m, 0, sizeof m);
    m.type = RAFT_IO_TIMEOUT_NOW;
    frame = encode(&m, &len);
    owned = raft_malloc(len);
    memcpy(owned, frame + 4, len);
    adopted = false;
    ck_assert_int_eq(
        jr__raftmsg_decode_owned(owned, len, owned, &out, &adopted, errmsg), 0);
    ck_assert(!adopted);
    raft_free(owned);
    free(frame);
}
END_TEST

Suite *raftmsg_suite(void)
{
    Suite *s = suite_create("raftmsg");
    TCase *tc = tcase_create("round_trip");
    tcase_add_test(tc, append_entries_round_trip_keeps_every_field);
    tcase_add_test(tc, heartbeat_has_no_entries);
    tcase_add_test(tc, small_messages_round_trip);
    tcase_add_test(tc, install_snapshot_round_trip);
    tcase_add_test(tc, owned_frames_are_kept_without_a_copy);
    suite_add_tcase(s, tc);
    tc = tcase_create("malformed");
    tcase_add_test(tc, truncated_frames_are_refused_at_every_offset);
    tcase_add_test(tc, malformed_fields_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

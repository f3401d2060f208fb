/* test_backup.c: jr_node_backup, jr_backup_verify and jr_backup_restore on
 * real single-voter nodes: a round trip through a restored directory,
 * damaged and foreign archives refused (truncated at every length step,
 * bits flipped across the body, another format version), and restore's
 * refusals leaving the target as it was. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "jacoraft.h"
#include "suites.h"
#include "testutil.h"

#define WAIT_MS 5000

/* ---- a state machine holding the bytes of every command, in order ---- */

struct bytes {
    uv_mutex_t mutex;
    char data[4096];
    size_t len;
};

static int bytes_apply(void *d,
                       uint64_t index,
                       const void *buf,
                       size_t len,
                       void **result,
                       size_t *result_len)
{
    struct bytes *b = d;
    (void)index;
    (void)result;
    (void)result_len;
    uv_mutex_lock(&b->mutex);
    if (b->len + len <= sizeof b->data) {
        memcpy(b->data + b->len, buf, len);
        b->len += len;
    }
    uv_mutex_unlock(&b->mutex);
    return 0;
}

static int bytes_snapshot(void *d, struct jr_snapshot_writer *w)
{
    struct bytes *b = d;
    int rv;
    uv_mutex_lock(&b->mutex);
    rv = jr_snapshot_write(w, b->data, b->len);
    uv_mutex_unlock(&b->mutex);
    return rv;
}

static int bytes_restore(void *d, struct jr_snapshot_reader *r)
{
    struct bytes *b = d;
    size_t n = jr_snapshot_remaining(r);
    if (n > sizeof b->data) {
        return 1;
    }
    uv_mutex_lock(&b->mutex);
    b->len = jr_snapshot_read(r, b->data, n);
    uv_mutex_unlock(&b->mutex);
    return 0;
}

static void discard_log(void *data, int level, const char *message)
{
    (void)data;
    (void)level;
    (void)message;
}

/* ---- fixture: a work directory and up to one node ---- */

static struct {
    char dir[64];
    char archive[128];
    struct bytes state;
    struct jr_fsm fsm;
    struct jr_node *node;
} F;

static void setup(void)
{
    memset(&F, 0, sizeof F);
    snprintf(F.dir, sizeof F.dir, "/tmp/jr-backup-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(F.dir));
    snprintf(F.archive, sizeof F.archive, "%s/b.tar.gz", F.dir);
    ck_assert_int_eq(uv_mutex_init(&F.state.mutex), 0);
    F.fsm.data = &F.state;
    F.fsm.apply = bytes_apply;
    F.fsm.snapshot = bytes_snapshot;
    F.fsm.restore = bytes_restore;
}

static void teardown(void)
{
    if (F.node != NULL) {
        jr_node_close(F.node);
        F.node = NULL;
    }
    uv_mutex_destroy(&F.state.mutex);
    tu_rm_rf(F.dir);
}

static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", F.dir, name);
}

/* Open (and with bootstrap, bootstrap) node id on data_dir at address. */
static void open_node(uint64_t id,
                      const char *data_dir,
                      const char *address,
                      bool bootstrap)
{
    struct jr_config cfg;
    struct jr_error err;
    int rv;
    jr_config_init(&cfg);
    cfg.id = id;
    cfg.address = address;
    cfg.data_dir = data_dir;
    cfg.election_timeout_ms = 200;
    cfg.heartbeat_timeout_ms = 20;
    cfg.log_cb = discard_log;
    cfg.fsm = &F.fsm;
    rv = jr_node_open(&cfg, &F.node, &err);
    ck_assert_msg(rv == 0, "open: %d %s", rv, err.message);
    if (bootstrap) {
        struct jr_member self = {id, address};
        rv = jr_node_bootstrap(F.node, &self, 1, &err);
        ck_assert_msg(rv == 0, "bootstrap: %d %s", rv, err.message);
    }
    rv = jr_node_start(F.node, &err);
    ck_assert_msg(rv == 0, "start: %d %s", rv, err.message);
}

static void write_cmd(const char *s)
{
    struct jr_error err;
    int rv = jr_apply_sync(F.node, s, strlen(s), 0, NULL, NULL, &err);
    ck_assert_msg(rv == 0, "write: %d %s", rv, err.message);
}

/* A node holding "abc" + "def", backed up into F.archive. */
static void make_backup(struct jr_backup_info *info, char *cluster_id)
{
    char data[128], address[32];
    struct jr_error err;
    int rv;
    path_in(data, sizeof data, "src");
    snprintf(address, sizeof address, "127.0.0.1:%u", tu_free_port());
    open_node(1, data, address, true);
    tu_wait_leader(F.node, WAIT_MS);
    write_cmd("abc");
    write_cmd("def");
    rv = jr_node_backup(F.node, F.archive, 0, NULL, NULL, info, &err);
    ck_assert_msg(rv == 0, "backup: %d %s", rv, err.message);
    if (cluster_id != NULL) {
        strcpy(cluster_id, jr_node_cluster_id(F.node));
    }
    jr_node_close(F.node);
    F.node = NULL;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void copy_prefix(const char *from, const char *to, long len)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[4096];
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    while (len > 0) {
        size_t k = fread(buf, 1,
                         len < (long)sizeof buf ? (size_t)len : sizeof buf, in);
        ck_assert_uint_gt(k, 0);
        ck_assert_uint_eq(fwrite(buf, 1, k, out), k);
        len -= (long)k;
    }
    fclose(in);
    fclose(out);
}

static bool dir_is_empty_or_missing(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "[ -z \"$(ls -A '%s' 2>/dev/null)\" ]", dir);
    return system(cmd) == 0;
}

/* ---- tests ---- */

START_TEST(backup_round_trip_through_a_restored_directory)
{
    struct jr_backup_info info, checked;
    struct jr_restore_opts o;
    struct jr_error err;
    char cluster_id[64], data[128], address[32], id_file[160], text[512];
    FILE *f;
    size_t n;
    int rv;

    make_backup(&info, cluster_id);
    ck_assert_int_eq(access(F.archive, F_OK), 0);
    snprintf(text, sizeof text, "%s.tmp", F.archive);
    ck_assert_int_ne(access(text, F_OK), 0);
    ck_assert_uint_eq(info.format, JR_BACKUP_FORMAT);
    ck_assert_str_eq(info.cluster_id, cluster_id);
    ck_assert_uint_ge(info.index, 3); /* bootstrap config, abc, def */
    ck_assert_uint_eq(info.n_members, 1);
    ck_assert_uint_eq(strlen(info.state_sha256), 64);

    ck_assert_int_eq(jr_backup_verify(F.archive, &checked, &err), 0);
    ck_assert_uint_eq(checked.index, info.index);
    ck_assert_str_eq(checked.state_sha256, info.state_sha256);

    /* Restore as another node, then run it. */
    path_in(data, sizeof data, "restored");
    snprintf(address, sizeof address, "127.0.0.1:%u", tu_free_port());
    memset(&o, 0, sizeof o);
    o.data_dir = data;
    o.node_id = 7;
    o.name = "seven";
    o.address = address;
    rv = jr_backup_restore(F.archive, &o, NULL, &err);
    ck_assert_msg(rv == 0, "restore: %d %s", rv, err.message);
    snprintf(id_file, sizeof id_file, "%s/jacoraft.id", data);
    f = fopen(id_file, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    ck_assert_ptr_nonnull(strstr(text, "incarnation 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "name seven\n"));
    ck_assert_ptr_nonnull(strstr(text, cluster_id));

    F.state.len = 0;
    open_node(7, data, address, false);
    tu_wait_leader(F.node, WAIT_MS);
    uv_mutex_lock(&F.state.mutex);
    ck_assert_uint_eq(F.state.len, 6);
    ck_assert_int_eq(memcmp(F.state.data, "abcdef", 6), 0);
    uv_mutex_unlock(&F.state.mutex);
    ck_assert_str_eq(jr_node_cluster_id(F.node), cluster_id);
    write_cmd("g");
    uv_mutex_lock(&F.state.mutex);
    ck_assert_uint_eq(F.state.len, 7);
    uv_mutex_unlock(&F.state.mutex);
}
END_TEST

START_TEST(verify_refuses_every_truncation)
{
    struct jr_backup_info info;
    struct jr_error err;
    char cut[128];
    long size, len;
    make_backup(&info, NULL);
    size = file_size(F.archive);
    ck_assert_int_gt(size, 100);
    path_in(cut, sizeof cut, "cut.tar.gz");
    for (len = 0; len < size; len += 37) {
        int rv;
        copy_prefix(F.archive, cut, len);
        rv = jr_backup_verify(cut, NULL, &err);
        ck_assert_msg(rv == JR_ECORRUPT, "cut at %ld of %ld: %d %s", len, size,
                      rv, err.message);
    }
}
END_TEST

START_TEST(verify_refuses_flipped_bits)
{
    struct jr_backup_info info;
    struct jr_error err;
    char flipped[128];
    long size, off;
    unsigned detected = 0, tried = 0;
    make_backup(&info, NULL);
    size = file_size(F.archive);
    path_in(flipped, sizeof flipped, "flipped.tar.gz");
    /* From the end of the gzip header (10 bytes) to the end of its
     * trailer: the deflate stream, its CRC-32 and length. */
    for (off = 10; off < size; off += 3) {
        int fd, rv;
        unsigned char c;
        copy_prefix(F.archive, flipped, size);
        fd = open(flipped, O_RDWR);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pread(fd, &c, 1, off), 1);
        c ^= 0x10;
        ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
        close(fd);
        rv = jr_backup_verify(flipped, NULL, &err);
        tried++;
        if (rv == 0) {
            /* Some bits of a deflate stream change nothing it decodes to
             * (an unused code length, padding bits): the archive's
             * content is then intact, and accepting it is right. */
            char cmd[1024];
            snprintf(cmd, sizeof cmd,
                     "zcat %s >%s/a.out && zcat %s >%s/f.out && cmp -s "
                     "%s/a.out %s/f.out",
                     F.archive, F.dir, flipped, F.dir, F.dir, F.dir);
            ck_assert_msg(system(cmd) == 0,
                          "flip at %ld of %ld changed the content and was "
                          "not detected",
                          off, size);
        } else {
            ck_assert_int_eq(rv, JR_ECORRUPT);
            detected++;
        }
    }
    /* Nearly every flip is seen. */
    ck_assert_uint_ge(detected * 10, tried * 9);
}
END_TEST

START_TEST(verify_refuses_foreign_and_other_versions)
{
    struct jr_backup_info info;
    struct jr_error err;
    char path[128], cmd[1024];
    FILE *f;
    make_backup(&info, NULL);

    /* Not an archive at all. */
    path_in(path, sizeof path, "random.bin");
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("this is not a backup, just some text\n", f);
    fclose(f);
    ck_assert_int_eq(jr_backup_verify(path, NULL, &err), JR_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err.message, "not a jacoraft backup"));

    /* A tar.gz of something else. */
    snprintf(cmd, sizeof cmd,
             "cd %s && mkdir -p other && echo x >other/f && tar czf "
             "other.tar.gz other",
             F.dir);
    ck_assert_int_eq(system(cmd), 0);
    path_in(path, sizeof path, "other.tar.gz");
    ck_assert_int_eq(jr_backup_verify(path, NULL, &err), JR_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err.message, "not a jacoraft backup"));

    /* The format changed without the checksums: damage, not a version. */
    snprintf(cmd, sizeof cmd,
             "cd %s && mkdir v2 && tar xzf b.tar.gz -C v2 && sed -i "
             "'s/\"format\": 1/\"format\": 2/' v2/jaco-backup/backup.json && "
             "tar czf v2.tar.gz -C v2 jaco-backup/backup.json "
             "jaco-backup/state jaco-backup/SHA256SUMS",
             F.dir);
    ck_assert_int_eq(system(cmd), 0);
    path_in(path, sizeof path, "v2.tar.gz");
    ck_assert_int_eq(jr_backup_verify(path, NULL, &err), JR_ECORRUPT);
    /* A whole format-2 archive, checksums included: another version. */
    snprintf(cmd, sizeof cmd,
             "cd %s/v2/jaco-backup && sha256sum backup.json state "
             ">SHA256SUMS && cd ../.. && tar czf v2.tar.gz -C v2 "
             "jaco-backup/backup.json jaco-backup/state "
             "jaco-backup/SHA256SUMS",
             F.dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(jr_backup_verify(path, NULL, &err), JR_EVERSION);
    ck_assert_ptr_nonnull(strstr(err.message, "format 2"));

    path_in(path, sizeof path, "missing.tar.gz");
    ck_assert_int_eq(jr_backup_verify(path, NULL, &err), JR_ENOTFOUND);
    ck_assert_int_eq(jr_backup_verify(F.dir, NULL, &err), JR_ECORRUPT);
}
END_TEST

START_TEST(restore_refusals_leave_the_target_untouched)
{
    struct jr_backup_info info;
    struct jr_restore_opts o;
    struct jr_error err;
    char target[128], keep[160], cut[128], empty[128], aside[256];
    FILE *f;
    make_backup(&info, NULL);
    path_in(target, sizeof target, "target");
    ck_assert_int_eq(mkdir(target, 0700), 0);
    snprintf(keep, sizeof keep, "%s/precious", target);
    f = fopen(keep, "w");
    ck_assert_ptr_nonnull(f);
    fputs("keep", f);
    fclose(f);
    memset(&o, 0, sizeof o);
    o.node_id = 3;
    o.address = "127.0.0.1:1";

    /* A damaged archive: refused, with or without --force. */
    path_in(cut, sizeof cut, "cut.tar.gz");
    copy_prefix(F.archive, cut, file_size(F.archive) / 2);
    path_in(empty, sizeof empty, "empty");
    o.data_dir = empty;
    ck_assert_int_eq(jr_backup_restore(cut, &o, NULL, &err), JR_ECORRUPT);
    ck_assert(dir_is_empty_or_missing(empty));
    o.data_dir = target;
    o.flags = JR_RESTORE_FORCE;
    ck_assert_int_eq(jr_backup_restore(cut, &o, NULL, &err), JR_ECORRUPT);
    ck_assert_int_eq(access(keep, F_OK), 0);

    /* A non-empty directory without --force; a dry run changes nothing. */
    o.flags = 0;
    ck_assert_int_eq(jr_backup_restore(F.archive, &o, NULL, &err),
                     JR_ENOTEMPTY);
    o.flags = JR_RESTORE_FORCE | JR_RESTORE_DRY_RUN;
    ck_assert_int_eq(jr_backup_restore(F.archive, &o, NULL, &err), 0);
    snprintf(aside, sizeof aside, "%s/jacoraft.id", target);
    ck_assert_int_ne(access(aside, F_OK), 0);
    ck_assert_int_eq(access(keep, F_OK), 0);

    /* Bad options. */
    o.flags = 0;
    o.data_dir = empty;
    o.address = "foo";
    ck_assert_int_eq(jr_backup_restore(F.archive, &o, NULL, &err), JR_EINVAL);
    o.address = "127.0.0.1:1";
    o.node_id = 0;
    ck_assert_int_eq(jr_backup_restore(F.archive, &o, NULL, &err), JR_EINVAL);

    /* --force moves the old contents aside. */
    o.node_id = 3;
    o.data_dir = target;
    o.flags = JR_RESTORE_FORCE;
    ck_assert_int_eq(jr_backup_restore(F.archive, &o, NULL, &err), 0);
    ck_assert_int_ne(access(keep, F_OK), 0);
    ck_assert_int_eq(access(aside, F_OK), 0);
    snprintf(aside, sizeof aside,
             "[ -f \"$(ls -d %s/before-restore-*)/precious\" ]", target);
    ck_assert_int_eq(system(aside), 0);
}
END_TEST

START_TEST(restore_refuses_a_running_node_and_sentinel_blocks_start)
{
    struct jr_backup_info info;
    struct jr_restore_opts o;
    struct jr_error err;
    struct jr_config cfg;
    struct jr_node *node = NULL;
    char data[128], address[32], sentinel[160];
    FILE *f;
    make_backup(&info, NULL);

    /* A node running on the directory: locked, also for a dry run. */
    path_in(data, sizeof data, "live");
    snprintf(address, sizeof address, "127.0.0.1:%u", tu_free_port());
    open_node(5, data, address, true);
    memset(&o, 0, sizeof o);
    o.data_dir = data;
    o.node_id = 5;
    o.address = address;
    o.flags = JR_RESTORE_FORCE | JR_RESTORE_DRY_RUN;
    ck_assert_int_eq(jr_backup_restore(F.archive, &o, NULL, &err), JR_ELOCKED);
    o.flags = JR_RESTORE_FORCE;
    ck_assert_int_eq(jr_backup_restore(F.archive, &o, NULL, &err), JR_ELOCKED);
    jr_node_close(F.node);
    F.node = NULL;

    /* A restore that did not finish: the node refuses to open. */
    ck_assert_int_eq(jr_backup_restore(F.archive, &o, NULL, &err), 0);
    snprintf(sentinel, sizeof sentinel, "%s/RESTORING", data);
    f = fopen(sentinel, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    jr_config_init(&cfg);
    cfg.id = 5;
    cfg.address = address;
    cfg.data_dir = data;
    cfg.log_cb = discard_log;
    cfg.fsm = &F.fsm;
    ck_assert_int_eq(jr_node_open(&cfg, &node, &err), JR_ESTATE);
    ck_assert_ptr_nonnull(strstr(err.message, "restore"));
}
END_TEST

START_TEST(backup_of_a_node_that_is_no_member)
{
    struct jr_config cfg;
    struct jr_error err;
    char data[128], address[32], out[160];
    int rv;
    path_in(data, sizeof data, "lonely");
    path_in(out, sizeof out, "none.tar.gz");
    snprintf(address, sizeof address, "127.0.0.1:%u", tu_free_port());
    jr_config_init(&cfg);
    cfg.id = 9;
    cfg.address = address;
    cfg.data_dir = data;
    cfg.election_timeout_ms = 200;
    cfg.heartbeat_timeout_ms = 20;
    cfg.apply_timeout_ms = 500;
    cfg.log_cb = discard_log;
    cfg.fsm = &F.fsm;
    ck_assert_int_eq(jr_node_open(&cfg, &F.node, &err), 0);
    ck_assert_int_eq(jr_node_start(F.node, &err), 0);
    rv = jr_node_backup(F.node, out, JR_BACKUP_LOCAL, NULL, NULL, NULL, &err);
    ck_assert_int_eq(rv, JR_ESTATE);
    rv = jr_node_backup(F.node, out, 0, NULL, NULL, NULL, &err);
    ck_assert_int_ne(rv, 0);
    ck_assert_int_ne(access(out, F_OK), 0);
}
END_TEST

Suite *backup_suite(void)
{
    Suite *s = suite_create("backup");
    TCase *tc = tcase_create("backup");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, backup_round_trip_through_a_restored_directory);
    tcase_add_test(tc, verify_refuses_every_truncation);
    tcase_add_test(tc, verify_refuses_flipped_bits);
    tcase_add_test(tc, verify_refuses_foreign_and_other_versions);
    tcase_add_test(tc, restore_refusals_leave_the_target_untouched);
    tcase_add_test(tc,
                   restore_refuses_a_running_node_and_sentinel_blocks_start);
    tcase_add_test(tc, backup_of_a_node_that_is_no_member);
    suite_add_tcase(s, tc);
    return s;
}

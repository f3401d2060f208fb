/* jaco_backup.c: jaco backup, jaco backup verify and jaco restore
 * (jaco-backup(8)).
 *
 * A backup is written by jacod (jr_node_backup) and copied here in chunks;
 * the copy is verified before it gets its final name, so a file under that
 * name is always a whole, checked archive. A restore works offline on a
 * stopped host's data directory, with defaults from jacod's config. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jacoraft.h>

#include "config.h"
#include "jaco.h"
#include "mp.h"
#include "nodeid.h"
#include "proto.h"

static const char backup_usage[] =
    "usage: jaco backup --output FILE.tar.gz [--local] [-o json]\n"
    "       jaco backup verify FILE [-o json]\n"
    "  --output FILE  where to write the archive (a tar.gz; written to\n"
    "                 FILE.tmp, verified, then renamed)\n"
    "  --local        this node's own state, without a read barrier: works\n"
    "                 without a quorum, but may miss the newest writes\n"
    "See jaco-backup(8).\n";

static const char restore_usage[] =
    "usage: jaco restore --input FILE --name NAME [--data-dir DIR]\n"
    "                    [--peer-address HOST:PORT] [--config PATH]\n"
    "                    [--secret-file FILE] [--force] [--dry-run] "
    "[-o json]\n"
    "  --input FILE         the backup archive (verified first)\n"
    "  --name NAME          this host's node name, as jacod is configured\n"
    "  --data-dir DIR       default: data-dir of jacod's config\n"
    "  --peer-address H:P   default: peer-address of jacod's config\n"
    "  --config PATH        jacod's config (default /etc/jaco/jacod.conf)\n"
    "  --secret-file FILE   install this cluster secret (default: the\n"
    "                       config's secret-file, else a new one)\n"
    "  --force              the data directory is not empty: move its\n"
    "                       contents aside (DIR/before-restore-TIME/)\n"
    "  --dry-run            verify and check, change nothing\n"
    "Run it with jacod stopped. See jaco-backup(8).\n";

static bool show_progress;

static void progress_cb(void *data, uint64_t done, uint64_t total)
{
    const char *what = data;
    if (!show_progress || total == 0) {
        return;
    }
    fprintf(stderr, "\rjaco: %s %.1f of %.1f MiB (%u%%)", what,
            (double)done / 1048576.0, (double)total / 1048576.0,
            (unsigned)(done * 100 / total));
    if (done >= total) {
        fputc('\n', stderr);
    }
}

static void print_error(int rv, const char *message, const char *hint)
{
    if (jaco_json_output) {
        printf("{\"code\":\"%s\",\"message\":", jr_err_slug(rv));
        jaco_json_string(stdout, message, strlen(message));
        printf("}\n");
        return;
    }
    fprintf(stderr, "Error{code: %s, message: ", jr_err_slug(rv));
    jaco_json_string(stderr, message, strlen(message));
    fprintf(stderr, "}\n");
    if (hint != NULL) {
        fprintf(stderr, "hint: %s\n", hint);
    }
}

static void utc(char *out, size_t size, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    (void)gmtime_r(&tt, &tm);
    (void)strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void print_info_json(const char *file, const struct jr_backup_info *b)
{
    unsigned i;
    printf("{\"file\":");
    jaco_json_string(stdout, file, strlen(file));
    printf(",\"format\":%" PRIu32 ",\"software\":", b->format);
    jaco_json_string(stdout, b->software, strlen(b->software));
    printf(",\"cluster_id\":\"%s\",\"incarnation\":%" PRIu32
           ",\"index\":%" PRIu64 ",\"term\":%" PRIu64 ",\"created\":%" PRId64
           ",\"state_size\":%" PRIu64 ",\"state_sha256\":\"%s\",\"source\":",
           b->cluster_id, b->incarnation, b->index, b->term, b->created,
           b->state_size, b->state_sha256);
    jaco_json_string(stdout, b->source_name, strlen(b->source_name));
    printf(",\"members\":[");
    for (i = 0; i < b->n_members; i++) {
        const struct jr_backup_member *m = &b->members[i];
        printf("%s{\"id\":%" PRIu64 ",\"name\":", i > 0 ? "," : "", m->id);
        jaco_json_string(stdout, m->name, strlen(m->name));
        printf(",\"address\":");
        jaco_json_string(stdout, m->address, strlen(m->address));
        printf(",\"role\":\"%s\"}", jr_role_name(m->role));
    }
    printf("]}\n");
}

static void print_info_table(const struct jr_backup_info *b)
{
    char when[64];
    unsigned i;
    utc(when, sizeof when, b->created);
    printf("  Cluster ID:   %s (incarnation %" PRIu32 ")\n", b->cluster_id,
           b->incarnation);
    printf("  Index:        %" PRIu64 " (term %" PRIu64 ")\n", b->index,
           b->term);
    printf("  Taken:        %s by %s with %s (format %" PRIu32 ")\n", when,
           b->source_name[0] != '\0' ? b->source_name : "?", b->software,
           b->format);
    printf("  State:        %" PRIu64 " bytes, SHA-256 %.16s...\n",
           b->state_size, b->state_sha256);
    printf("  Members:     ");
    for (i = 0; i < b->n_members; i++) {
        printf(" %s(%s)",
               b->members[i].name[0] != '\0' ? b->members[i].name : "?",
               jr_role_name(b->members[i].role));
    }
    printf("\n");
}

static int verify_cmd(int argc, char **argv)
{
    struct jr_backup_info *b;
    struct jr_error err;
    int rv;
    if (argc == 1 &&
        (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)) {
        fputs(backup_usage, stdout);
        return 0;
    }
    if (argc != 1 || argv[0][0] == '-') {
        fputs(backup_usage, stderr);
        return EXIT_USAGE;
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        return EXIT_FAILED;
    }
    memset(&err, 0, sizeof err);
    rv = jr_backup_verify(argv[0], b, &err);
    if (rv != 0) {
        print_error(rv, err.message, NULL);
        free(b);
        return EXIT_FAILED;
    }
    if (jaco_json_output) {
        print_info_json(argv[0], b);
    } else {
        printf("%s: OK, every checksum matches\n", argv[0]);
        print_info_table(b);
    }
    free(b);
    return 0;
}

/* Write len bytes at the end of fd. */
static int write_full(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void release(int fd, const char *id)
{
    msgpack_sbuffer args;
    msgpack_packer pk;
    struct reply r;
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    jd_mp_kv_str(&pk, "id", id);
    jaco_call_on(fd, "backup.done", &args, &r);
    msgpack_sbuffer_destroy(&args);
    jaco_reply_free(&r);
}

/* Copy jacod's archive into tmp. 0, or EXIT_* after printing why. */
static int fetch(int fd, const char *id, uint64_t size, const char *tmp)
{
    uint64_t offset = 0;
    int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        fprintf(stderr, "jaco: create %s: %s\n", tmp, strerror(errno));
        return EXIT_FAILED;
    }
    for (;;) {
        msgpack_sbuffer args;
        msgpack_packer pk;
        const msgpack_object *data;
        struct reply r;
        bool eof;
        msgpack_sbuffer_init(&args);
        msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 2);
        jd_mp_kv_str(&pk, "id", id);
        jd_mp_key(&pk, "offset");
        msgpack_pack_uint64(&pk, offset);
        jaco_call_on(fd, "backup.read", &args, &r);
        msgpack_sbuffer_destroy(&args);
        if (strcmp(r.code, JD_CODE_OK) != 0) {
            close(out);
            (void)unlink(tmp);
            jaco_fail_reply(&r);
        }
        data = jd_mp_get(r.result, "data");
        eof = jd_mp_get(r.result, "eof") != NULL &&
              jd_mp_get(r.result, "eof")->type == MSGPACK_OBJECT_BOOLEAN &&
              jd_mp_get(r.result, "eof")->via.boolean;
        if (data == NULL || data->type != MSGPACK_OBJECT_BIN) {
            jaco_reply_free(&r);
            close(out);
            (void)unlink(tmp);
            fprintf(stderr, "jaco: malformed backup.read reply\n");
            return EXIT_FAILED;
        }
        if (write_full(out, data->via.bin.ptr, data->via.bin.size) != 0) {
            int e = errno;
            jaco_reply_free(&r);
            close(out);
            (void)unlink(tmp);
            fprintf(stderr, "jaco: write %s: %s\n", tmp, strerror(e));
            return EXIT_FAILED;
        }
        offset += data->via.bin.size;
        jaco_reply_free(&r);
        progress_cb("received", offset, size);
        if (eof) {
            break;
        }
    }
    if (fsync(out) != 0 || close(out) != 0) {
        fprintf(stderr, "jaco: write %s: %s\n", tmp, strerror(errno));
        (void)unlink(tmp);
        return EXIT_FAILED;
    }
    if (offset != size) {
        fprintf(stderr,
                "jaco: received %" PRIu64 " of %" PRIu64
                " bytes: the backup changed on jacod's side; run it again\n",
                offset, size);
        (void)unlink(tmp);
        return EXIT_FAILED;
    }
    return 0;
}

static int fsync_parent(const char *path)
{
    char dir[4096], *slash;
    int fd, rv;
    (void)snprintf(dir, sizeof dir, "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        (void)snprintf(dir, sizeof dir, ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    rv = fsync(fd);
    close(fd);
    return rv;
}

static int create_cmd(const char *file, bool local)
{
    struct jr_backup_info *b;
    struct jr_error err;
    msgpack_sbuffer args;
    msgpack_packer pk;
    struct reply r;
    char tmp[4200], id[64];
    uint64_t size;
    int fd, rv;

    if (snprintf(tmp, sizeof tmp, "%s.tmp", file) >= (int)sizeof tmp) {
        fprintf(stderr, "jaco: --output: path too long\n");
        return EXIT_USAGE;
    }
    (void)unlink(tmp);
    fd = jaco_connect();
    if (show_progress) {
        fprintf(stderr, "jaco: jacod is taking the backup...\n");
    }
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    jd_mp_key(&pk, "local");
    if (local) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    jaco_call_on(fd, "backup.create", &args, &r);
    msgpack_sbuffer_destroy(&args);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        jaco_fail_reply(&r);
    }
    (void)snprintf(id, sizeof id, "%s", jaco_str_of(r.result, "id"));
    size = jaco_u64_of(r.result, "size");
    jaco_reply_free(&r);
    rv = fetch(fd, id, size, tmp);
    release(fd, id);
    close(fd);
    if (rv != 0) {
        return rv;
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        (void)unlink(tmp);
        return EXIT_FAILED;
    }
    memset(&err, 0, sizeof err);
    rv = jr_backup_verify(tmp, b, &err);
    if (rv != 0) {
        (void)unlink(tmp);
        print_error(rv, err.message,
                    "the copy did not verify; nothing was written under the "
                    "final name: run jaco backup again");
        free(b);
        return EXIT_FAILED;
    }
    if (rename(tmp, file) != 0 || fsync_parent(file) != 0) {
        fprintf(stderr, "jaco: rename %s to %s: %s\n", tmp, file,
                strerror(errno));
        (void)unlink(tmp);
        free(b);
        return EXIT_FAILED;
    }
    if (jaco_json_output) {
        print_info_json(file, b);
    } else {
        printf("backup written to %s (%" PRIu64 " bytes), verified:\n", file,
               size);
        print_info_table(b);
    }
    free(b);
    return 0;
}

int jaco_backup_cmd(int argc, char **argv)
{
    const char *file = NULL;
    bool local = false;
    int k;
    show_progress = isatty(STDERR_FILENO) != 0;
    for (k = 1; k < argc; k++) {
        if (strcmp(argv[k], "-o") == 0 && k + 1 < argc) {
            if (strcmp(argv[k + 1], "json") != 0 &&
                strcmp(argv[k + 1], "table") != 0) {
                fprintf(stderr, "jaco: -o %s: use table or json\n",
                        argv[k + 1]);
                return EXIT_USAGE;
            }
            jaco_json_output = strcmp(argv[k + 1], "json") == 0;
            memmove(argv + k, argv + k + 2,
                    (size_t)(argc - k - 2) * sizeof *argv);
            argc -= 2;
            k--;
        }
    }
    if (argc >= 2 && strcmp(argv[1], "verify") == 0) {
        return verify_cmd(argc - 2, argv + 2);
    }
    for (k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--output") == 0 && k + 1 < argc) {
            file = argv[++k];
        } else if (strcmp(argv[k], "--local") == 0) {
            local = true;
        } else if (k + 1 < argc && jaco_set_connection(argv[k], argv[k + 1])) {
            k++; /* --socket, --server, --secret-file after the verb */
        } else if (strcmp(argv[k], "-h") == 0 ||
                   strcmp(argv[k], "--help") == 0) {
            fputs(backup_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "jaco: unexpected argument %s\n%s", argv[k],
                    backup_usage);
            return EXIT_USAGE;
        }
    }
    if (file == NULL) {
        fputs(backup_usage, stderr);
        return EXIT_USAGE;
    }
    return create_cmd(file, local);
}

/* ---- restore ---- */

struct restore_args {
    const char *input, *name, *data_dir, *address, *config, *secret;
    unsigned flags;
};

static int parse_restore(int argc, char **argv, struct restore_args *a)
{
    int k;
    memset(a, 0, sizeof *a);
    for (k = 1; k < argc; k++) {
        const char *v = k + 1 < argc ? argv[k + 1] : NULL;
        if (strcmp(argv[k], "-h") == 0 || strcmp(argv[k], "--help") == 0) {
            fputs(restore_usage, stdout);
            return 0;
        } else if (strcmp(argv[k], "--force") == 0) {
            a->flags |= JR_RESTORE_FORCE;
            continue;
        } else if (strcmp(argv[k], "--dry-run") == 0) {
            a->flags |= JR_RESTORE_DRY_RUN;
            continue;
        } else if (v == NULL) {
            break;
        } else if (strcmp(argv[k], "--input") == 0) {
            a->input = v;
        } else if (strcmp(argv[k], "--name") == 0) {
            a->name = v;
        } else if (strcmp(argv[k], "--data-dir") == 0) {
            a->data_dir = v;
        } else if (strcmp(argv[k], "--peer-address") == 0) {
            a->address = v;
        } else if (strcmp(argv[k], "--config") == 0) {
            a->config = v;
        } else if (strcmp(argv[k], "--secret-file") == 0) {
            a->secret = v;
        } else if (strcmp(argv[k], "-o") == 0) {
            if (strcmp(v, "json") != 0 && strcmp(v, "table") != 0) {
                fprintf(stderr, "jaco: -o %s: use table or json\n", v);
                return EXIT_USAGE;
            }
            jaco_json_output = strcmp(v, "json") == 0;
        } else {
            break;
        }
        k++;
    }
    if (k < argc) {
        fprintf(stderr, "jaco: unexpected argument %s\n%s", argv[k],
                restore_usage);
        return EXIT_USAGE;
    }
    if (a->input == NULL || a->name == NULL) {
        fputs(restore_usage, stderr);
        return EXIT_USAGE;
    }
    return -1;
}

int jaco_restore_cmd(int argc, char **argv)
{
    static struct jd_config config;
    struct restore_args a;
    struct jr_restore_opts o;
    struct jr_backup_info *b;
    unsigned char secret[JR_SECRET_SIZE];
    const char *secret_from = NULL;
    struct jr_error err;
    char cerr[1024];
    int rv;

    if ((rv = parse_restore(argc, argv, &a)) >= 0) {
        return rv;
    }
    show_progress = isatty(STDERR_FILENO) != 0;
    jd_config_defaults(&config);
    if (a.config != NULL || access(JD_CONFIG_DEFAULT_PATH, F_OK) == 0) {
        char *cargv[] = {
            "jaco", "--config",
            (char *)(a.config != NULL ? a.config : JD_CONFIG_DEFAULT_PATH),
            NULL};
        optind = 0;
        if (jd_config_parse(&config, 3, cargv, cerr, sizeof cerr) != 0) {
            fprintf(stderr, "jaco: jacod's config: %s\n", cerr);
            return EXIT_USAGE;
        }
    }
    memset(&o, 0, sizeof o);
    o.data_dir = a.data_dir != NULL ? a.data_dir : config.data_dir;
    o.address = a.address != NULL ? a.address : config.peer_address;
    o.name = a.name;
    o.node_id = jd_node_id_of_name(a.name);
    o.flags = a.flags;
    o.progress = progress_cb;
    o.progress_data = "verified";
    memset(&err, 0, sizeof err);
    if (a.secret == NULL && config.secret_file[0] != '\0') {
        a.secret = config.secret_file;
    }
    if (a.secret != NULL) {
        if (jr_secret_read_file(a.secret, secret, &err) != 0) {
            fprintf(stderr, "jaco: --secret-file: %s\n", err.message);
            return EXIT_USAGE;
        }
        o.secret = secret;
        secret_from = a.secret;
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        return EXIT_FAILED;
    }
    rv = jr_backup_restore(a.input, &o, b, &err);
    memset(secret, 0, sizeof secret);
    if (rv != 0) {
        print_error(rv, err.message,
                    rv == JR_ELOCKED
                        ? "stop jacod on this host first (systemctl stop "
                          "jacod)"
                    : rv == JR_ENOTEMPTY
                        ? "check that this is the host you mean to restore; "
                          "--force moves the old contents aside"
                        : NULL);
        free(b);
        return EXIT_FAILED;
    }
    if (jaco_json_output) {
        print_info_json(a.input, b);
    } else {
        bool dry = (a.flags & JR_RESTORE_DRY_RUN) != 0;
        printf("%s %s into %s:\n", dry ? "would restore" : "restored", a.input,
               o.data_dir);
        print_info_table(b);
        printf("  This node:    %s (id %" PRIu64 ") at %s, the only voter\n",
               a.name, o.node_id, o.address);
        printf("  Incarnation:  %" PRIu32 " (the backup's was %" PRIu32
               "; hosts of the old cluster are refused)\n",
               b->incarnation + 1, b->incarnation);
        printf("  Secret:       %s\n", secret_from != NULL
                                           ? secret_from
                                           : "a new one, in DATA-DIR/secret");
        if (!dry && config.n_initial > 0) {
            printf(
                "note: jacod's config lists initial-cluster: remove it "
                "before starting jacod\n(the restored directory holds "
                "a one-node cluster; bootstrap = true is fine)\n");
        }
        if (!dry) {
            printf(
                "next: start jacod on this host (systemctl start jacod); "
                "then on each other\nhost, with jacod started on an empty "
                "data directory and no initial-cluster:\n"
                "  jaco node issue-join-token    (here)\n"
                "  jaco node join TOKEN          (there)\n");
        }
    }
    free(b);
    return 0;
}

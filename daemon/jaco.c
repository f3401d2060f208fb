/* jaco: the operator's command line for jacod.
 *
 *   jaco [--socket PATH | --server HOST:PORT] [-o table|json] [--consistent]
 *        VERB ...
 *
 * Exit codes: 0 success; 1 jacod answered with an error (printed as
 * Error{code: CODE, message: "..."} with a hint); 2 usage error; 3 jacod
 * could not be reached. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jacoraft.h>

#include "jaco.h"
#include "mp.h"
#include "nodeid.h"
#include "proto.h"

#define DEFAULT_SOCKET "/run/jaco/jacod.sock"

static const char *socket_path = DEFAULT_SOCKET;
static const char *server_address;
bool jaco_json_output;
bool jaco_consistent;         /* --consistent */
static const char *verb_ttl;  /* --ttl of node issue-join-token */
const char *jaco_secret_file; /* authenticates --server connections */

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: jaco [--socket PATH | --server HOST:PORT --secret-file "
        "FILE]\n"
        "            [-o table|json] [--consistent] VERB ...\n"
        "\n"
        "verbs:\n"
        "  cluster status                 cluster id, leader, term, commit "
        "index, nodes\n"
        "  node list                      nodes: name, address, status, "
        "role, last contact\n"
        "  node label NAME KEY=VALUE...   set labels on a node "
        "(replicated, audited)\n"
        "  node unlabel NAME KEY...       remove labels from a node\n"
        "  node issue-join-token [--ttl DURATION]\n"
        "                                 a single-use token for a new "
        "host (default 1h)\n"
        "  node join TOKEN                join this host's uninitialised "
        "jacod to the cluster\n"
        "  node remove [--force] NAME     remove a node from the cluster "
        "(--force: it\n"
        "                                 is gone for good)\n"
        "  cluster transfer-leader [NAME] hand leadership to NAME, or to "
        "the most\n"
        "                                 caught-up voter\n"
        "  raft list-peers                the Raft configuration as this "
        "node sees it\n"
        "  raft remove-peer --peer-id ID  remove a Raft peer by id "
        "(forced)\n"
        "  recover inspect DIR [DIR...]   a stopped node's data directory; "
        "with several,\n"
        "                                 which has the most recent log "
        "(no jacod needed)\n"
        "  recover write-peers --data-dir DIR --peer NAME=HOST:PORT... "
        "[--dry-run]\n"
        "                                 force a configuration at the "
        "next start\n"
        "  recover force-new-cluster --data-dir DIR [--dry-run]\n"
        "                                 a lone survivor becomes a "
        "one-voter cluster\n"
        "  backup --output FILE.tar.gz    an online backup of the cluster's "
        "state\n"
        "  backup verify FILE             check a backup's format and "
        "checksums\n"
        "  restore --input FILE --name NAME [--data-dir DIR] [--force]\n"
        "                                 a stopped host becomes a one-voter "
        "cluster\n"
        "                                 holding the backup "
        "(jaco-backup(8))\n"
        "  snapshot                       snapshot this node's state now "
        "and compact its log\n"
        "  apply -f FILE [--dry-run]      create or replace the deployments "
        "of a manifest\n"
        "                                 (jaco.yaml(5))\n"
        "  status [-w] [--timeout DURATION] [DEPLOYMENT[/SERVICE]]\n"
        "                                 every replica's host and state; "
        "-w follows them\n"
        "  delete DEPLOYMENT              stop a deployment's replicas and "
        "forget it\n"
        "  audit [--type T] [--since DURATION]\n"
        "                                 the audit log (DURATION: 90s, "
        "15m, 2h, 7d)\n"
        "\n"
        "options:\n"
        "  --socket PATH      jacod's unix socket (default %s)\n"
        "  --server HOST:PORT jacod's TCP client address\n"
        "  --secret-file FILE the cluster secret (hex, or a data "
        "directory's secret):\n"
        "                     proves who we are over --server\n"
        "  -o, --output FMT   table (default) or json\n"
        "  --consistent       linearizable read (needs a quorum); reads "
        "are local otherwise\n"
        "  -h, --help         this text; `jaco VERB --help` for a verb\n"
        "\n"
        "exit codes: 0 success, 1 jacod returned an error, 2 usage error,\n"
        "3 jacod not reachable. See jaco(8).\n",
        DEFAULT_SOCKET);
}

/* ---- talking to jacod ---- */

static int dial(void)
{
    int fd;
    if (server_address != NULL) {
        struct sockaddr_in sa;
        char host[64];
        const char *colon = strrchr(server_address, ':');
        int one = 1;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        if (colon == NULL || (size_t)(colon - server_address) >= sizeof host) {
            fprintf(stderr, "jaco: --server %s: not HOST:PORT\n",
                    server_address);
            exit(EXIT_USAGE);
        }
        memcpy(host, server_address, (size_t)(colon - server_address));
        host[colon - server_address] = '\0';
        sa.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
            fprintf(stderr, "jaco: --server %s: not an IPv4 address\n",
                    server_address);
            exit(EXIT_USAGE);
        }
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            fprintf(stderr,
                    "jaco: cannot reach jacod at %s: %s\n"
                    "hint: is jacod running there with --client-address "
                    "%s?\n",
                    server_address, strerror(errno), server_address);
            exit(EXIT_UNREACHABLE);
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    } else {
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        if (strlen(socket_path) >= sizeof sa.sun_path) {
            fprintf(stderr, "jaco: --socket %s: path too long\n", socket_path);
            exit(EXIT_USAGE);
        }
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", socket_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            fprintf(stderr,
                    "jaco: cannot reach jacod on %s: %s\n"
                    "hint: is jacod running on this host (systemctl status "
                    "jacod)? Only root may use its socket by default.\n",
                    socket_path, strerror(errno));
            exit(EXIT_UNREACHABLE);
        }
    }
    return fd;
}

/* Send {"op": op, "args": <args packed by the caller into args_sb>} on fd
 * and read the reply. Exits on transport errors. */
void jaco_call_on(int fd,
                  const char *op,
                  msgpack_sbuffer *args,
                  struct reply *r)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t len, off = 0;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    jd_mp_kv_str(&pk, "op", op);
    jd_mp_key(&pk, "args");
    if (args != NULL && args->size > 0) {
        msgpack_sbuffer_write(&sb, args->data, args->size);
    } else {
        msgpack_pack_map(&pk, 0);
    }
    if (jd_frame_send(fd, sb.data, sb.size) != 0 ||
        jd_frame_recv(fd, &r->buf, &len, JD_MAX_REPLY) != 0) {
        fprintf(stderr, "jaco: jacod closed the connection: %s\n",
                strerror(errno));
        exit(EXIT_UNREACHABLE);
    }
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_init(&r->unpacked);
    if (msgpack_unpack_next(&r->unpacked, r->buf, len, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        jd_mp_copy_str(jd_mp_get(&r->unpacked.data, "code"), r->code,
                       sizeof r->code) != 0) {
        fprintf(stderr, "jaco: malformed reply from jacod\n");
        exit(EXIT_FAILED);
    }
    if (jd_mp_copy_str(jd_mp_get(&r->unpacked.data, "message"), r->message,
                       sizeof r->message) != 0) {
        r->message[0] = '\0';
    }
    r->result = jd_mp_get(&r->unpacked.data, "result");
}

/* The TCP API's challenge-response (jr_client_proof): jacod proves the
 * cluster secret first, then we do. */
static void authenticate(int fd)
{
    unsigned char secret[JR_SECRET_SIZE], cn[32], want[32], proof[32];
    const msgpack_object *sn, *sp;
    struct jr_error err;
    msgpack_sbuffer args;
    msgpack_packer pk;
    struct reply r;
    memset(&err, 0, sizeof err);
    if (jr_secret_read_file(jaco_secret_file, secret, &err) != 0) {
        fprintf(stderr, "jaco: --secret-file: %s\n", err.message);
        exit(EXIT_USAGE);
    }
    if (getrandom(cn, sizeof cn, 0) != (ssize_t)sizeof cn) {
        fprintf(stderr, "jaco: no random bytes: %s\n", strerror(errno));
        exit(EXIT_FAILED);
    }
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    jd_mp_key(&pk, "cn");
    msgpack_pack_bin(&pk, sizeof cn);
    msgpack_pack_bin_body(&pk, cn, sizeof cn);
    jaco_call_on(fd, "auth.challenge", &args, &r);
    msgpack_sbuffer_destroy(&args);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        jaco_fail_reply(&r);
    }
    sn = jd_mp_get(r.result, "sn");
    sp = jd_mp_get(r.result, "proof");
    if (sn == NULL || sn->type != MSGPACK_OBJECT_BIN ||
        sn->via.bin.size != 32 || sp == NULL ||
        sp->type != MSGPACK_OBJECT_BIN || sp->via.bin.size != 32) {
        fprintf(stderr, "jaco: malformed challenge from jacod\n");
        exit(EXIT_FAILED);
    }
    jr_client_proof(secret, JR_CLIENT_PROOF_SERVER, cn,
                    (const unsigned char *)sn->via.bin.ptr, want);
    if (memcmp(want, sp->via.bin.ptr, sizeof want) != 0) {
        fprintf(stderr,
                "Error{code: unauthenticated, message: \"jacod at %s could "
                "not prove that it holds the secret in --secret-file\"}\n"
                "hint: the file must hold the secret of that node's cluster "
                "(its data directory's secret, or the initial-cluster "
                "secret-file)\n",
                server_address);
        exit(EXIT_FAILED);
    }
    jr_client_proof(secret, JR_CLIENT_PROOF_CLIENT, cn,
                    (const unsigned char *)sn->via.bin.ptr, proof);
    memset(secret, 0, sizeof secret);
    jaco_reply_free(&r);
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    jd_mp_key(&pk, "proof");
    msgpack_pack_bin(&pk, sizeof proof);
    msgpack_pack_bin_body(&pk, proof, sizeof proof);
    jaco_call_on(fd, "auth.response", &args, &r);
    msgpack_sbuffer_destroy(&args);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        jaco_fail_reply(&r);
    }
    jaco_reply_free(&r);
}

bool jaco_set_connection(const char *opt, const char *value)
{
    if (strcmp(opt, "--socket") == 0) {
        socket_path = value;
    } else if (strcmp(opt, "--server") == 0) {
        server_address = value;
    } else if (strcmp(opt, "--secret-file") == 0) {
        jaco_secret_file = value;
    } else {
        return false;
    }
    return true;
}

int jaco_connect(void)
{
    int fd = dial();
    if (server_address != NULL && jaco_secret_file != NULL) {
        authenticate(fd);
    }
    return fd;
}

/* One request on a connection of its own. */
static void call(const char *op, msgpack_sbuffer *args, struct reply *r)
{
    int fd = jaco_connect();
    jaco_call_on(fd, op, args, r);
    close(fd);
}

void jaco_reply_free(struct reply *r)
{
    msgpack_unpacked_destroy(&r->unpacked);
    free(r->buf);
}

void jaco_json_string(FILE *out, const char *p, size_t n)
{
    size_t i;
    fputc('"', out);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c < 0x20) {
            fprintf(out, "\\u%04x", c);
        } else {
            fputc(c, out);
        }
    }
    fputc('"', out);
}

void jaco_print_json(FILE *out, const msgpack_object *o)
{
    uint32_t i;
    switch (o->type) {
        case MSGPACK_OBJECT_NIL: fputs("null", out); break;
        case MSGPACK_OBJECT_BOOLEAN:
            fputs(o->via.boolean ? "true" : "false", out);
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            fprintf(out, "%" PRIu64, o->via.u64);
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            fprintf(out, "%" PRId64, o->via.i64);
            break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: fprintf(out, "%g", o->via.f64); break;
        case MSGPACK_OBJECT_STR:
            jaco_json_string(out, o->via.str.ptr, o->via.str.size);
            break;
        case MSGPACK_OBJECT_ARRAY:
            fputc('[', out);
            for (i = 0; i < o->via.array.size; i++) {
                if (i > 0) {
                    fputc(',', out);
                }
                jaco_print_json(out, &o->via.array.ptr[i]);
            }
            fputc(']', out);
            break;
        case MSGPACK_OBJECT_MAP:
            fputc('{', out);
            for (i = 0; i < o->via.map.size; i++) {
                if (i > 0) {
                    fputc(',', out);
                }
                jaco_print_json(out, &o->via.map.ptr[i].key);
                fputc(':', out);
                jaco_print_json(out, &o->via.map.ptr[i].val);
            }
            fputc('}', out);
            break;
        default: fputs("null", out); break;
    }
}

static const char *hint_for(const char *code)
{
    if (strcmp(code, "no_leader") == 0) {
        return "an election is in progress; retry in a few seconds";
    }
    if (strcmp(code, "quorum_lost") == 0) {
        return "this node cannot reach a majority of the voters; writes "
               "fail until enough of them are back. Reads still work "
               "(without --consistent). See jaco-recovery(7), QUORUM LOST";
    }
    if (strcmp(code, "not_found") == 0) {
        return "`jaco node list` shows the names";
    }
    if (strcmp(code, "not_initialised") == 0) {
        return "start the first host with `jacod --bootstrap`, or join this "
               "one with `jaco node join TOKEN` (a token from `jaco node "
               "issue-join-token` on a member)";
    }
    if (strcmp(code, "identity_mismatch") == 0) {
        return "a token works only for the cluster that issued it, once, "
               "until it expires: issue a new one on a member with `jaco "
               "node issue-join-token`";
    }
    if (strcmp(code, "unauthenticated") == 0) {
        return "run jaco on a cluster host, on jacod's local socket";
    }
    if (strcmp(code, "timeout") == 0) {
        return "the write may or may not have happened; check before "
               "retrying";
    }
    return NULL;
}

/* Print an error reply, with hint (or the code's own if NULL), and exit
 * 1. */
void jaco_fail_reply_hint(struct reply *r, const char *hint)
{
    if (hint == NULL) {
        hint = hint_for(r->code);
    }
    if (jaco_json_output) {
        printf("{\"code\":");
        jaco_json_string(stdout, r->code, strlen(r->code));
        printf(",\"message\":");
        jaco_json_string(stdout, r->message, strlen(r->message));
        printf("}\n");
    } else {
        fprintf(stderr, "Error{code: %s, message: ", r->code);
        jaco_json_string(stderr, r->message, strlen(r->message));
        fprintf(stderr, "}\n");
        if (hint != NULL) {
            fprintf(stderr, "hint: %s\n", hint);
        }
    }
    jaco_reply_free(r);
    exit(EXIT_FAILED);
}

void jaco_fail_reply(struct reply *r)
{
    jaco_fail_reply_hint(r, NULL);
}

/* ---- reading results ---- */

const char *jaco_str_of(const msgpack_object *o, const char *key)
{
    static char bufs[8][256];
    static unsigned next;
    char *b = bufs[next++ % 8];
    if (jd_mp_copy_str(jd_mp_get(o, key), b, 256) != 0) {
        b[0] = '\0';
    }
    return b;
}

uint64_t jaco_u64_of(const msgpack_object *o, const char *key)
{
    uint64_t v = 0;
    (void)jd_mp_u64(jd_mp_get(o, key), &v);
    return v;
}

int64_t jaco_i64_of(const msgpack_object *o, const char *key)
{
    int64_t v = 0;
    (void)jd_mp_i64(jd_mp_get(o, key), &v);
    return v;
}

static bool bool_of(const msgpack_object *o, const char *key)
{
    const msgpack_object *v = jd_mp_get(o, key);
    return v != NULL && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ago(char *out, size_t size, int64_t ms)
{
    if (ms <= 0) {
        snprintf(out, size, "never");
    } else {
        int64_t d = (now_ms() - ms) / 1000;
        if (d < 0) {
            d = 0;
        }
        if (d < 120) {
            snprintf(out, size, "%llds ago", (long long)d);
        } else if (d < 7200) {
            snprintf(out, size, "%lldm ago", (long long)(d / 60));
        } else {
            snprintf(out, size, "%lldh ago", (long long)(d / 3600));
        }
    }
}

static const char *short_status(const char *s)
{
    return strncmp(s, "NODE_STATUS_", 12) == 0 ? s + 12 : s;
}

/* The nodes to show: the state's table, plus raft members the leader has
 * not recorded yet. */
static const msgpack_object *nodes_of(const msgpack_object *res)
{
    const msgpack_object *n = jd_mp_get(res, "nodes");
    return n != NULL && n->type == MSGPACK_OBJECT_ARRAY ? n : NULL;
}

static const msgpack_object *peers_of(const msgpack_object *res)
{
    const msgpack_object *p = jd_mp_get(res, "peers");
    return p != NULL && p->type == MSGPACK_OBJECT_ARRAY ? p : NULL;
}

static bool in_nodes(const msgpack_object *nodes, uint64_t id)
{
    uint32_t i;
    for (i = 0; nodes != NULL && i < nodes->via.array.size; i++) {
        if (jaco_u64_of(&nodes->via.array.ptr[i], "id") == id) {
            return true;
        }
    }
    return false;
}

static void note_uninitialised(const msgpack_object *res)
{
    if (!bool_of(res, "initialised") && !jaco_json_output) {
        fprintf(stderr,
                "note: node %s is not initialised: it belongs to no cluster "
                "yet; join it with `jaco node join TOKEN` (a token from "
                "`jaco node issue-join-token` on a member)\n",
                jaco_str_of(res, "name"));
    }
}

static struct reply status_call(void)
{
    struct reply r;
    msgpack_sbuffer args;
    msgpack_packer pk;
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    jd_mp_key(&pk, "consistent");
    if (jaco_consistent) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    call("status", &args, &r);
    msgpack_sbuffer_destroy(&args);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        jaco_fail_reply(&r);
    }
    note_uninitialised(r.result);
    return r;
}

/* ---- verbs ---- */

static const char *label_of(const msgpack_object *node, const char *key)
{
    return jaco_str_of(jd_mp_get(node, "labels"), key);
}

/* Backup nodes record each archive as labels of theirs (jaco-backup(8)):
 * its age, its index against the commit index, the node's lag when this
 * node leads, and STALE past twice the interval. */
static void print_backups(const msgpack_object *res,
                          const msgpack_object *nodes,
                          const msgpack_object *peers)
{
    uint32_t i, j;
    bool header = false;
    for (i = 0; nodes != NULL && i < nodes->via.array.size; i++) {
        const msgpack_object *n = &nodes->via.array.ptr[i];
        uint64_t interval =
            strtoull(label_of(n, "jaco.backup.interval"), NULL, 10);
        int64_t at = strtoll(label_of(n, "jaco.backup.time"), NULL, 10);
        uint64_t index = strtoull(label_of(n, "jaco.backup.index"), NULL, 10);
        uint64_t commit = jaco_u64_of(res, "commit_index");
        char age[32], every[32], lag[64] = "";
        if (interval == 0 || at == 0) {
            continue;
        }
        if (!header) {
            printf("Backups:\n");
            header = true;
        }
        ago(age, sizeof age, at);
        (void)snprintf(every, sizeof every, "%" PRIu64 "%s",
                       interval % 3600 == 0 ? interval / 3600
                       : interval % 60 == 0 ? interval / 60
                                            : interval,
                       interval % 3600 == 0 ? "h"
                       : interval % 60 == 0 ? "m"
                                            : "s");
        for (j = 0; peers != NULL && j < peers->via.array.size; j++) {
            const msgpack_object *p = &peers->via.array.ptr[j];
            uint64_t match = jaco_u64_of(p, "match_index");
            if (jaco_u64_of(p, "id") == jaco_u64_of(n, "id") && match != 0 &&
                strcmp(jaco_str_of(res, "state"), "leader") == 0) {
                (void)snprintf(lag, sizeof lag, ", log lag %" PRIu64 " entries",
                               commit > match ? commit - match : 0);
            }
        }
        printf("  %-16s newest archive %s (index %" PRIu64 ", %" PRIu64
               " entries behind commit), every %s%s%s\n",
               jaco_str_of(n, "name"), age, index,
               commit > index ? commit - index : 0, every, lag,
               now_ms() - at > (int64_t)interval * 2000
                   ? "  STALE: older than twice the interval"
                   : "");
    }
}

static int cluster_status(void)
{
    struct reply r = status_call();
    const msgpack_object *res = r.result;
    const msgpack_object *nodes = nodes_of(res), *peers = peers_of(res);
    uint32_t i, count = 0;
    if (jaco_json_output) {
        jaco_print_json(stdout, res);
        putchar('\n');
        jaco_reply_free(&r);
        return 0;
    }
    if (!bool_of(res, "initialised")) {
        printf(
            "Node %s is not initialised: it belongs to no cluster yet.\n"
            "Start the first host with `jacod --bootstrap`, or join this "
            "one to a cluster.\n",
            jaco_str_of(res, "name"));
        jaco_reply_free(&r);
        return 0;
    }
    printf("Cluster:  %s\n", jaco_str_of(res, "cluster_id"));
    if (jaco_u64_of(res, "leader_id") != 0) {
        printf("Leader:   %s (%s)\n", jaco_str_of(res, "leader_name"),
               jaco_str_of(res, "leader_address"));
    } else {
        printf("Leader:   none (%s)\n", jaco_str_of(res, "health"));
    }
    printf("Term:     %" PRIu64 "\n", jaco_u64_of(res, "term"));
    printf("Commit:   %" PRIu64 "\n", jaco_u64_of(res, "commit_index"));
    printf("Health:   %s (as seen from %s)\n", jaco_str_of(res, "health"),
           jaco_str_of(res, "name"));
    if (strcmp(jaco_str_of(res, "disk"), "ok") != 0 &&
        jaco_str_of(res, "disk")[0] != '\0') {
        printf(
            "Disk:     %s: %s cannot write its log (see jaco-recovery(7), "
            "DISK FULL)\n",
            jaco_str_of(res, "disk"), jaco_str_of(res, "name"));
    }
    if (bool_of(res, "partially_synced")) {
        printf(
            "Syncing:  %s is partially synced: it re-syncs from the leader "
            "and stands for no election until then\n",
            jaco_str_of(res, "name"));
    }
    if (bool_of(res, "data_dir_lost")) {
        printf(
            "DATA DIRECTORY LOST: %s's data directory was removed or "
            "replaced while it runs;\n          stop it, wipe it and "
            "join it again (see jaco-recovery(7))\n",
            jaco_str_of(res, "name"));
    }
    if (jaco_u64_of(res, "auth_failures") > 0) {
        printf("Refused:  %" PRIu64
               " peer connections since start (wrong cluster, secret or "
               "token; see jacod's log)\n",
               jaco_u64_of(res, "auth_failures"));
    }
    count = nodes != NULL ? nodes->via.array.size : 0;
    for (i = 0; peers != NULL && i < peers->via.array.size; i++) {
        count += !in_nodes(nodes, jaco_u64_of(&peers->via.array.ptr[i], "id"));
    }
    printf("Nodes (%u):\n", count);
    printf("  %-16s %-22s %-8s %s\n", "NAME", "ADDRESS", "ROLE", "STATUS");
    for (i = 0; nodes != NULL && i < nodes->via.array.size; i++) {
        const msgpack_object *n = &nodes->via.array.ptr[i];
        printf("  %-16s %-22s %-8s %s\n", jaco_str_of(n, "name"),
               jaco_str_of(n, "address"), jaco_str_of(n, "role"),
               jaco_str_of(n, "status"));
    }
    for (i = 0; peers != NULL && i < peers->via.array.size; i++) {
        const msgpack_object *p = &peers->via.array.ptr[i];
        if (!in_nodes(nodes, jaco_u64_of(p, "id"))) {
            printf("  %-16s %-22s %-8s %s\n",
                   jaco_str_of(p, "name")[0] != '\0' ? jaco_str_of(p, "name")
                                                     : "?",
                   jaco_str_of(p, "address"), jaco_str_of(p, "role"),
                   "NODE_STATUS_UNKNOWN");
        }
    }
    print_backups(res, nodes, peers);
    jaco_reply_free(&r);
    return 0;
}

/* -o json for a list: the array (or []), then done with r. */
static int print_json_list(struct reply *r, const msgpack_object *list)
{
    if (list != NULL) {
        jaco_print_json(stdout, list);
    } else {
        printf("[]");
    }
    putchar('\n');
    jaco_reply_free(r);
    return 0;
}

/* What the leader's voter-set policy says of node id ("standby: waiting
 * for catch-up ..."), or its plain role. */
static const char *role_why(const msgpack_object *peers,
                            uint64_t id,
                            const char *role)
{
    uint32_t i;
    for (i = 0; peers != NULL && i < peers->via.array.size; i++) {
        const msgpack_object *p = &peers->via.array.ptr[i];
        if (jaco_u64_of(p, "id") == id && jaco_str_of(p, "why")[0] != '\0') {
            return jaco_str_of(p, "why");
        }
    }
    return strcmp(role, "none") == 0
               ? "none: not in the Raft configuration (jaco node remove "
                 "--force NAME)"
               : role;
}

static int node_list(void)
{
    struct reply r = status_call();
    const msgpack_object *nodes = nodes_of(r.result);
    const msgpack_object *peers = peers_of(r.result);
    uint32_t i;
    if (jaco_json_output) {
        return print_json_list(&r, nodes);
    }
    printf("%-16s %-22s %-12s %-14s %-12s %s\n", "NAME", "ADDRESS", "STATUS",
           "LAST CONTACT", "ISOLATION", "ROLE");
    for (i = 0; nodes != NULL && i < nodes->via.array.size; i++) {
        const msgpack_object *n = &nodes->via.array.ptr[i];
        char when[32], iso[64], state[16];
        const char *detail;
        snprintf(state, sizeof state, "%s", jaco_str_of(n, "isolation"));
        ago(when, sizeof when, jaco_i64_of(n, "last_seen_ms"));
        /* "ok" names the plugin ("nftables: ..." in the detail). */
        if (strcmp(state, "ok") == 0) {
            detail = jaco_str_of(n, "isolation_detail");
            snprintf(iso, sizeof iso, "%.*s", (int)strcspn(detail, ":"),
                     detail);
        } else {
            snprintf(iso, sizeof iso, "%s", state[0] != '\0' ? state : "-");
        }
        printf("%-16s %-22s %-12s %-14s %-12s %s\n", jaco_str_of(n, "name"),
               jaco_str_of(n, "address"),
               short_status(jaco_str_of(n, "status")), when, iso,
               role_why(peers, jaco_u64_of(n, "id"), jaco_str_of(n, "role")));
    }
    jaco_reply_free(&r);
    return 0;
}

static int raft_list_peers(void)
{
    struct reply r = status_call();
    const msgpack_object *peers = peers_of(r.result);
    uint32_t i;
    if (jaco_json_output) {
        return print_json_list(&r, peers);
    }
    printf("%-16s %-20s %-22s %-12s %s\n", "Node", "ID", "Address", "State",
           "Voter");
    for (i = 0; peers != NULL && i < peers->via.array.size; i++) {
        const msgpack_object *p = &peers->via.array.ptr[i];
        printf("%-16s %-20" PRIu64 " %-22s %-12s %s\n",
               jaco_str_of(p, "name")[0] != '\0' ? jaco_str_of(p, "name") : "?",
               jaco_u64_of(p, "id"), jaco_str_of(p, "address"),
               jaco_str_of(p, "state"), bool_of(p, "voter") ? "true" : "false");
    }
    jaco_reply_free(&r);
    return 0;
}

static int node_label(int argc, char **argv, bool unset)
{
    msgpack_sbuffer args;
    msgpack_packer pk;
    struct reply r;
    int i;
    if (argc < 2) {
        fprintf(stderr, "usage: jaco node %s NAME %s...\n",
                unset ? "unlabel" : "label", unset ? "KEY" : "KEY=VALUE");
        return EXIT_USAGE;
    }
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    jd_mp_kv_str(&pk, "node", argv[0]);
    jd_mp_key(&pk, "set");
    if (unset) {
        msgpack_pack_map(&pk, 0);
        jd_mp_key(&pk, "unset");
        msgpack_pack_array(&pk, (size_t)(argc - 1));
        for (i = 1; i < argc; i++) {
            if (strchr(argv[i], '=') != NULL) {
                fprintf(stderr, "jaco: node unlabel takes keys, not %s\n",
                        argv[i]);
                return EXIT_USAGE;
            }
            jd_mp_str(&pk, argv[i]);
        }
    } else {
        msgpack_pack_map(&pk, (size_t)(argc - 1));
        for (i = 1; i < argc; i++) {
            char *eq = strchr(argv[i], '=');
            if (eq == NULL || eq == argv[i]) {
                fprintf(stderr, "jaco: %s is not KEY=VALUE\n", argv[i]);
                return EXIT_USAGE;
            }
            *eq = '\0';
            jd_mp_kv_str(&pk, argv[i], eq + 1);
            *eq = '=';
        }
        jd_mp_key(&pk, "unset");
        msgpack_pack_array(&pk, 0);
    }
    call("node.label", &args, &r);
    msgpack_sbuffer_destroy(&args);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        jaco_fail_reply(&r);
    }
    if (jaco_json_output) {
        printf("{\"code\":\"ok\"}\n");
    } else {
        printf("%s: labels %s\n", argv[0], unset ? "removed" : "set");
    }
    jaco_reply_free(&r);
    return 0;
}

/* 90s, 15m, 2h, 7d, or plain seconds; -1 if malformed. */
int64_t jaco_parse_duration_ms(const char *s)
{
    char *end;
    unsigned long long v;
    int64_t unit = 1000;
    if (*s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || v > 100000000ull) {
        return -1;
    }
    if (*end != '\0') {
        switch (*end) {
            case 's': unit = 1000; break;
            case 'm': unit = 60 * 1000; break;
            case 'h': unit = 3600 * 1000; break;
            case 'd': unit = 86400 * 1000; break;
            default: return -1;
        }
        if (end[1] != '\0') {
            return -1;
        }
    }
    return (int64_t)v * unit;
}

static void print_utc(FILE *out, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    if (gmtime_r(&t, &tm) != NULL &&
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0) {
        fputs(buf, out);
    }
}

static int issue_join_token(int argc, char **argv)
{
    msgpack_sbuffer args;
    msgpack_packer pk;
    struct reply r;
    int64_t ttl_ms = 3600 * 1000;
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "usage: jaco node issue-join-token [--ttl DURATION]\n");
        return EXIT_USAGE;
    }
    if (verb_ttl != NULL) {
        ttl_ms = jaco_parse_duration_ms(verb_ttl);
        if (ttl_ms < 1000 || ttl_ms > 30LL * 86400 * 1000) {
            fprintf(stderr,
                    "jaco: --ttl %s: want 1s to 30d (90s, 15m, 2h, 7d)\n",
                    verb_ttl);
            return EXIT_USAGE;
        }
    }
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    jd_mp_key(&pk, "ttl_s");
    msgpack_pack_uint64(&pk, (uint64_t)(ttl_ms / 1000));
    call("node.issue_join_token", &args, &r);
    msgpack_sbuffer_destroy(&args);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        jaco_fail_reply(&r);
    }
    if (jaco_json_output) {
        jaco_print_json(stdout, r.result);
        putchar('\n');
    } else {
        /* The token alone on stdout, so TOKEN=$(jaco node ...) works. */
        printf("%s\n", jaco_str_of(r.result, "token"));
        fprintf(stderr, "single use, valid until ");
        print_utc(stderr, jaco_i64_of(r.result, "expires_ms"));
        fprintf(stderr,
                "; treat it like a password. On the new host, with "
                "jacod running uninitialised: jaco node join TOKEN\n");
    }
    jaco_reply_free(&r);
    return 0;
}

static int node_join(int argc, char **argv)
{
    msgpack_sbuffer args;
    msgpack_packer pk;
    struct reply r;
    if (argc != 1 || argv[0][0] == '-') {
        fprintf(stderr, "usage: jaco node join TOKEN\n");
        return EXIT_USAGE;
    }
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    jd_mp_kv_str(&pk, "token", argv[0]);
    call("node.join", &args, &r);
    msgpack_sbuffer_destroy(&args);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        jaco_fail_reply(&r);
    }
    if (jaco_json_output) {
        jaco_print_json(stdout, r.result);
        putchar('\n');
    } else {
        printf(
            "joined cluster %s as a standby; the leader promotes it to "
            "voter if the voter-set policy wants another (see `jaco node "
            "list`)\n",
            jaco_str_of(r.result, "cluster_id"));
    }
    jaco_reply_free(&r);
    return 0;
}

/* ---- recover: offline, on stopped nodes' data directories ---- */

static void print_info_json(const struct jr_recovery_info *in)
{
    unsigned i;
    printf("{\"data_dir\":");
    jaco_json_string(stdout, in->data_dir, strlen(in->data_dir));
    printf(",\"node_name\":");
    jaco_json_string(stdout, in->node_name, strlen(in->node_name));
    printf(",\"node_id\":\"%" PRIu64
           "\",\"cluster_id\":\"%s\","
           "\"incarnation\":%u,\"locked\":%s,\"log_read\":%s,"
           "\"term\":%" PRIu64 ",\"voted_for\":\"%" PRIu64
           "\","
           "\"snapshot_index\":%" PRIu64 ",\"snapshot_term\":%" PRIu64
           ",\"first_index\":%" PRIu64 ",\"last_index\":%" PRIu64
           ",\"last_term\":%" PRIu64 ",\"conf_index\":%" PRIu64
           ",\"peers_pending\":%s,\"partially_synced\":%s,"
           "\"configuration\":[",
           in->node_id, in->cluster_id, (unsigned)in->incarnation,
           in->locked ? "true" : "false", in->log_read ? "true" : "false",
           in->term, in->voted_for, in->snapshot_index, in->snapshot_term,
           in->first_index, in->last_index, in->last_term, in->conf_index,
           in->peers_pending ? "true" : "false",
           in->partially_synced ? "true" : "false");
    for (i = 0; i < in->n_servers; i++) {
        printf("%s{\"id\":\"%" PRIu64 "\",\"address\":", i > 0 ? "," : "",
               in->servers[i].id);
        jaco_json_string(stdout, in->servers[i].address,
                         strlen(in->servers[i].address));
        printf(",\"role\":\"%s\"}", jr_role_name(in->servers[i].role));
    }
    printf("]}");
}

static void print_info_table(const struct jr_recovery_info *in)
{
    unsigned i;
    printf("Data directory: %s%s\n", in->data_dir,
           in->locked ? "  (LOCKED: a running node holds it; its log was "
                        "not read: stop it first)"
                      : "");
    printf("Node:           %s (id %" PRIu64 ")\n",
           in->node_name[0] != '\0' ? in->node_name : "?", in->node_id);
    printf("Cluster:        %s (incarnation %u)\n",
           in->cluster_id[0] != '\0' ? in->cluster_id : "(none)",
           (unsigned)in->incarnation);
    printf("Term:           %" PRIu64 " (voted for %" PRIu64 ")\n", in->term,
           in->voted_for);
    printf("Last entry:     index %" PRIu64 ", term %" PRIu64 "%s\n",
           in->last_index, in->last_term,
           in->log_read ? "" : " (from the snapshot only)");
    printf("Snapshot:       index %" PRIu64 ", term %" PRIu64 "\n",
           in->snapshot_index, in->snapshot_term);
    printf("Configuration (index %" PRIu64 "):\n", in->conf_index);
    for (i = 0; i < in->n_servers; i++) {
        printf("  %-20" PRIu64 " %-22s %s\n", in->servers[i].id,
               in->servers[i].address, jr_role_name(in->servers[i].role));
    }
    if (in->peers_pending) {
        printf("peers.json:     waiting to be applied at the next start\n");
    }
    if (in->partially_synced) {
        printf(
            "PARTIALLY SYNCED: a snapshot install did not complete; the "
            "next start moves\n                the log aside and re-syncs "
            "from the leader\n");
    }
}

/* The survivor whose log a forced recovery should keep: highest last
 * term, then highest last index (Raft's up-to-date rule). */
static bool more_recent(const struct jr_recovery_info *a,
                        const struct jr_recovery_info *b)
{
    return a->last_term > b->last_term ||
           (a->last_term == b->last_term && a->last_index > b->last_index);
}

static int recover_inspect(int argc, char **argv)
{
    struct jr_recovery_info *infos;
    struct jr_error err;
    const char *dirs[JR_RECOVERY_MAX_SERVERS];
    unsigned n = 0, i, best = 0;
    int k, failed = 0;
    for (k = 0; k < argc; k++) {
        if (strcmp(argv[k], "--data-dir") == 0 && k + 1 < argc) {
            dirs[n++] = argv[++k];
        } else if (strncmp(argv[k], "--data-dir=", 11) == 0) {
            dirs[n++] = argv[k] + 11;
        } else if (argv[k][0] == '-') {
            fprintf(stderr, "jaco: recover inspect: unknown option %s\n",
                    argv[k]);
            return EXIT_USAGE;
        } else {
            dirs[n++] = argv[k];
        }
        if (n == JR_RECOVERY_MAX_SERVERS) {
            break;
        }
    }
    if (n == 0) {
        fprintf(stderr,
                "usage: jaco recover inspect [--data-dir] DIR [DIR...]\n");
        return EXIT_USAGE;
    }
    infos = calloc(n, sizeof *infos);
    if (infos == NULL) {
        return EXIT_FAILED;
    }
    for (i = 0; i < n; i++) {
        memset(&err, 0, sizeof err);
        if (jr_recover_inspect(dirs[i], &infos[i], &err) != 0) {
            fprintf(stderr, "Error{code: %s, message: ", jr_err_slug(err.code));
            jaco_json_string(stderr, err.message, strlen(err.message));
            fprintf(stderr, "}\n");
            free(infos);
            return EXIT_FAILED;
        }
        if (i > 0 && more_recent(&infos[i], &infos[best])) {
            best = i;
        }
    }
    for (i = 0; i < n && n > 1; i++) {
        if (strcmp(infos[i].cluster_id, infos[0].cluster_id) != 0 ||
            infos[i].incarnation != infos[0].incarnation) {
            failed = 1;
        }
    }
    if (jaco_json_output) {
        printf("{\"nodes\":[");
        for (i = 0; i < n; i++) {
            if (i > 0) {
                putchar(',');
            }
            print_info_json(&infos[i]);
        }
        printf("]");
        if (n > 1) {
            printf(",\"most_recent\":");
            jaco_json_string(stdout, infos[best].data_dir,
                             strlen(infos[best].data_dir));
            printf(
                ",\"same_cluster\":%s,\"implicitly_committed\":{"
                "\"from\":%" PRIu64 ",\"to\":%" PRIu64 "}",
                failed ? "false" : "true", infos[best].snapshot_index + 1,
                infos[best].last_index);
        }
        printf("}\n");
    } else {
        for (i = 0; i < n; i++) {
            if (i > 0) {
                putchar('\n');
            }
            print_info_table(&infos[i]);
        }
        if (n > 1) {
            printf("\nMost recent log: %s (index %" PRIu64 ", term %" PRIu64
                   ")\n",
                   infos[best].data_dir, infos[best].last_index,
                   infos[best].last_term);
            if (failed) {
                printf(
                    "WARNING: these directories belong to different "
                    "clusters or incarnations: do not recover them "
                    "together\n");
            }
            printf(
                "A forced recovery from it implicitly commits entries %" PRIu64
                " to %" PRIu64
                " (everything after its snapshot that was\nnot known "
                "to be committed): writes a client was never told "
                "succeeded may then appear.\n",
                infos[best].snapshot_index + 1, infos[best].last_index);
        }
    }
    free(infos);
    return failed ? EXIT_FAILED : 0;
}

/* NAME=HOST:PORT[,ROLE] or ID=HOST:PORT[,ROLE]: a name maps to jacod's
 * id for it, digits are the id itself. */
static int parse_peer_arg(char *arg, struct jr_recovery_server *s)
{
    char *eq = strchr(arg, '='), *comma, *end;
    if (eq == NULL || eq == arg) {
        return -1;
    }
    *eq = '\0';
    if (strspn(arg, "0123456789") == strlen(arg)) {
        errno = 0;
        s->id = strtoull(arg, &end, 10);
        if (errno != 0 || s->id == 0) {
            return -1;
        }
    } else {
        s->id = jd_node_id_of_name(arg);
    }
    comma = strchr(eq + 1, ',');
    s->role = JR_ROLE_VOTER;
    if (comma != NULL) {
        *comma = '\0';
        if (strcmp(comma + 1, "standby") == 0) {
            s->role = JR_ROLE_STANDBY;
        } else if (strcmp(comma + 1, "spare") == 0) {
            s->role = JR_ROLE_SPARE;
        } else if (strcmp(comma + 1, "voter") != 0) {
            return -1;
        }
    }
    if (strlen(eq + 1) >= sizeof s->address) {
        return -1;
    }
    snprintf(s->address, sizeof s->address, "%s", eq + 1);
    return 0;
}

/* write-peers and force-new-cluster. */
static int recover_write(int argc, char **argv, bool force_new)
{
    struct jr_recovery_server servers[JR_RECOVERY_MAX_SERVERS];
    const char *dir = NULL;
    char text[16384];
    struct jr_error err;
    unsigned n = 0, flags = 0;
    int k, rv;
    const char *usage_text =
        force_new ? "usage: jaco recover force-new-cluster --data-dir DIR "
                    "[--dry-run]\n"
                  : "usage: jaco recover write-peers --data-dir DIR --peer "
                    "NAME=HOST:PORT[,ROLE] ... [--dry-run]\n";
    for (k = 0; k < argc; k++) {
        if (strcmp(argv[k], "--data-dir") == 0 && k + 1 < argc) {
            dir = argv[++k];
        } else if (strcmp(argv[k], "--dry-run") == 0) {
            flags |= JR_RECOVER_DRY_RUN;
        } else if (!force_new && strcmp(argv[k], "--peer") == 0 &&
                   k + 1 < argc && n < JR_RECOVERY_MAX_SERVERS) {
            if (parse_peer_arg(argv[++k], &servers[n]) != 0) {
                fprintf(stderr,
                        "jaco: --peer %s: want NAME=HOST:PORT or "
                        "ID=HOST:PORT, optionally ,standby or ,spare\n",
                        argv[k]);
                return EXIT_USAGE;
            }
            n++;
        } else if (strcmp(argv[k], "-h") == 0 ||
                   strcmp(argv[k], "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else {
            fprintf(stderr, "jaco: unexpected argument %s\n%s", argv[k],
                    usage_text);
            return EXIT_USAGE;
        }
    }
    if (dir == NULL || (!force_new && n == 0)) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    memset(&err, 0, sizeof err);
    text[0] = '\0';
    rv = force_new
             ? jr_recover_force_new_cluster(dir, flags, text, sizeof text, &err)
             : jr_recover_write_peers(dir, servers, n, flags, text, sizeof text,
                                      &err);
    if (rv != 0) {
        fprintf(stderr, "Error{code: %s, message: ", jr_err_slug(rv));
        jaco_json_string(stderr, err.message, strlen(err.message));
        fprintf(stderr, "}\n");
        if (rv == JR_ELOCKED) {
            fprintf(stderr,
                    "hint: stop jacod on this host first "
                    "(systemctl stop jacod)\n");
        }
        return EXIT_FAILED;
    }
    if ((flags & JR_RECOVER_DRY_RUN) != 0) {
        printf("would write %s/raft/peers.json:\n%s\n", dir, text);
    } else {
        printf("wrote %s/raft/peers.json:\n%s\n", dir, text);
        printf(
            "At its next start the node forces this configuration, moves "
            "to the next\nincarnation of its cluster and takes every "
            "entry of its log as committed.\nGive every survivor an "
            "identical file before starting any of them.\n");
    }
    return 0;
}

static int recover_cmd(int argc, char **argv)
{
    int k;
    for (k = 1; k < argc; k++) {
        if (strcmp(argv[k], "-o") == 0 && k + 1 < argc) {
            jaco_json_output = strcmp(argv[k + 1], "json") == 0;
            memmove(argv + k, argv + k + 2,
                    (size_t)(argc - k - 2) * sizeof *argv);
            argc -= 2;
            k--;
        }
    }
    if (argc >= 2 && strcmp(argv[1], "inspect") == 0) {
        return recover_inspect(argc - 2, argv + 2);
    }
    if (argc >= 2 && strcmp(argv[1], "write-peers") == 0) {
        return recover_write(argc - 2, argv + 2, false);
    }
    if (argc >= 2 && strcmp(argv[1], "force-new-cluster") == 0) {
        return recover_write(argc - 2, argv + 2, true);
    }
    fprintf(stderr,
            "usage: jaco recover inspect [--data-dir] DIR [DIR...]\n"
            "       jaco recover write-peers --data-dir DIR --peer "
            "NAME=HOST:PORT[,ROLE] ... [--dry-run]\n"
            "       jaco recover force-new-cluster --data-dir DIR "
            "[--dry-run]\n"
            "(on stopped nodes' data directories; no jacod needed; see "
            "jaco-recovery(7))\n");
    return EXIT_USAGE;
}

static int snapshot_cmd(int argc)
{
    struct reply r;
    if (argc != 1) {
        fprintf(stderr, "usage: jaco snapshot\n");
        return EXIT_USAGE;
    }
    call("node.snapshot", NULL, &r);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        jaco_fail_reply(&r);
    }
    if (jaco_json_output) {
        jaco_print_json(stdout, r.result);
        putchar('\n');
    } else {
        printf("snapshot taken at index %" PRIu64
               "; the log before it is compacted\n",
               jaco_u64_of(r.result, "index"));
    }
    jaco_reply_free(&r);
    return 0;
}

static int audit_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},
        {"since", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        /* the global ones, also accepted after the verb */
        {"output", required_argument, NULL, 'o'},
        {"consistent", no_argument, NULL, 'c'},
        {"socket", required_argument, NULL, 'S'},
        {"server", required_argument, NULL, 'X'},
        {"secret-file", required_argument, NULL, 'K'},
        {NULL, 0, NULL, 0},
    };
    const char *type = "";
    int64_t since = 0;
    msgpack_sbuffer args;
    msgpack_packer pk;
    struct reply r;
    uint32_t i;
    int opt;
    optind = 0; /* 0, not 1: GNU getopt re-initialises only then */
    while ((opt = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (opt) {
            case 't': type = optarg; break;
            case 'o':
                if (strcmp(optarg, "json") != 0 &&
                    strcmp(optarg, "table") != 0) {
                    fprintf(stderr, "jaco: -o %s: use table or json\n", optarg);
                    return EXIT_USAGE;
                }
                jaco_json_output = strcmp(optarg, "json") == 0;
                break;
            case 'c': jaco_consistent = true; break;
            case 'S': socket_path = optarg; break;
            case 'X': server_address = optarg; break;
            case 'K': jaco_secret_file = optarg; break;
            case 's': {
                int64_t d = jaco_parse_duration_ms(optarg);
                if (d < 0) {
                    fprintf(stderr,
                            "jaco: --since %s: not a duration (90s, 15m, "
                            "2h, 7d)\n",
                            optarg);
                    return EXIT_USAGE;
                }
                since = now_ms() - d;
                break;
            }
            case 'h':
                printf(
                    "usage: jaco audit [--type TYPE] [--since DURATION]\n"
                    "types: node.joined node.status node.address "
                    "node.role node.renamed node.label node.unlabel "
                    "node.removed leader.changed\n");
                return 0;
            default: return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "jaco: audit: unexpected argument %s\n", argv[optind]);
        return EXIT_USAGE;
    }
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    jd_mp_kv_str(&pk, "type", type);
    jd_mp_key(&pk, "since_ms");
    msgpack_pack_int64(&pk, since);
    jd_mp_key(&pk, "consistent");
    if (jaco_consistent) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    call("audit", &args, &r);
    msgpack_sbuffer_destroy(&args);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        jaco_fail_reply(&r);
    }
    if (jaco_json_output) {
        jaco_print_json(stdout, r.result);
        putchar('\n');
        jaco_reply_free(&r);
        return 0;
    }
    printf("%-24s %-16s %-14s %-34s %s\n", "TIME (UTC)", "TYPE", "NODE", "WHO",
           "DETAILS");
    for (i = 0; r.result != NULL && r.result->type == MSGPACK_OBJECT_ARRAY &&
                i < r.result->via.array.size;
         i++) {
        const msgpack_object *e = &r.result->via.array.ptr[i];
        int64_t ms = jaco_i64_of(e, "time_ms");
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        char when[32];
        gmtime_r(&secs, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        printf("%s.%03dZ %-16s %-14s %-34s %s\n", when, (int)(ms % 1000),
               jaco_str_of(e, "type"), jaco_str_of(e, "node"),
               jaco_str_of(e, "who"), jaco_str_of(e, "details"));
    }
    jaco_reply_free(&r);
    return 0;
}

/* ---- membership: node remove, raft remove-peer, cluster
 * transfer-leader ---- */

/* A global option seen by a verb's getopt: -1 handled, else the exit
 * status. */
static int verb_global(int opt)
{
    switch (opt) {
        case 'o':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "table") != 0) {
                fprintf(stderr, "jaco: -o %s: use table or json\n", optarg);
                return EXIT_USAGE;
            }
            jaco_json_output = strcmp(optarg, "json") == 0;
            return -1;
        case 'c': jaco_consistent = true; return -1;
        case 'S': socket_path = optarg; return -1;
        case 'X': server_address = optarg; return -1;
        case 'K': jaco_secret_file = optarg; return -1;
        default: return EXIT_USAGE;
    }
}

/* Hints for the refusals of a removal or transfer, by what the message
 * says; NULL for the code's own. */
static const char *membership_hint(const struct reply *r, const char *name)
{
    static char buf[256];
    if (strcmp(r->code, "wrong_state") == 0 &&
        strstr(r->message, "force") != NULL) {
        snprintf(buf, sizeof buf,
                 "the node is not reachable; if it is gone for good, remove "
                 "it with `jaco node remove --force %s`",
                 name);
        return buf;
    }
    if (strcmp(r->code, "wrong_state") == 0 &&
        strstr(r->message, "last voter") != NULL) {
        return "a cluster keeps at least one voter";
    }
    if (strcmp(r->code, "wrong_state") == 0 &&
        strstr(r->message, "caught up") != NULL) {
        return "retry in a few seconds, or name another voter (`jaco raft "
               "list-peers`)";
    }
    if (strcmp(r->code, "quorum_lost") == 0 &&
        strstr(r->message, "remaining voters") != NULL) {
        return "the voters left would not have a reachable majority: bring "
               "the unreachable voters back first, or remove them with "
               "--force. See jaco-recovery(7), QUORUM LOST";
    }
    if (strcmp(r->code, "quorum_lost") == 0) {
        return "without a majority of the voters the configuration cannot "
               "change; see jaco-recovery(7), QUORUM LOST";
    }
    if (strcmp(r->code, "busy") == 0) {
        return "another membership change or leadership transfer is in "
               "progress; retry in a few seconds";
    }
    return NULL;
}

static void print_ok_result(struct reply *r, const char *text)
{
    if (jaco_json_output) {
        if (r->result != NULL) {
            jaco_print_json(stdout, r->result);
        } else {
            printf("{}");
        }
        putchar('\n');
    } else {
        printf("%s\n", text);
    }
    jaco_reply_free(r);
}

static int node_remove(int argc, char **argv)
{
    static const struct option opts[] = {
        {"force", no_argument, NULL, 'f'},
        /* the global ones, also accepted after the verb */
        {"output", required_argument, NULL, 'o'},
        {"consistent", no_argument, NULL, 'c'},
        {"socket", required_argument, NULL, 'S'},
        {"server", required_argument, NULL, 'X'},
        {"secret-file", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool force = false;
    msgpack_sbuffer args;
    msgpack_packer pk;
    struct reply r;
    char text[256];
    const char *name;
    int opt, rv;
    optind = 0; /* 0, not 1: GNU getopt re-initialises only then */
    while ((opt = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (opt == 'f') {
            force = true;
        } else if (opt == 'h') {
            printf(
                "usage: jaco node remove [--force] NAME\n"
                "Remove a node from the cluster: a leader hands over "
                "leadership first.\n"
                "--force removes a node that cannot be reached (gone for "
                "good).\n");
            return 0;
        } else if ((rv = verb_global(opt)) >= 0) {
            return rv;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "usage: jaco node remove [--force] NAME\n");
        return EXIT_USAGE;
    }
    name = argv[optind];
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    jd_mp_kv_str(&pk, "node", name);
    jd_mp_key(&pk, "force");
    if (force) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    call("node.remove", &args, &r);
    msgpack_sbuffer_destroy(&args);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        jaco_fail_reply_hint(&r, membership_hint(&r, name));
    }
    snprintf(text, sizeof text, "%s: removed%s", name,
             force ? " (forced)" : "");
    print_ok_result(&r, text);
    return 0;
}

static int raft_remove_peer(int argc, char **argv)
{
    static const struct option opts[] = {
        {"peer-id", required_argument, NULL, 'p'},
        /* the global ones, also accepted after the verb */
        {"output", required_argument, NULL, 'o'},
        {"consistent", no_argument, NULL, 'c'},
        {"socket", required_argument, NULL, 'S'},
        {"server", required_argument, NULL, 'X'},
        {"secret-file", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *peer = NULL;
    msgpack_sbuffer args;
    msgpack_packer pk;
    struct reply r;
    char text[128], *end;
    unsigned long long id;
    int opt, rv;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (opt == 'p') {
            peer = optarg;
        } else if (opt == 'h') {
            printf(
                "usage: jaco raft remove-peer --peer-id ID\n"
                "Remove the Raft peer with this id (see `jaco raft "
                "list-peers`), reachable or not.\n");
            return 0;
        } else if ((rv = verb_global(opt)) >= 0) {
            return rv;
        }
    }
    if (peer == NULL || optind != argc) {
        fprintf(stderr, "usage: jaco raft remove-peer --peer-id ID\n");
        return EXIT_USAGE;
    }
    errno = 0;
    id = strtoull(peer, &end, 10);
    if (*peer < '0' || *peer > '9' || *end != '\0' || errno != 0 || id == 0) {
        fprintf(stderr,
                "jaco: --peer-id %s: not a Raft id (the ID column of `jaco "
                "raft list-peers`)\n",
                peer);
        return EXIT_USAGE;
    }
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    jd_mp_key(&pk, "id");
    msgpack_pack_uint64(&pk, id);
    call("raft.remove_peer", &args, &r);
    msgpack_sbuffer_destroy(&args);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        if (strcmp(r.code, "not_found") == 0) {
            jaco_fail_reply_hint(&r, "`jaco raft list-peers` shows the ids");
        }
        jaco_fail_reply_hint(&r, membership_hint(&r, peer));
    }
    snprintf(text, sizeof text, "peer %llu: removed", id);
    print_ok_result(&r, text);
    return 0;
}

static int cluster_transfer_leader(int argc, char **argv)
{
    static const struct option opts[] = {
        /* the global ones, also accepted after the verb */
        {"output", required_argument, NULL, 'o'},
        {"consistent", no_argument, NULL, 'c'},
        {"socket", required_argument, NULL, 'S'},
        {"server", required_argument, NULL, 'X'},
        {"secret-file", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    msgpack_sbuffer args;
    msgpack_packer pk;
    struct reply r;
    char text[256];
    const char *name = "";
    int opt, rv;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (opt == 'h') {
            printf(
                "usage: jaco cluster transfer-leader [NAME]\n"
                "Hand leadership to the voter NAME, or to the most "
                "caught-up voter.\n");
            return 0;
        }
        if ((rv = verb_global(opt)) >= 0) {
            return rv;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "usage: jaco cluster transfer-leader [NAME]\n");
        return EXIT_USAGE;
    }
    if (argc - optind == 1) {
        name = argv[optind];
    }
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    jd_mp_kv_str(&pk, "node", name);
    call("cluster.transfer_leader", &args, &r);
    msgpack_sbuffer_destroy(&args);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        jaco_fail_reply_hint(&r, membership_hint(&r, name));
    }
    snprintf(text, sizeof text, "leader: %s",
             r.result != NULL ? jaco_str_of(r.result, "leader") : name);
    print_ok_result(&r, text);
    return 0;
}

static bool wants_help(int argc, char **argv)
{
    int i;
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return true;
        }
    }
    return false;
}

/* The global options, before the verb or after it (`jaco node list -o
 * json`). With stop_at_verb, parsing stops at the first non-option; else
 * getopt moves the verb's own arguments to the end (from optind). Returns
 * -1 to go on, or the exit status. */
static int parse_globals(int argc, char **argv, bool stop_at_verb)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 'S'},
        {"server", required_argument, NULL, 's'},
        {"secret-file", required_argument, NULL, 'K'},
        {"output", required_argument, NULL, 'o'},
        {"consistent", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        /* verbs' own options, checked by the verb */
        {"ttl", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, stop_at_verb ? "+o:h" : "o:h", opts,
                              NULL)) != -1) {
        switch (opt) {
            case 'S': socket_path = optarg; break;
            case 's': server_address = optarg; break;
            case 'K': jaco_secret_file = optarg; break;
            case 'o':
                if (strcmp(optarg, "json") == 0) {
                    jaco_json_output = true;
                } else if (strcmp(optarg, "table") == 0) {
                    jaco_json_output = false;
                } else {
                    fprintf(stderr, "jaco: -o %s: use table or json\n", optarg);
                    return EXIT_USAGE;
                }
                break;
            case 'c': jaco_consistent = true; break;
            case 'T':
                if (stop_at_verb) {
                    usage(stderr);
                    return EXIT_USAGE;
                }
                verb_ttl = optarg;
                break;
            case 'h': usage(stdout); return 0;
            default: usage(stderr); return EXIT_USAGE;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    const char *noun, *verb;
    int rv;
    if ((rv = parse_globals(argc, argv, true)) >= 0) {
        return rv;
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    noun = argv[0];
    if (strcmp(noun, "audit") == 0) {
        return audit_cmd(argc, argv);
    }
    if (strcmp(noun, "recover") == 0) {
        return recover_cmd(argc, argv);
    }
    if (strcmp(noun, "backup") == 0) {
        return jaco_backup_cmd(argc, argv);
    }
    if (strcmp(noun, "restore") == 0) {
        return jaco_restore_cmd(argc, argv);
    }
    if (strcmp(noun, "apply") == 0) {
        return jaco_apply_cmd(argc, argv);
    }
    if (strcmp(noun, "status") == 0) {
        return jaco_status_cmd(argc, argv);
    }
    if (strcmp(noun, "delete") == 0) {
        return jaco_delete_cmd(argc, argv);
    }
    /* Verbs with options of their own parse the global ones too. */
    if (argc > 1 && strcmp(noun, "node") == 0 &&
        strcmp(argv[1], "remove") == 0) {
        return node_remove(argc - 1, argv + 1);
    }
    if (argc > 1 && strcmp(noun, "raft") == 0 &&
        strcmp(argv[1], "remove-peer") == 0) {
        return raft_remove_peer(argc - 1, argv + 1);
    }
    if (argc > 1 && strcmp(noun, "cluster") == 0 &&
        strcmp(argv[1], "transfer-leader") == 0) {
        return cluster_transfer_leader(argc - 1, argv + 1);
    }
    if (wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    /* Global options among the verb's words; argv[0] is the noun, which
     * getopt skips. */
    optind = 0; /* 0, not 1: GNU getopt re-initialises only then */
    if ((rv = parse_globals(argc, argv, false)) >= 0) {
        return rv;
    }
    /* getopt has moved the noun's words after the options: keep only
     * them. */
    argv[optind - 1] = argv[0];
    argc -= optind - 1;
    argv += optind - 1;
    verb = argc > 1 ? argv[1] : "";
    if (verb_ttl != NULL &&
        (strcmp(noun, "node") != 0 || strcmp(verb, "issue-join-token") != 0)) {
        fprintf(stderr, "jaco: --ttl is an option of node issue-join-token\n");
        return EXIT_USAGE;
    }
    if (strcmp(noun, "cluster") == 0 && strcmp(verb, "status") == 0 &&
        argc == 2) {
        return cluster_status();
    }
    if (strcmp(noun, "node") == 0 && strcmp(verb, "list") == 0 && argc == 2) {
        return node_list();
    }
    if (strcmp(noun, "node") == 0 && strcmp(verb, "label") == 0) {
        return node_label(argc - 2, argv + 2, false);
    }
    if (strcmp(noun, "node") == 0 && strcmp(verb, "unlabel") == 0) {
        return node_label(argc - 2, argv + 2, true);
    }
    if (strcmp(noun, "node") == 0 && strcmp(verb, "issue-join-token") == 0) {
        return issue_join_token(argc - 2, argv + 2);
    }
    if (strcmp(noun, "node") == 0 && strcmp(verb, "join") == 0) {
        return node_join(argc - 2, argv + 2);
    }
    if (strcmp(noun, "snapshot") == 0) {
        return snapshot_cmd(argc);
    }
    if (strcmp(noun, "raft") == 0 && strcmp(verb, "list-peers") == 0 &&
        argc == 2) {
        return raft_list_peers();
    }
    fprintf(stderr, "jaco: unknown command: %s%s%s (see jaco --help)\n", noun,
            verb[0] != '\0' ? " " : "", verb);
    return EXIT_USAGE;
}

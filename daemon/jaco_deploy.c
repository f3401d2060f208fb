/* jaco_deploy.c: jaco's deployment verbs: apply (a YAML manifest, checked
 * here first so that errors name its file and line), status (every
 * replica's host and state, followed with -w until they converge) and
 * delete. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deploy.h"
#include "jaco.h"
#include "manifest.h"
#include "mp.h"
#include "proto.h"

static const char apply_usage[] =
    "usage: jaco apply -f FILE [--dry-run]\n"
    "  create or replace the deployments of a manifest (jaco.yaml(5)); each\n"
    "  gets its next revision, and its replicas restart with it. FILE - is\n"
    "  standard input. --dry-run: check the manifest, change nothing.\n";
static const char status_usage[] =
    "usage: jaco status [-w] [--timeout DURATION] [DEPLOYMENT[/SERVICE]]\n"
    "  every replica: host, attempts, revision, pid and state (pending,\n"
    "  starting, running, failed, stopped) with its reason. -w follows the\n"
    "  changes until every replica is running or failed (exit 0 if all\n"
    "  run, 1 if any failed or --timeout passed).\n";
/* An error reply of the deployment verbs: not_found is about
 * deployments here, not nodes. */
static void fail(struct reply *r)
{
    jaco_fail_reply_hint(r, strcmp(r->code, JD_CODE_NOT_FOUND) == 0
                                ? "`jaco status` lists the deployments"
                                : NULL);
}

static const char delete_usage[] =
    "usage: jaco delete DEPLOYMENT\n"
    "  stop every replica of a deployment and forget it.\n";

/* Take -o FMT and the connection options out of argv (argv[0], the verb,
 * stays); -1 to go on, else the exit status. */
static int common_options(int *argc, char **argv, const char *usage)
{
    int k, out = 1;
    for (k = 1; k < *argc; k++) {
        const char *v = k + 1 < *argc ? argv[k + 1] : NULL;
        if (strcmp(argv[k], "-h") == 0 || strcmp(argv[k], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if ((strcmp(argv[k], "-o") == 0 || strcmp(argv[k], "--output") == 0) &&
            v != NULL) {
            if (strcmp(v, "json") != 0 && strcmp(v, "table") != 0) {
                fprintf(stderr, "jaco: -o %s: use table or json\n", v);
                return EXIT_USAGE;
            }
            jaco_json_output = strcmp(v, "json") == 0;
            k++;
        } else if (v != NULL && jaco_set_connection(argv[k], v)) {
            k++;
        } else if (strcmp(argv[k], "--consistent") == 0) {
            jaco_consistent = true;
        } else {
            argv[out++] = argv[k];
        }
    }
    *argc = out;
    return -1;
}

/* ---- apply ---- */

int jaco_apply_cmd(int argc, char **argv)
{
    struct jd_deployment **deps;
    const char *file = NULL;
    bool dry_run = false;
    msgpack_sbuffer args;
    msgpack_packer pk;
    struct reply r;
    char err[1024];
    unsigned i, n;
    int k, rv, fd;
    if ((rv = common_options(&argc, argv, apply_usage)) >= 0) {
        return rv;
    }
    for (k = 1; k < argc; k++) {
        if ((strcmp(argv[k], "-f") == 0 || strcmp(argv[k], "--file") == 0) &&
            k + 1 < argc) {
            file = argv[++k];
        } else if (strcmp(argv[k], "--dry-run") == 0) {
            dry_run = true;
        } else {
            fprintf(stderr, "jaco: apply: unexpected argument %s\n%s", argv[k],
                    apply_usage);
            return EXIT_USAGE;
        }
    }
    if (file == NULL) {
        fputs(apply_usage, stderr);
        return EXIT_USAGE;
    }
    if (jd_manifest_load(file, &deps, &n, err, sizeof err) != 0) {
        fprintf(stderr, "jaco: %s\n", err);
        fprintf(stderr,
                "hint: nothing was applied; jaco.yaml(5) has the "
                "format\n");
        return EXIT_FAILED;
    }
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    jd_mp_key(&pk, "deployments");
    msgpack_pack_array(&pk, n);
    for (i = 0; i < n; i++) {
        jd_deployment_pack(&pk, deps[i]);
    }
    jd_mp_key(&pk, "dry_run");
    if (dry_run) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    if (args.size > JD_MAX_REQUEST) {
        fprintf(stderr,
                "jaco: %s: %zu bytes once encoded, more than the %u a "
                "request may hold: split it into several files\n",
                file, args.size, JD_MAX_REQUEST);
        msgpack_sbuffer_destroy(&args);
        jd_manifest_free(deps, n);
        return EXIT_FAILED;
    }
    fd = jaco_connect();
    jaco_call_on(fd, "deploy.apply", &args, &r);
    msgpack_sbuffer_destroy(&args);
    close(fd);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        jd_manifest_free(deps, n);
        fail(&r);
    }
    if (jaco_json_output) {
        jaco_print_json(stdout, r.result);
        printf("\n");
    } else {
        const msgpack_object *revs = jd_mp_get(r.result, "revisions");
        for (i = 0; i < n; i++) {
            if (dry_run) {
                printf(
                    "deployment %s: valid (%u service(s); not applied: "
                    "--dry-run)\n",
                    deps[i]->name, deps[i]->n_services);
            } else {
                printf("deployment %s: revision %" PRIu64 "\n", deps[i]->name,
                       jaco_u64_of(revs, deps[i]->name));
            }
        }
    }
    jaco_reply_free(&r);
    jd_manifest_free(deps, n);
    return 0;
}

/* ---- delete ---- */

int jaco_delete_cmd(int argc, char **argv)
{
    msgpack_sbuffer args;
    msgpack_packer pk;
    struct reply r;
    int rv, fd;
    if ((rv = common_options(&argc, argv, delete_usage)) >= 0) {
        return rv;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fputs(delete_usage, stderr);
        return EXIT_USAGE;
    }
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    jd_mp_kv_str(&pk, "name", argv[1]);
    fd = jaco_connect();
    jaco_call_on(fd, "deploy.delete", &args, &r);
    msgpack_sbuffer_destroy(&args);
    close(fd);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        fail(&r);
    }
    if (jaco_json_output) {
        printf("{\"deleted\":");
        jaco_json_string(stdout, argv[1], strlen(argv[1]));
        printf("}\n");
    } else {
        printf("deployment %s: deleted; its replicas stop\n", argv[1]);
    }
    jaco_reply_free(&r);
    return 0;
}

/* ---- status ---- */

struct tally {
    unsigned total, running, failed, settled;
};

static const char *node_status(const msgpack_object *nodes, const char *host)
{
    uint32_t i;
    if (nodes == NULL || nodes->type != MSGPACK_OBJECT_ARRAY) {
        return "";
    }
    for (i = 0; i < nodes->via.array.size; i++) {
        const msgpack_object *n = &nodes->via.array.ptr[i];
        if (strcmp(jaco_str_of(n, "name"), host) == 0) {
            return jaco_str_of(n, "status");
        }
    }
    return "NODE_STATUS_REMOVED";
}

static void print_replica(FILE *out,
                          const char *dep,
                          const char *svc,
                          const msgpack_object *rep,
                          const msgpack_object *nodes,
                          struct tally *t)
{
    /* jaco_str_of's buffers are few: copies. */
    char host[JD_DEP_NAME_MAX], state[16], failure[JD_FAILURE_MAX];
    char reason[JD_REASON_MAX], hs[48], name[200], pid[24], status[768];
    int64_t p = jaco_i64_of(rep, "pid");
    size_t used;
    (void)snprintf(name, sizeof name, "%s/%s/%" PRIu64, dep, svc,
                   jaco_u64_of(rep, "ordinal"));
    (void)snprintf(host, sizeof host, "%s", jaco_str_of(rep, "host"));
    (void)snprintf(state, sizeof state, "%s", jaco_str_of(rep, "state"));
    (void)snprintf(failure, sizeof failure, "%s", jaco_str_of(rep, "failure"));
    (void)snprintf(reason, sizeof reason, "%s", jaco_str_of(rep, "reason"));
    (void)snprintf(hs, sizeof hs, "%s",
                   host[0] != '\0' ? node_status(nodes, host) : "");
    t->total++;
    t->running += strcmp(state, "running") == 0;
    t->failed += strcmp(state, "failed") == 0;
    t->settled += strcmp(state, "running") == 0 || strcmp(state, "failed") == 0;
    if (p > 0) {
        (void)snprintf(pid, sizeof pid, "%" PRId64, p);
    } else {
        (void)snprintf(pid, sizeof pid, "-");
    }
    used = (size_t)snprintf(status, sizeof status, "%s", state);
    if (failure[0] != '\0' && used < sizeof status) {
        used += (size_t)snprintf(status + used, sizeof status - used, ": %s",
                                 failure);
    }
    if (reason[0] != '\0' && used < sizeof status) {
        used += (size_t)snprintf(status + used, sizeof status - used, ": %s",
                                 reason);
    }
    /* The cluster's last word on a replica of a host it cannot reach. */
    if (hs[0] != '\0' && strcmp(hs, "NODE_STATUS_READY") != 0 &&
        used < sizeof status) {
        (void)snprintf(
            status + used, sizeof status - used, " (host %s %s)", host,
            strcmp(hs, "NODE_STATUS_UNREACHABLE") == 0 ? "unreachable"
            : strcmp(hs, "NODE_STATUS_REMOVED") == 0   ? "removed"
            : strcmp(hs, "NODE_STATUS_ISOLATION_UNAVAILABLE") == 0
                ? "has no isolation"
                : "status unknown");
    }
    fprintf(out, "%-24s %-12s %-8" PRIu64 " %-4" PRIu64 " %-8s %s\n", name,
            host[0] != '\0' ? host : "-", jaco_u64_of(rep, "attempts"),
            jaco_u64_of(rep, "revision"), pid, status);
}

static void print_table(FILE *out, const msgpack_object *res, struct tally *t)
{
    const msgpack_object *deps = jd_mp_get(res, "deployments");
    const msgpack_object *nodes = jd_mp_get(res, "nodes");
    uint32_t i, s, k;
    memset(t, 0, sizeof *t);
    if (deps == NULL || deps->type != MSGPACK_OBJECT_ARRAY ||
        deps->via.array.size == 0) {
        fprintf(out, "no deployments (jaco apply -f FILE creates them)\n");
        return;
    }
    fprintf(out, "%-24s %-12s %-8s %-4s %-8s %s\n", "REPLICA", "HOST",
            "ATTEMPTS", "REV", "PID", "STATE");
    for (i = 0; i < deps->via.array.size; i++) {
        const msgpack_object *d = &deps->via.array.ptr[i];
        const msgpack_object *svcs = jd_mp_get(d, "services");
        for (s = 0; svcs != NULL && svcs->type == MSGPACK_OBJECT_ARRAY &&
                    s < svcs->via.array.size;
             s++) {
            const msgpack_object *svc = &svcs->via.array.ptr[s];
            const msgpack_object *reps = jd_mp_get(svc, "replicas");
            for (k = 0; reps != NULL && reps->type == MSGPACK_OBJECT_ARRAY &&
                        k < reps->via.array.size;
                 k++) {
                char dn[JD_DEP_NAME_MAX], sn[JD_DEP_NAME_MAX];
                (void)snprintf(dn, sizeof dn, "%s", jaco_str_of(d, "name"));
                (void)snprintf(sn, sizeof sn, "%s", jaco_str_of(svc, "name"));
                print_replica(out, dn, sn, &reps->via.array.ptr[k], nodes, t);
            }
        }
    }
    fprintf(out, "%u replica(s): %u running, %u failed, %u not settled\n",
            t->total, t->running, t->failed, t->total - t->settled);
}

static void status_args(msgpack_sbuffer *args, const char *target)
{
    char dep[JD_DEP_NAME_MAX] = "";
    const char *slash = target != NULL ? strchr(target, '/') : NULL;
    msgpack_packer pk;
    unsigned n = 1 + (target != NULL) + (slash != NULL);
    msgpack_sbuffer_init(args);
    msgpack_packer_init(&pk, args, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    jd_mp_key(&pk, "consistent");
    if (jaco_consistent) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    if (target != NULL) {
        (void)snprintf(
            dep, sizeof dep, "%.*s",
            (int)(slash != NULL ? (size_t)(slash - target) : strlen(target)),
            target);
        jd_mp_kv_str(&pk, "deployment", dep);
    }
    if (slash != NULL) {
        jd_mp_kv_str(&pk, "service", slash + 1);
    }
}

/* One status request on fd; prints it when it differs from last (which
 * it keeps: the table's text). Exits on an error reply. */
static void show(int fd,
                 const char *target,
                 struct tally *t,
                 char **last,
                 bool watching)
{
    msgpack_sbuffer args;
    struct reply r;
    char *text = NULL;
    size_t size = 0;
    FILE *mem;
    status_args(&args, target);
    jaco_call_on(fd, "deploy.status", &args, &r);
    msgpack_sbuffer_destroy(&args);
    if (strcmp(r.code, JD_CODE_OK) != 0) {
        fail(&r);
    }
    /* The table into memory first: to count, and to print only changes. */
    if ((mem = open_memstream(&text, &size)) == NULL) {
        fprintf(stderr, "jaco: out of memory\n");
        exit(EXIT_FAILED);
    }
    print_table(mem, r.result, t);
    fclose(mem);
    if (*last == NULL || strcmp(*last, text) != 0) {
        if (jaco_json_output) {
            jaco_print_json(stdout, r.result);
            printf("\n");
        } else {
            if (watching) {
                time_t now = time(NULL);
                struct tm tm;
                char when[32];
                (void)strftime(when, sizeof when, "%H:%M:%S",
                               localtime_r(&now, &tm));
                printf("%s%s\n", *last != NULL ? "\n" : "", when);
            }
            fputs(text, stdout);
        }
        fflush(stdout);
    }
    free(*last);
    *last = text;
    jaco_reply_free(&r);
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

int jaco_status_cmd(int argc, char **argv)
{
    const char *target = NULL;
    bool watch = false;
    int64_t timeout_ms = -1, deadline = 0;
    struct tally t;
    char *last = NULL;
    int k, rv, fd, wfd = -1;
    if ((rv = common_options(&argc, argv, status_usage)) >= 0) {
        return rv;
    }
    for (k = 1; k < argc; k++) {
        if (strcmp(argv[k], "-w") == 0 || strcmp(argv[k], "--watch") == 0) {
            watch = true;
        } else if (strcmp(argv[k], "--timeout") == 0 && k + 1 < argc) {
            timeout_ms = jaco_parse_duration_ms(argv[++k]);
            if (timeout_ms <= 0) {
                fprintf(stderr,
                        "jaco: --timeout %s: not a duration (90s, "
                        "15m, 2h)\n",
                        argv[k]);
                return EXIT_USAGE;
            }
        } else if (argv[k][0] != '-' && target == NULL) {
            target = argv[k];
        } else {
            fprintf(stderr, "jaco: status: unexpected argument %s\n%s", argv[k],
                    status_usage);
            return EXIT_USAGE;
        }
    }
    if (timeout_ms > 0 && !watch) {
        fprintf(stderr, "jaco: --timeout goes with -w\n");
        return EXIT_USAGE;
    }
    fd = jaco_connect();
    if (!watch) {
        show(fd, target, &t, &last, false);
        free(last);
        close(fd);
        return 0;
    }
    /* Follow: a second connection streams every change of the state. */
    {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        wfd = jaco_connect();
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 1);
        jd_mp_kv_str(&pk, "op", "watch");
        if (jd_frame_send(wfd, sb.data, sb.size) != 0) {
            fprintf(stderr, "jaco: jacod closed the connection: %s\n",
                    strerror(errno));
            return EXIT_UNREACHABLE;
        }
        msgpack_sbuffer_destroy(&sb);
    }
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    if (timeout_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        deadline =
            (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
    }
    for (;;) {
        struct pollfd p = {wfd, POLLIN, 0};
        struct timespec ts;
        int64_t now;
        show(fd, target, &t, &last, true);
        if (t.total > 0 && t.settled == t.total) {
            rv = t.failed > 0 ? EXIT_FAILED : 0;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (deadline > 0 && now >= deadline) {
            fprintf(stderr, "jaco: not settled after %" PRId64 " ms\n",
                    timeout_ms);
            rv = EXIT_FAILED;
            break;
        }
        if (interrupted) {
            rv = EXIT_FAILED;
            break;
        }
        /* A change, or a second: ages and unreachable hosts move too. */
        if (poll(&p, 1, 1000) > 0) {
            char *buf;
            size_t len;
            if (jd_frame_recv(wfd, &buf, &len, JD_MAX_REPLY) != 0) {
                fprintf(stderr, "jaco: jacod closed the watch: %s\n",
                        strerror(errno));
                rv = EXIT_UNREACHABLE;
                break;
            }
            free(buf);
        }
    }
    free(last);
    close(wfd);
    close(fd);
    return rv;
}

/* jacod: the JACO daemon. One per host: a libjacoraft node whose state
 * machine is the cluster state (state.c), the client API (server.c, api.c),
 * the supervisor that runs this host's replicas (supervisor.c), and, on the
 * leader, the observer that turns what the leader sees of its peers into
 * node statuses in that state and the scheduler that places replicas
 * (scheduler.c). Runs in the foreground and logs
 * to stderr; SIGTERM and SIGINT stop it gracefully (a leader hands over
 * leadership first), SIGHUP re-reads the configuration. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "backup_node.h"
#include "config.h"
#include "plugin.h"
#include "scheduler.h"
#include "server.h"
#include "state.h"
#include "supervisor.h"

#define OBSERVE_INTERVAL_MS 500
#define LAST_SEEN_REFRESH_MS 10000

static struct jd_config config;
static int log_level = JR_LOG_INFO;
static uv_loop_t *loop;
static int saved_argc; /* for SIGHUP */
static char **saved_argv;
static struct jr_node *node;
static struct jd_state *state;
static struct jd_server *server;
static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t observe_timer;
static struct jd_backup_node *backup_node;    /* backup-dir set */
static struct jd_plugin scheduler, isolation; /* loaded when configured */
static struct jacod_host plugin_host;
static uv_timer_t isolation_timer; /* drift checks, after a passed self-test */
static uv_work_t isolation_work;
static bool isolation_busy, isolation_checking, isolation_again;
static char isolation_state[16] = "none"; /* for the host report */
static char isolation_detail[JD_DETAIL_MAX] = "no isolation plugin configured";
static struct jd_iso_list isolation_next; /* replicas for the next check */
static bool isolation_next_set;
static struct jd_supervisor *supervisor;
static struct jd_scheduler *scheduler_loop;
static bool observe_in_flight; /* under observe_mutex */
static uv_mutex_t observe_mutex;
static struct jr_apply observe_req;
static char *observe_cmd;

static void logf_(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const char *level_name(int level)
{
    switch (level) {
        case JR_LOG_DEBUG: return "debug";
        case JR_LOG_INFO: return "info";
        case JR_LOG_WARN: return "warning";
        default: return "error";
    }
}

static void logf_(int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (level < log_level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* journald stamps lines itself; one fprintf keeps them whole. */
    fprintf(stderr, "jacod[%s] %s: %s\n", config.name, level_name(level), msg);
}

static void lib_log(void *data, int level, const char *message)
{
    (void)data;
    if (level >= log_level) {
        fprintf(stderr, "jacod[%s] %s: %s\n", config.name, level_name(level),
                message);
    }
}

static void log_line(int level, const char *message)
{
    logf_(level, "%s", message);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A drift check on the thread pool: the plugin's reconcile, then, when it
 * changed the ruleset after the first load, an audit event through Raft. */
static void isolation_check_cb(uv_work_t *w)
{
    static bool loaded;
    struct jd_iso_list *list = w->data;
    const struct jacod_iso_ops *iso = jd_plugin_iso_ops(&isolation);
    char diff[512] = "", *cmd;
    size_t len;
    int rv;
    if (list != NULL && JD_PLUGIN_HAS(iso, set_replicas) &&
        (rv = iso->set_replicas(
             isolation.state,
             (const struct jacod_iso_replica *const *)list->ptrs, list->n)) !=
            0) {
        logf_(JR_LOG_ERROR, "isolation plugin %s: set_replicas: %s",
              isolation.p->name, jr_strerror(rv));
    }
    rv = iso->reconcile(isolation.state, diff, sizeof diff);
    if (rv < 0) {
        logf_(JR_LOG_ERROR, "isolation plugin %s: cannot load its ruleset: %s",
              isolation.p->name, diff);
        return;
    }
    if (rv == 0) {
        return;
    }
    /* A plugin of 0.1 answers 1 for its first load too. */
    if (rv == 2 || !loaded) {
        loaded = true;
        logf_(JR_LOG_INFO, "isolation plugin %s: %s", isolation.p->name, diff);
        return;
    }
    logf_(JR_LOG_WARN, "isolation plugin %s: ruleset drifted: %s",
          isolation.p->name, diff);
    if (jd_cmd_audit("isolation_ruleset_reconciled", config.name, diff,
                     "jacod (isolation check)", wall_ms(), &cmd, &len) == 0) {
        struct jr_error err;
        memset(&err, 0, sizeof err);
        if (jr_apply_sync(node, cmd, len, 0, NULL, NULL, &err) != 0) {
            logf_(JR_LOG_WARN,
                  "isolation: the audit event was not recorded: %s",
                  err.message);
        }
        free(cmd);
    }
}

static void isolation_queue(void);

static void isolation_after_cb(uv_work_t *w, int status)
{
    struct jd_iso_list *list = w->data;
    (void)status;
    if (list != NULL) {
        jd_iso_list_free(list);
        free(list);
        w->data = NULL;
    }
    isolation_busy = false;
    if (isolation_again) {
        isolation_again = false;
        isolation_queue();
    }
}

/* A check now, with the replicas of the latest change if there was one
 * (loop thread). */
static void isolation_queue(void)
{
    if (!isolation_checking) {
        return;
    }
    if (isolation_busy) {
        isolation_again = true;
        return;
    }
    isolation_work.data = NULL;
    if (isolation_next_set) {
        struct jd_iso_list *l = malloc(sizeof *l);
        if (l != NULL) {
            *l = isolation_next;
            isolation_work.data = l;
        } else {
            jd_iso_list_free(&isolation_next);
        }
        memset(&isolation_next, 0, sizeof isolation_next);
        isolation_next_set = false;
    }
    isolation_busy = true;
    if (uv_queue_work(loop, &isolation_work, isolation_check_cb,
                      isolation_after_cb) != 0) {
        isolation_busy = false;
    }
}

static void isolation_timer_cb(uv_timer_t *t)
{
    (void)t;
    if (!isolation_busy) {
        isolation_queue();
    }
}

/* The supervisor's running set changed: the ruleset follows at once. */
static void replicas_changed(void *data)
{
    (void)data;
    if (!isolation_checking || supervisor == NULL) {
        return;
    }
    if (isolation_next_set) {
        jd_iso_list_free(&isolation_next);
    }
    isolation_next_set =
        jd_supervisor_running(supervisor, &isolation_next) == 0;
    isolation_queue();
}

static void plugin_log(void *data, int level, const char *message)
{
    (void)data;
    logf_(level < JR_LOG_DEBUG   ? JR_LOG_DEBUG
          : level > JR_LOG_ERROR ? JR_LOG_ERROR
                                 : level,
          "%s", message);
}

static void plugin_audit_done(struct jr_apply *req,
                              int status,
                              const void *result,
                              size_t result_len)
{
    (void)status;
    (void)result;
    (void)result_len;
    free(req->data);
    free(req);
}

/* A plugin's audit event, in the background: any thread. */
static void plugin_audit(void *data, const char *type, const char *details)
{
    struct jr_apply *req;
    char *cmd;
    size_t len;
    (void)data;
    if (jd_cmd_audit(type, config.name, details, "jacod (plugin)", wall_ms(),
                     &cmd, &len) != 0) {
        return;
    }
    if ((req = calloc(1, sizeof *req)) == NULL) {
        free(cmd);
        return;
    }
    req->data = cmd;
    if (jr_apply(node, req, cmd, len, plugin_audit_done) != 0) {
        free(cmd);
        free(req);
    }
}

/* The local node table, for plugins: any thread (the state locks). */
static size_t plugin_nodes(void *data, struct jacod_node_view *out, size_t max)
{
    struct jd_sched_hosts h;
    size_t i, n;
    (void)data;
    if (jd_state_sched_hosts(state, &h) != 0) {
        return 0;
    }
    for (i = 0; i < h.n && i < max; i++) {
        (void)snprintf(out[i].name, sizeof out[i].name, "%s", h.names[i]);
        out[i].state = h.hosts[i].state;
    }
    n = h.n;
    jd_sched_hosts_free(&h);
    return n;
}

/* Load the configured plugins; a plugin that does not load stops the
 * start: running without the isolation the operator asked for is worse. */
static int load_plugins(char *err, size_t errlen)
{
    const struct jacod_iso_ops *iso;
    char iso_conf[96];
    plugin_host.abi = JACOD_PLUGIN_ABI;
    plugin_host.size = sizeof plugin_host;
    plugin_host.node_name = config.name;
    plugin_host.log = plugin_log;
    plugin_host.audit = plugin_audit;
    plugin_host.nodes = plugin_nodes;
    if (strcmp(config.scheduler_plugin, JD_DEFAULT_SCHEDULER) == 0 &&
        access(config.scheduler_plugin, F_OK) != 0) {
        logf_(JR_LOG_WARN,
              "no scheduler plugin: the default %s is not installed; this "
              "host runs and places no replicas (set scheduler-plugin)",
              JD_DEFAULT_SCHEDULER);
    } else if (config.scheduler_plugin[0] != '\0' &&
               jd_plugin_load(&scheduler, config.scheduler_plugin,
                              JACOD_PLUGIN_SCHEDULER, &plugin_host, NULL, err,
                              errlen) != 0) {
        return -1;
    }
    (void)snprintf(iso_conf, sizeof iso_conf, "ports=%s",
                   config.isolation_ports);
    if (config.isolation_plugin[0] != '\0' &&
        jd_plugin_load(&isolation, config.isolation_plugin,
                       JACOD_PLUGIN_ISOLATION, &plugin_host, iso_conf, err,
                       errlen) != 0) {
        jd_plugin_unload(&scheduler);
        return -1;
    }
    if (scheduler.p != NULL) {
        logf_(JR_LOG_INFO, "scheduler plugin %s (%s) loaded", scheduler.p->name,
              scheduler.path);
    }
    iso = jd_plugin_iso_ops(&isolation);
    if (isolation.p != NULL) {
        char why[512] = "";
        int rv = iso != NULL ? iso->self_test(isolation.state, why, sizeof why)
                             : JR_EINVAL;
        size_t nl = strlen(isolation.p->name);
        /* "PLUGIN: what it said": the plugin's text may name it already. */
        if (strncmp(why, isolation.p->name, nl) == 0 && why[nl] == ':') {
            (void)snprintf(isolation_detail, sizeof isolation_detail, "%s",
                           why);
        } else {
            (void)snprintf(isolation_detail, sizeof isolation_detail, "%s: %s",
                           isolation.p->name,
                           why[0] != '\0' ? why : "self-test");
        }
        if (rv == 0) {
            logf_(JR_LOG_INFO, "isolation plugin %s (%s): self-test ok%s%s",
                  isolation.p->name, isolation.path, why[0] ? ": " : "", why);
            isolation_checking = JD_PLUGIN_HAS(iso, reconcile);
            (void)snprintf(
                isolation_state, sizeof isolation_state, "%s",
                strcmp(isolation.p->name, "none") == 0 ? "none" : "ok");
        } else {
            (void)snprintf(isolation_state, sizeof isolation_state,
                           "unavailable");
            logf_(JR_LOG_ERROR,
                  "isolation plugin %s (%s): self-test failed: %s; this "
                  "host must get no replicas",
                  isolation.p->name, isolation.path,
                  iso == NULL ? "it has no self_test" : why);
        }
    }
    return 0;
}

static int parse_level(const char *s)
{
    if (strcmp(s, "debug") == 0) {
        return JR_LOG_DEBUG;
    }
    if (strcmp(s, "warning") == 0) {
        return JR_LOG_WARN;
    }
    if (strcmp(s, "error") == 0) {
        return JR_LOG_ERROR;
    }
    return JR_LOG_INFO;
}

/* ---- the observer (leader only) ---- */

static void observe_done(struct jr_apply *req,
                         int status,
                         const void *result,
                         size_t result_len)
{
    (void)result;
    (void)result_len;
    if (status != 0 && status != JR_ENOLEADER && status != JR_EQUORUMLOST &&
        status != JR_ELEADERSHIPLOST && status != JR_ECANCELED) {
        logf_(JR_LOG_WARN, "recording node statuses: %s", req->errmsg);
    }
    uv_mutex_lock(&observe_mutex);
    free(observe_cmd);
    observe_cmd = NULL;
    observe_in_flight = false;
    uv_mutex_unlock(&observe_mutex);
}

static void observe_cb(uv_timer_t *t)
{
    struct jd_observed obs[64];
    struct jr_status *st;
    unsigned i, n = 0;
    bool changed = false, busy;
    int64_t now = wall_ms();
    char *cmd;
    size_t len;
    (void)t;
    uv_mutex_lock(&observe_mutex);
    busy = observe_in_flight;
    uv_mutex_unlock(&observe_mutex);
    if (busy || jr_node_status(node, &st) != 0) {
        return;
    }
    if (st->state != JR_STATE_LEADER) {
        jr_status_free(st);
        return;
    }
    changed = jd_state_leader(state) != st->id;
    for (i = 0; i < st->n_peers && n < sizeof obs / sizeof obs[0]; i++) {
        const struct jr_peer_status *p = &st->peers[i];
        struct jd_observed *o = &obs[n++];
        char address[JD_ADDR_MAX], role[16];
        int64_t seen;
        int had = jd_state_node_status(state, p->id, &seen, address, role);
        memset(o, 0, sizeof *o);
        o->id = p->id;
        snprintf(o->name, sizeof o->name, "%s",
                 p->id == st->id ? config.name : p->name);
        snprintf(o->address, sizeof o->address, "%s", p->address);
        snprintf(o->role, sizeof o->role, "%s", jr_role_name(p->role));
        if (p->id == st->id || p->reachable) {
            o->status = jd_state_isolation_unavailable(state, p->id)
                            ? JD_NODE_STATUS_ISOLATION_UNAVAILABLE
                            : JD_NODE_STATUS_READY;
            o->last_seen_ms =
                now - (p->last_contact_ms > 0 ? p->last_contact_ms : 0);
        } else {
            o->status = JD_NODE_STATUS_UNREACHABLE;
            o->last_seen_ms = seen;
        }
        if (had != o->status || strcmp(address, o->address) != 0 ||
            strcmp(role, o->role) != 0 ||
            (o->status != JD_NODE_STATUS_UNREACHABLE &&
             o->last_seen_ms - seen > LAST_SEEN_REFRESH_MS)) {
            changed = true;
        }
    }
    {
        uint64_t ids[64];
        for (i = 0; i < n; i++) {
            ids[i] = obs[i].id;
        }
        changed = changed || jd_state_has_nonmembers(state, ids, n);
    }
    if (!changed ||
        jd_cmd_observe(obs, n, st->id, config.audit_max_events,
                       config.audit_max_age_s, "jacod (leader's observation)",
                       now, &cmd, &len) != 0) {
        jr_status_free(st);
        return;
    }
    jr_status_free(st);
    uv_mutex_lock(&observe_mutex);
    observe_in_flight = true;
    observe_cmd = cmd;
    uv_mutex_unlock(&observe_mutex);
    memset(&observe_req, 0, sizeof observe_req);
    if (jr_apply(node, &observe_req, cmd, len, observe_done) != 0) {
        uv_mutex_lock(&observe_mutex);
        free(observe_cmd);
        observe_cmd = NULL;
        observe_in_flight = false;
        uv_mutex_unlock(&observe_mutex);
    }
}

/* ---- signals ---- */

static void handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void shutdown_daemon(const char *why)
{
    logf_(JR_LOG_INFO, "%s: stopping", why);
    jd_state_set_hook(state, NULL, NULL);
    uv_signal_stop(&sig_term);
    uv_signal_stop(&sig_int);
    uv_close((uv_handle_t *)&sig_term, handle_closed);
    uv_close((uv_handle_t *)&sig_int, handle_closed);
    uv_close((uv_handle_t *)&sig_hup, handle_closed);
    uv_close((uv_handle_t *)&observe_timer, handle_closed);
    if (isolation_checking) {
        uv_close((uv_handle_t *)&isolation_timer, handle_closed);
    }
    jd_backup_node_stop(backup_node);
    backup_node = NULL;
    jd_scheduler_stop(scheduler_loop);
    /* Its timer runs until every replica has stopped. */
    jd_supervisor_stop(supervisor);
    if (server != NULL) {
        jd_server_stop(server);
        server = NULL;
    }
    /* Hands leadership over first; requests still in the thread pool fail
     * with "canceled" and their connections are gone. */
    (void)jr_node_stop(node);
}

static void term_cb(uv_signal_t *s, int signum)
{
    (void)s;
    shutdown_daemon(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* Re-read the configuration the way it was read at start (the same flags,
 * then the file). Only the log level changes at runtime; the rest takes
 * effect at the next start, which the log says. */
static void hup_cb(uv_signal_t *s, int signum)
{
    struct jd_config fresh;
    char err[512];
    (void)s;
    (void)signum;
    jd_config_defaults(&fresh);
    if (jd_config_parse(&fresh, saved_argc, saved_argv, err, sizeof err) != 0) {
        logf_(JR_LOG_ERROR, "SIGHUP: configuration not reloaded: %s", err);
        return;
    }
    log_level = parse_level(fresh.log_level);
    snprintf(config.log_level, sizeof config.log_level, "%s", fresh.log_level);
    /* Said whatever the new level is: the operator asked for it. */
    fprintf(stderr,
            "jacod[%s] info: SIGHUP: reloaded %s: log-level %s (other keys "
            "take effect at the next start)\n",
            config.name,
            config.config_path[0] != '\0' ? config.config_path : "(no file)",
            config.log_level);
}

static void state_changed(void *data, uint64_t index, const char *type)
{
    (void)data;
    if (server != NULL) {
        jd_server_notify(server, index, type);
    }
}

/* ---- start ---- */

/* The library and the client listener take IPv4 literals only; the
 * configuration's syntax allows host names. Caught here, before anything is
 * written, as a configuration error. */
static int ipv4_hostport(const char *what,
                         const char *hp,
                         char *err,
                         size_t errlen)
{
    struct in_addr a;
    char host[64];
    const char *colon = strrchr(hp, ':');
    if (colon == NULL || (size_t)(colon - hp) >= sizeof host) {
        snprintf(err, errlen, "%s %s: not HOST:PORT", what, hp);
        return -1;
    }
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = '\0';
    if (inet_pton(AF_INET, host, &a) != 1) {
        snprintf(err, errlen,
                 "%s %s: the host must be an IPv4 address (host names and "
                 "IPv6 are not supported yet)",
                 what, hp);
        return -1;
    }
    if (a.s_addr == htonl(INADDR_ANY) && strcmp(what, "peer-address") == 0) {
        snprintf(err, errlen,
                 "peer-address %s: peers dial this address, so it must be "
                 "this host's own address, not 0.0.0.0",
                 hp);
        return -1;
    }
    return 0;
}

static int check_addresses(char *err, size_t errlen)
{
    unsigned i;
    if (ipv4_hostport("peer-address", config.peer_address, err, errlen) != 0 ||
        (config.client_address[0] != '\0' &&
         ipv4_hostport("client-address", config.client_address, err, errlen) !=
             0)) {
        return -1;
    }
    for (i = 0; i < config.n_initial; i++) {
        if (ipv4_hostport("initial-cluster member",
                          config.initial_cluster[i].address, err,
                          errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Bootstrapping writes the member list to the data directory for good: make
 * sure the peer address can be listened on first, so that a typo or a busy
 * port does not leave a bootstrapped directory behind. */
static int probe_listen(char *err, size_t errlen)
{
    struct sockaddr_in sa;
    char host[64];
    const char *colon = strrchr(config.peer_address, ':');
    int fd, one = 1, rv;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    snprintf(host, sizeof host, "%.*s", (int)(colon - config.peer_address),
             config.peer_address);
    (void)inet_pton(AF_INET, host, &sa.sin_addr);
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    rv = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rv != 0) {
        snprintf(err, errlen, "cannot listen on peer-address %s: %s",
                 config.peer_address, strerror(errno));
    }
    close(fd);
    return rv;
}

static int open_node(char *err, size_t errlen)
{
    struct jr_config cfg;
    struct jr_error jerr;
    uint64_t id = jd_node_id_of_name(config.name);
    int rv;
    jr_config_init(&cfg);
    cfg.id = id;
    cfg.name = config.name;
    cfg.address = config.peer_address;
    cfg.data_dir = config.data_dir;
    cfg.election_timeout_ms = config.election_timeout_ms;
    cfg.heartbeat_timeout_ms = config.heartbeat_timeout_ms;
    cfg.snapshot_threshold = config.snapshot_threshold;
    cfg.log_level = log_level;
    cfg.log_cb = lib_log;
    cfg.fsm = jd_state_fsm(state);
    cfg.zone = config.zone;
    cfg.max_voters = config.max_voters;
    cfg.promote_after_ms = config.promote_after_ms;
    cfg.dead_node_timeout_ms = config.dead_node_timeout_s * 1000;
    /* A backup node follows the log but must never vote. */
    cfg.never_vote = config.backup_dir[0] != '\0';
    memset(&jerr, 0, sizeof jerr);
    if ((rv = jr_node_open(&cfg, &node, &jerr)) != 0) {
        snprintf(err, errlen, "%s", jerr.message);
        return rv;
    }
    if (config.secret_file[0] != '\0') {
        unsigned char secret[JR_SECRET_SIZE];
        rv = jr_secret_read_file(config.secret_file, secret, &jerr);
        if (rv == 0) {
            rv = jr_node_set_secret(node, secret, sizeof secret, &jerr);
        }
        memset(secret, 0, sizeof secret);
        if (rv != 0) {
            snprintf(err, errlen, "%s", jerr.message);
            return rv;
        }
    }
    if (config.bootstrap || config.n_initial > 0) {
        struct jr_member members[JD_MAX_PEERS];
        unsigned i, n = 0;
        if (config.n_initial == 0) {
            members[n].id = id;
            members[n++].address = config.peer_address;
        }
        for (i = 0; i < config.n_initial; i++) {
            members[n].id = jd_node_id_of_name(config.initial_cluster[i].name);
            members[n++].address = config.initial_cluster[i].address;
        }
        if ((rv = jr_node_bootstrap(node, members, n, &jerr)) != 0) {
            snprintf(err, errlen, "%s", jerr.message);
            return rv;
        }
    }
    if ((rv = jr_node_start(node, &jerr)) != 0) {
        snprintf(err, errlen, "%s", jerr.message);
        return rv;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char err[1024];
    struct jd_ctx ctx;
    struct jr_status *st;
    int rv;

    jd_config_defaults(&config);
    saved_argc = argc;
    saved_argv = argv;
    rv = jd_config_parse(&config, argc, argv, err, sizeof err);
    if (rv == 1) {
        jd_config_usage(stdout, "jacod");
        return 0;
    }
    if (rv == 2) {
        printf("jacod %s (libjacoraft %s)\n", PACKAGE_VERSION, jr_version());
        return 0;
    }
    if (rv != 0) {
        fprintf(stderr, "jacod: %s\n", err);
        return 2;
    }
    log_level = parse_level(config.log_level);
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    uv_mutex_init(&observe_mutex);
    state = jd_state_new();
    if (state == NULL) {
        fprintf(stderr, "jacod: out of memory\n");
        return 1;
    }
    if (check_addresses(err, sizeof err) != 0) {
        fprintf(stderr, "jacod: %s\n", err);
        jd_state_free(state);
        return 2;
    }
    if (load_plugins(err, sizeof err) != 0) {
        fprintf(stderr, "jacod: %s\n", err);
        jd_state_free(state);
        return 1;
    }
    if (config.backup_dir[0] != '\0' &&
        jd_backup_dir_check(config.backup_dir, err, sizeof err) != 0) {
        fprintf(stderr, "jacod: %s\n", err);
        jd_state_free(state);
        return 1;
    }
    if (probe_listen(err, sizeof err) != 0) {
        fprintf(stderr, "jacod: %s\n", err);
        jd_state_free(state);
        return 1;
    }
    if (open_node(err, sizeof err) != 0) {
        fprintf(stderr, "jacod: %s\n", err);
        jr_node_close(node);
        jd_state_free(state);
        return 1;
    }
    ctx.node = node;
    ctx.state = state;
    ctx.name = config.name;
    ctx.data_dir = config.data_dir;
    jd_api_backup_cleanup(config.data_dir);
    server = jd_server_start(loop, &ctx, config.socket_path,
                             config.client_address, err, sizeof err);
    if (server == NULL) {
        fprintf(stderr, "jacod: %s\n", err);
        jr_node_stop(node);
        jr_node_close(node);
        jd_state_free(state);
        return 1;
    }
    jd_state_set_hook(state, state_changed, NULL);
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_hup);
    uv_signal_start(&sig_term, term_cb, SIGTERM);
    uv_signal_start(&sig_int, term_cb, SIGINT);
    uv_signal_start(&sig_hup, hup_cb, SIGHUP);
    uv_timer_init(loop, &observe_timer);
    uv_timer_start(&observe_timer, observe_cb, OBSERVE_INTERVAL_MS,
                   OBSERVE_INTERVAL_MS);
    if (isolation_checking) {
        uv_timer_init(loop, &isolation_timer);
        uv_timer_start(&isolation_timer, isolation_timer_cb, 0,
                       (uint64_t)config.isolation_check_s * 1000);
    }
    {
        struct jd_supervisor_config sc;
        memset(&sc, 0, sizeof sc);
        sc.name = config.name;
        sc.data_dir = config.data_dir;
        sc.restart_limit = config.restart_limit;
        sc.restart_backoff_ms = config.restart_backoff_ms;
        sc.stop_timeout_ms = config.stop_timeout_ms;
        sc.isolation = isolation_state;
        sc.isolation_detail = isolation_detail;
        supervisor = jd_supervisor_start(loop, node, state, &scheduler, &sc,
                                         log_line, replicas_changed, NULL);
        scheduler_loop = jd_scheduler_start(
            loop, node, state, &scheduler, config.reschedule_after_s, log_line);
        if (supervisor == NULL || scheduler_loop == NULL) {
            fprintf(stderr, "jacod: out of memory\n");
            return 1;
        }
    }
    if (config.backup_dir[0] != '\0') {
        backup_node = jd_backup_node_start(loop, node, &config, log_line);
        logf_(JR_LOG_INFO,
              "backup node: an archive into %s every %u s, keeping %u; "
              "this node never votes",
              config.backup_dir, config.backup_interval_s, config.backup_keep);
    }

    if (jr_node_status(node, &st) == 0) {
        if (st->cluster_id[0] == '\0') {
            logf_(JR_LOG_INFO,
                  "not initialised: this node belongs to no cluster yet and "
                  "waits to be joined (or start it with --bootstrap or "
                  "--initial-cluster)");
        }
        jr_status_free(st);
    }
    logf_(JR_LOG_INFO, "serving clients on %s%s%s", config.socket_path,
          config.client_address[0] != '\0' ? " and " : "",
          config.client_address);
    uv_run(loop, UV_RUN_DEFAULT);
    jd_state_set_hook(state, NULL, NULL);
    jr_node_close(node);
    jd_supervisor_free(supervisor);
    jd_scheduler_free(scheduler_loop);
    if (isolation_next_set) {
        jd_iso_list_free(&isolation_next);
    }
    jd_plugin_unload(&isolation);
    jd_plugin_unload(&scheduler);
    uv_loop_close(loop);
    jd_state_free(state);
    uv_mutex_destroy(&observe_mutex);
    logf_(JR_LOG_INFO, "exiting");
    return 0;
}

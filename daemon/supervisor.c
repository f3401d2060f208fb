/* supervisor.c: see supervisor.h.
 *
 * Each replica placed here has an entry, keyed by deployment, service,
 * ordinal and revision: a new revision is a new entry, started once the
 * old one's process is gone. An entry's state is this host's word on the
 * replica; every change marks it for the next report (one replica.report
 * command every REPORT_EVERY_MS at most, one in flight). Reports that fail
 * (no quorum) are sent again later, with the then current states. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

#define TICK_MS 200
#define REPORT_EVERY_MS 500
#define HOST_EVERY_MS 1000
#define RUNNING_AFTER_MS 1000 /* up this long: starting -> running */
#define STABLE_AFTER_MS 10000 /* up this long: the failure count resets */
#define BACKOFF_CAP_MS 30000
#define REPORTS_PER_COMMAND 256
#define BASE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct entry {
    char dep[JD_DEP_NAME_MAX];
    unsigned ordinal;
    uint64_t revision;
    struct jd_deployment *spec; /* its one service */
    bool wanted;                /* placed here at this revision */
    bool active;                /* a process runs (handle is valid) */
    bool stopping;
    uint64_t handle;
    int64_t pid;
    int state;
    unsigned attempts;
    unsigned failures; /* in a row */
    char failure[JD_FAILURE_MAX];
    char reason[JD_REASON_MAX];
    int64_t started_ms;
    int64_t next_start_ms;
    bool dirty; /* to report */
};

struct jd_supervisor {
    uv_loop_t *loop;
    struct jr_node *node;
    struct jd_state *state;
    const struct jacod_sched_ops *ops; /* NULL: no runtime */
    void *plugin_state;
    char runtime[JD_NAME_MAX];
    struct jd_supervisor_config cfg;
    char name[JD_NAME_MAX];
    char isolation[16];
    char isolation_detail[JD_DETAIL_MAX];
    char dir[4096]; /* DATA_DIR/replicas */
    void (*log)(int level, const char *message);
    void (*changed)(void *data);
    void *changed_data;
    uv_timer_t timer;
    struct entry *entries;
    unsigned n, cap;
    uint64_t generation;
    bool have_generation;
    bool stopping;
    int64_t last_report_ms;
    int64_t last_host_ms;
    /* Shared with the library's loop thread, which runs the apply
     * callbacks: under mutex. */
    uv_mutex_t mutex;
    bool report_in_flight, report_failed, host_in_flight;
    struct jr_apply report_req, host_req;
    char *report_cmd, *host_cmd;
};

static void logf_(struct jd_supervisor *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void logf_(struct jd_supervisor *s, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->log(level, msg);
}

static int64_t mono_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *svc_of(const struct entry *e)
{
    return e->spec->services[0].name;
}

static void label_of(const struct entry *e, char *out, size_t size)
{
    (void)snprintf(out, size, "%s/%s/%u", e->dep, svc_of(e), e->ordinal);
}

static void set_state(struct entry *e,
                      int state,
                      const char *failure,
                      const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));

static void set_state(struct entry *e,
                      int state,
                      const char *failure,
                      const char *fmt,
                      ...)
{
    va_list ap;
    e->state = state;
    (void)snprintf(e->failure, sizeof e->failure, "%s", failure);
    va_start(ap, fmt);
    (void)vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    va_end(ap);
    e->dirty = true;
}

/* ---- replicas a previous jacod left running ----
 * DIR/running lists "PID STARTTIME LABEL" of every replica process; the
 * start time (/proc/PID/stat, field 22) tells a recycled pid apart. */

static bool proc_starttime(int64_t pid, unsigned long long *out)
{
    char path[64], buf[2048], *p;
    ssize_t n;
    int fd, field;
    (void)snprintf(path, sizeof path, "/proc/%" PRId64 "/stat", pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        return false;
    }
    n = read(fd, buf, sizeof buf - 1);
    (void)close(fd);
    if (n <= 0) {
        return false;
    }
    buf[n] = '\0';
    if ((p = strrchr(buf, ')')) == NULL) {
        return false;
    }
    /* Field 3 (state) follows ") "; the start time is field 22. */
    for (field = 2; field < 22 && p != NULL; field++) {
        p = strchr(p + 1, ' ');
    }
    return p != NULL && sscanf(p + 1, "%llu", out) == 1;
}

static void write_running(struct jd_supervisor *s)
{
    char path[4200], tmp[4200], label[200];
    unsigned i;
    FILE *f;
    (void)snprintf(path, sizeof path, "%s/running", s->dir);
    (void)snprintf(tmp, sizeof tmp, "%s/running.tmp", s->dir);
    if ((f = fopen(tmp, "w")) == NULL) {
        logf_(s, JR_LOG_WARN, "replicas: cannot write %s: %s", tmp,
              strerror(errno));
        return;
    }
    for (i = 0; i < s->n; i++) {
        unsigned long long st;
        if (s->entries[i].active && proc_starttime(s->entries[i].pid, &st)) {
            label_of(&s->entries[i], label, sizeof label);
            fprintf(f, "%" PRId64 " %llu %s\n", s->entries[i].pid, st, label);
        }
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        logf_(s, JR_LOG_WARN, "replicas: cannot write %s: %s", path,
              strerror(errno));
    }
}

static void kill_leftovers(struct jd_supervisor *s)
{
    char path[4200], label[256];
    unsigned long long st, now_st;
    int64_t pid;
    FILE *f;
    (void)snprintf(path, sizeof path, "%s/running", s->dir);
    if ((f = fopen(path, "r")) == NULL) {
        return;
    }
    while (fscanf(f, "%" SCNd64 " %llu %255s", &pid, &st, label) == 3) {
        if (pid > 1 && proc_starttime(pid, &now_st) && now_st == st &&
            getpgid((pid_t)pid) == (pid_t)pid) {
            logf_(s, JR_LOG_WARN,
                  "replica %s: pid %" PRId64
                  " was left running by a jacod that did not stop cleanly: "
                  "killed, it starts again under this jacod",
                  label, pid);
            (void)kill((pid_t)-pid, SIGKILL);
        }
    }
    (void)fclose(f);
    (void)unlink(path);
}

/* ---- starting and stopping ---- */

static unsigned backoff_ms(const struct jd_supervisor *s, unsigned failures)
{
    uint64_t d = s->cfg.restart_backoff_ms;
    unsigned i;
    for (i = 1; i < failures && d < BACKOFF_CAP_MS; i++) {
        d *= 2;
    }
    return d < BACKOFF_CAP_MS ? (unsigned)d : BACKOFF_CAP_MS;
}

/* A failure to start or a process that exited: retry after the backoff,
 * or give up at the limit with code. */
static void failed(struct jd_supervisor *s,
                   struct entry *e,
                   const char *code,
                   const char *what)
{
    char label[200];
    label_of(e, label, sizeof label);
    e->failures++;
    if (e->failures >= s->cfg.restart_limit) {
        set_state(e, JACOD_REPLICA_FAILED, code, "%s (%u failures in a row)",
                  what, e->failures);
        logf_(s, JR_LOG_WARN, "replica %s: %s: %s", label, code, e->reason);
        return;
    }
    e->next_start_ms = mono_ms() + backoff_ms(s, e->failures);
    set_state(e, JACOD_REPLICA_STARTING, "",
              "%s; restarting in %u ms (failure %u of %u)", what,
              backoff_ms(s, e->failures), e->failures, s->cfg.restart_limit);
    logf_(s, JR_LOG_INFO, "replica %s: %s", label, e->reason);
}

static void describe_exit(int ws, char *out, size_t size)
{
    if (WIFEXITED(ws)) {
        (void)snprintf(out, size, "exited with status %d", WEXITSTATUS(ws));
    } else if (WIFSIGNALED(ws)) {
        (void)snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(ws),
                       strsignal(WTERMSIG(ws)));
    } else {
        (void)snprintf(out, size, "exited");
    }
}

/* argv and envp of e, in storage (strings point into e->spec). */
struct launch {
    const char *argv[JD_MAX_ARGS + 1];
    const char *envp[JD_MAX_ENV + 8];
    char vars[7][JD_STR_MAX + 32];
};

static void prepare(struct jd_supervisor *s,
                    const struct entry *e,
                    struct launch *l)
{
    const struct jd_service *svc = &e->spec->services[0];
    static const char *const base[] = {"PATH", "HOME"};
    unsigned i, k, n = 0;
    for (i = 0; i < svc->n_args; i++) {
        l->argv[i] = svc->args[i];
    }
    l->argv[svc->n_args] = NULL;
    (void)snprintf(l->vars[0], sizeof l->vars[0], "PATH=%s", BASE_PATH);
    (void)snprintf(l->vars[1], sizeof l->vars[1], "HOME=/");
    (void)snprintf(l->vars[2], sizeof l->vars[2], "JACO_DEPLOYMENT=%s", e->dep);
    (void)snprintf(l->vars[3], sizeof l->vars[3], "JACO_SERVICE=%s", svc->name);
    (void)snprintf(l->vars[4], sizeof l->vars[4], "JACO_REPLICA=%u",
                   e->ordinal);
    (void)snprintf(l->vars[5], sizeof l->vars[5], "JACO_REVISION=%" PRIu64,
                   e->revision);
    (void)snprintf(l->vars[6], sizeof l->vars[6], "JACO_HOST=%s", s->name);
    /* The manifest's own PATH or HOME win over the defaults. */
    for (i = 0; i < 7; i++) {
        bool overridden = false;
        for (k = 0; i < 2 && k < svc->n_env; k++) {
            overridden = overridden || strcmp(svc->env_keys[k], base[i]) == 0;
        }
        if (!overridden) {
            l->envp[n++] = l->vars[i];
        }
    }
    l->envp[n] = NULL;
}

static void start(struct jd_supervisor *s, struct entry *e)
{
    const struct jd_service *svc = &e->spec->services[0];
    struct jacod_replica_spec spec;
    char log_path[4400], why[512], label[200];
    char(*env)[JD_ENV_KEY_MAX + JD_STR_MAX + 1];
    struct launch *l = calloc(1, sizeof *l);
    unsigned i, n;
    int failure = 0, rv;
    env = calloc(JD_MAX_ENV, sizeof *env);
    if (l == NULL || env == NULL) {
        free(l);
        free(env);
        failed(s, e, JD_FAILURE_RUNTIME_ERROR, "out of memory");
        return;
    }
    prepare(s, e, l);
    for (n = 0; l->envp[n] != NULL; n++) {
    }
    for (i = 0; i < svc->n_env; i++) {
        (void)snprintf(env[i], sizeof env[i], "%s=%s", svc->env_keys[i],
                       svc->env_values[i]);
        l->envp[n++] = env[i];
    }
    l->envp[n] = NULL;
    label_of(e, label, sizeof label);
    (void)snprintf(log_path, sizeof log_path, "%s/%s.%s.%u.log", s->dir, e->dep,
                   svc->name, e->ordinal);
    memset(&spec, 0, sizeof spec);
    spec.size = sizeof spec;
    spec.deployment = e->dep;
    spec.service = svc->name;
    spec.ordinal = e->ordinal;
    spec.revision = e->revision;
    spec.argv = l->argv;
    spec.envp = l->envp;
    spec.workdir = svc->workdir != NULL ? svc->workdir : "/";
    spec.log_path = log_path;
    why[0] = '\0';
    rv = s->ops->replica_run(s->plugin_state, &spec, &e->handle, &e->pid,
                             &failure, why, sizeof why);
    free(l);
    free(env);
    if (rv != 0) {
        if (failure == JACOD_FAILURE_EXEC) {
            /* The command cannot run: trying again changes nothing until
             * the manifest or the host does. */
            set_state(e, JACOD_REPLICA_FAILED, JD_FAILURE_EXEC_FAILED, "%s",
                      why);
            logf_(s, JR_LOG_WARN, "replica %s: exec_failed: %s", label, why);
        } else {
            failed(s, e, JD_FAILURE_RUNTIME_ERROR, why);
        }
        return;
    }
    e->active = true;
    e->attempts++;
    e->started_ms = mono_ms();
    set_state(e, JACOD_REPLICA_STARTING, "", "%s", "");
    logf_(s, JR_LOG_INFO, "replica %s: started, pid %" PRId64 " (attempt %u)",
          label, e->pid, e->attempts);
    write_running(s);
    s->changed(s->changed_data);
}

/* ---- the desired set ---- */

static struct entry *find(struct jd_supervisor *s,
                          const char *dep,
                          const char *svc,
                          unsigned ordinal,
                          uint64_t revision)
{
    unsigned i;
    for (i = 0; i < s->n; i++) {
        struct entry *e = &s->entries[i];
        if (e->ordinal == ordinal && e->revision == revision &&
            strcmp(e->dep, dep) == 0 && strcmp(svc_of(e), svc) == 0) {
            return e;
        }
    }
    return NULL;
}

/* The entry of the same replica at another revision, wanted here. */
static const struct entry *successor(const struct jd_supervisor *s,
                                     const struct entry *e)
{
    unsigned i;
    for (i = 0; i < s->n; i++) {
        const struct entry *o = &s->entries[i];
        if (o != e && o->wanted && o->ordinal == e->ordinal &&
            strcmp(o->dep, e->dep) == 0 && strcmp(svc_of(o), svc_of(e)) == 0) {
            return o;
        }
    }
    return NULL;
}

/* Another entry of the same replica still has a process. */
static bool predecessor_active(const struct jd_supervisor *s,
                               const struct entry *e)
{
    unsigned i;
    for (i = 0; i < s->n; i++) {
        const struct entry *o = &s->entries[i];
        if (o != e && o->active && o->ordinal == e->ordinal &&
            strcmp(o->dep, e->dep) == 0 && strcmp(svc_of(o), svc_of(e)) == 0) {
            return true;
        }
    }
    return false;
}

static void refresh(struct jd_supervisor *s)
{
    struct jd_host_replica *hr;
    uint64_t gen = jd_state_deploy_generation(s->state);
    unsigned i, n;
    if (s->have_generation && gen == s->generation) {
        return;
    }
    if (jd_state_host_replicas(s->state, s->name, &hr, &n) != 0) {
        return; /* out of memory: the next tick tries again */
    }
    s->generation = gen;
    s->have_generation = true;
    for (i = 0; i < s->n; i++) {
        s->entries[i].wanted = false;
    }
    for (i = 0; i < n; i++) {
        struct entry *e = find(s, hr[i].deployment, hr[i].dep->services[0].name,
                               hr[i].ordinal, hr[i].rec.revision);
        if (e != NULL) {
            e->wanted = true;
            continue;
        }
        if (s->n == s->cap) {
            unsigned cap = s->cap == 0 ? 16 : s->cap * 2;
            struct entry *a = realloc(s->entries, cap * sizeof *a);
            if (a == NULL) {
                s->have_generation = false; /* try the rest again */
                break;
            }
            s->entries = a;
            s->cap = cap;
        }
        e = &s->entries[s->n++];
        memset(e, 0, sizeof *e);
        memcpy(e->dep, hr[i].deployment, sizeof e->dep);
        e->ordinal = hr[i].ordinal;
        e->revision = hr[i].rec.revision;
        e->spec = hr[i].dep;
        hr[i].dep = NULL;
        e->wanted = true;
        e->attempts = hr[i].rec.attempts;
        /* A replica that failed here stays failed (also across a restart
         * of jacod): only a new revision tries it again. */
        e->state = hr[i].rec.state == JACOD_REPLICA_FAILED
                       ? JACOD_REPLICA_FAILED
                       : JACOD_REPLICA_PENDING;
        memcpy(e->failure, hr[i].rec.failure, sizeof e->failure);
        memcpy(e->reason, hr[i].rec.reason, sizeof e->reason);
        e->next_start_ms = mono_ms();
    }
    jd_host_replicas_free(hr, n);
}

static void remove_entry(struct jd_supervisor *s, struct entry *e)
{
    jd_deployment_free(e->spec);
    *e = s->entries[--s->n];
}

static void step(struct jd_supervisor *s, struct entry *e, int64_t now)
{
    char label[200], what[128];
    int ws = 0;
    if (e->active) {
        int rv = s->ops->replica_poll(s->plugin_state, e->handle, &ws);
        if (rv == 1 || rv < 0) {
            bool stopping = e->stopping;
            e->active = false;
            e->stopping = false;
            e->pid = 0;
            describe_exit(ws, what, sizeof what);
            label_of(e, label, sizeof label);
            write_running(s);
            s->changed(s->changed_data);
            if (stopping || !e->wanted || s->stopping) {
                logf_(s, JR_LOG_INFO, "replica %s: stopped (%s)", label, what);
                set_state(e, JACOD_REPLICA_STOPPED, "", "stopped by jacod");
            } else {
                failed(s, e, JD_FAILURE_RESTART_EXHAUSTED, what);
            }
            return;
        }
        if (e->state == JACOD_REPLICA_STARTING &&
            now - e->started_ms >= RUNNING_AFTER_MS) {
            set_state(e, JACOD_REPLICA_RUNNING, "", "%s", "");
        }
        if (e->failures > 0 && now - e->started_ms >= STABLE_AFTER_MS) {
            e->failures = 0;
        }
        return;
    }
    if (!e->wanted || s->stopping || e->state == JACOD_REPLICA_FAILED ||
        e->state == JACOD_REPLICA_STOPPED || now < e->next_start_ms ||
        predecessor_active(s, e)) {
        return;
    }
    /* Placed here before this start's self-test failed: it would run
     * unisolated. It waits for the leader to place it elsewhere. */
    if (strcmp(s->isolation, "unavailable") == 0) {
        if (e->state != JACOD_REPLICA_PENDING || e->reason[0] == '\0') {
            set_state(e, JACOD_REPLICA_PENDING, "",
                      "not started: the isolation self-test of %s failed",
                      s->name);
        }
        return;
    }
    start(s, e);
}

/* ---- reports ---- */

static void report_done(struct jr_apply *req,
                        int status,
                        const void *result,
                        size_t result_len)
{
    struct jd_supervisor *s = req->data;
    (void)result;
    (void)result_len;
    uv_mutex_lock(&s->mutex);
    free(s->report_cmd);
    s->report_cmd = NULL;
    s->report_in_flight = false;
    if (status != 0) {
        s->report_failed = true;
    }
    uv_mutex_unlock(&s->mutex);
}

static void report(struct jd_supervisor *s, int64_t now)
{
    struct jd_replica_report *r;
    unsigned i, n = 0;
    char *cmd;
    size_t len;
    bool busy, resend;
    uv_mutex_lock(&s->mutex);
    busy = s->report_in_flight;
    resend = s->report_failed;
    s->report_failed = false;
    uv_mutex_unlock(&s->mutex);
    if (resend) {
        for (i = 0; i < s->n; i++) {
            s->entries[i].dirty = s->entries[i].wanted;
        }
    }
    if (busy || now - s->last_report_ms < REPORT_EVERY_MS ||
        jr_node_cluster_id(s->node)[0] == '\0') {
        return;
    }
    if ((r = calloc(REPORTS_PER_COMMAND, sizeof *r)) == NULL) {
        return;
    }
    for (i = 0; i < s->n && n < REPORTS_PER_COMMAND; i++) {
        struct entry *e = &s->entries[i];
        if (!e->dirty || !e->wanted) {
            e->dirty = false;
            continue;
        }
        e->dirty = false;
        memcpy(r[n].deployment, e->dep, sizeof r[n].deployment);
        (void)snprintf(r[n].service, sizeof r[n].service, "%s", svc_of(e));
        r[n].ordinal = e->ordinal;
        r[n].revision = e->revision;
        r[n].state = e->state;
        r[n].attempts = e->attempts;
        memcpy(r[n].failure, e->failure, sizeof r[n].failure);
        memcpy(r[n].reason, e->reason, sizeof r[n].reason);
        r[n].pid = e->pid;
        n++;
    }
    if (n == 0 || jd_cmd_replica_report(s->name, r, n, "jacod (supervisor)",
                                        wall_ms(), &cmd, &len) != 0) {
        free(r);
        return;
    }
    free(r);
    s->last_report_ms = now;
    uv_mutex_lock(&s->mutex);
    s->report_in_flight = true;
    s->report_cmd = cmd;
    uv_mutex_unlock(&s->mutex);
    memset(&s->report_req, 0, sizeof s->report_req);
    s->report_req.data = s;
    if (jr_apply(s->node, &s->report_req, cmd, len, report_done) != 0) {
        uv_mutex_lock(&s->mutex);
        free(s->report_cmd);
        s->report_cmd = NULL;
        s->report_in_flight = false;
        s->report_failed = true;
        uv_mutex_unlock(&s->mutex);
    }
}

/* ---- the host's own facts ---- */

static void host_done(struct jr_apply *req,
                      int status,
                      const void *result,
                      size_t result_len)
{
    struct jd_supervisor *s = req->data;
    (void)status;
    (void)result;
    (void)result_len;
    uv_mutex_lock(&s->mutex);
    free(s->host_cmd);
    s->host_cmd = NULL;
    s->host_in_flight = false;
    uv_mutex_unlock(&s->mutex);
}

/* Tell the cluster, until its state says so, what isolation and runtime
 * this host has: the scheduler places nothing on a host before. */
static void host_facts(struct jd_supervisor *s, int64_t now)
{
    char iso[16], detail[JD_DETAIL_MAX], runtime[JD_NAME_MAX], *cmd;
    size_t len;
    bool busy;
    if (now - s->last_host_ms < HOST_EVERY_MS ||
        jr_node_cluster_id(s->node)[0] == '\0') {
        return;
    }
    s->last_host_ms = now;
    if (!jd_state_node_host(s->state, s->name, iso, detail, runtime)) {
        return; /* not recorded yet: the leader's observation adds it */
    }
    if (strcmp(iso, s->isolation) == 0 &&
        strcmp(detail, s->isolation_detail) == 0 &&
        strcmp(runtime, s->runtime) == 0) {
        return;
    }
    uv_mutex_lock(&s->mutex);
    busy = s->host_in_flight;
    uv_mutex_unlock(&s->mutex);
    if (busy ||
        jd_cmd_host(s->name, s->isolation, s->isolation_detail, s->runtime,
                    "jacod (host report)", wall_ms(), &cmd, &len) != 0) {
        return;
    }
    uv_mutex_lock(&s->mutex);
    s->host_in_flight = true;
    s->host_cmd = cmd;
    uv_mutex_unlock(&s->mutex);
    memset(&s->host_req, 0, sizeof s->host_req);
    s->host_req.data = s;
    if (jr_apply(s->node, &s->host_req, cmd, len, host_done) != 0) {
        uv_mutex_lock(&s->mutex);
        free(s->host_cmd);
        s->host_cmd = NULL;
        s->host_in_flight = false;
        uv_mutex_unlock(&s->mutex);
    }
}

/* ---- life ---- */

static void closed_cb(uv_handle_t *h)
{
    struct jd_supervisor *s = h->data;
    char path[4200];
    unsigned i;
    for (i = 0; i < s->n; i++) {
        jd_deployment_free(s->entries[i].spec);
    }
    free(s->entries);
    s->entries = NULL;
    s->n = 0;
    if (s->ops != NULL) {
        (void)snprintf(path, sizeof path, "%s/running", s->dir);
        (void)unlink(path); /* every replica is stopped */
    }
}

static void tick(uv_timer_t *t)
{
    struct jd_supervisor *s = t->data;
    int64_t now = mono_ms();
    unsigned i, active = 0;
    if (!s->stopping) {
        host_facts(s, now);
    }
    if (s->ops == NULL) {
        if (s->stopping) {
            uv_close((uv_handle_t *)&s->timer, closed_cb);
        }
        return;
    }
    if (!s->stopping) {
        refresh(s);
    }
    for (i = 0; i < s->n; i++) {
        struct entry *e = &s->entries[i];
        if (e->active && !e->stopping && (!e->wanted || s->stopping)) {
            const struct entry *next = successor(s, e);
            char label[200], why[64];
            label_of(e, label, sizeof label);
            if (s->stopping) {
                (void)snprintf(why, sizeof why, "jacod is stopping");
            } else if (next != NULL) {
                (void)snprintf(why, sizeof why,
                               "revision %" PRIu64 " replaces it",
                               next->revision);
            } else {
                (void)snprintf(why, sizeof why, "no longer placed here");
            }
            logf_(s, JR_LOG_INFO, "replica %s: stopping pid %" PRId64 " (%s)",
                  label, e->pid, why);
            s->ops->replica_stop(s->plugin_state, e->handle,
                                 s->cfg.stop_timeout_ms);
            e->stopping = true;
        }
        step(s, e, now);
    }
    for (i = 0; i < s->n;) {
        if (!s->entries[i].wanted && !s->entries[i].active) {
            remove_entry(s, &s->entries[i]);
        } else {
            active += s->entries[i].active;
            i++;
        }
    }
    if (s->stopping) {
        if (active == 0) {
            uv_close((uv_handle_t *)&s->timer, closed_cb);
        }
        return;
    }
    report(s, now);
}

struct jd_supervisor *jd_supervisor_start(
    uv_loop_t *loop,
    struct jr_node *node,
    struct jd_state *state,
    const struct jd_plugin *sched,
    const struct jd_supervisor_config *cfg,
    void (*log)(int level, const char *message),
    void (*changed)(void *data),
    void *data)
{
    const struct jacod_sched_ops *ops = jd_plugin_sched_ops(sched);
    struct jd_supervisor *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->loop = loop;
    s->node = node;
    s->state = state;
    s->cfg = *cfg;
    s->log = log;
    s->changed = changed;
    s->changed_data = data;
    (void)snprintf(s->name, sizeof s->name, "%s", cfg->name);
    (void)snprintf(s->isolation, sizeof s->isolation, "%s", cfg->isolation);
    (void)snprintf(s->isolation_detail, sizeof s->isolation_detail, "%s",
                   cfg->isolation_detail);
    (void)snprintf(s->dir, sizeof s->dir, "%s/replicas", cfg->data_dir);
    if (JD_PLUGIN_HAS(ops, replica_run) && JD_PLUGIN_HAS(ops, replica_poll) &&
        JD_PLUGIN_HAS(ops, replica_stop)) {
        s->ops = ops;
        s->plugin_state = sched->state;
        (void)snprintf(s->runtime, sizeof s->runtime, "%s", sched->p->name);
        if (mkdir(s->dir, 0750) != 0 && errno != EEXIST) {
            logf_(s, JR_LOG_ERROR, "replicas: cannot create %s: %s", s->dir,
                  strerror(errno));
        }
        kill_leftovers(s);
    } else {
        logf_(s, JR_LOG_WARN,
              "no replica runtime (%s): this host runs no replicas",
              sched->p == NULL ? "no scheduler plugin"
                               : "the scheduler plugin has none");
    }
    uv_mutex_init(&s->mutex);
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, tick, TICK_MS, TICK_MS);
    return s;
}

void jd_supervisor_stop(struct jd_supervisor *s)
{
    if (s != NULL) {
        s->stopping = true;
    }
}

void jd_supervisor_free(struct jd_supervisor *s)
{
    if (s == NULL) {
        return;
    }
    uv_mutex_destroy(&s->mutex);
    free(s->report_cmd);
    free(s->host_cmd);
    free(s);
}

void jd_iso_list_free(struct jd_iso_list *l)
{
    free(l->reps);
    free(l->ptrs);
    free(l->ports);
    free(l->names);
    memset(l, 0, sizeof *l);
}

int jd_supervisor_running(struct jd_supervisor *s, struct jd_iso_list *out)
{
    unsigned i, k, n = 0;
    memset(out, 0, sizeof *out);
    out->reps = calloc(s->n + 1, sizeof *out->reps);
    out->ptrs = calloc(s->n + 1, sizeof *out->ptrs);
    out->ports = calloc((size_t)(s->n + 1) * JD_MAX_PORTS, sizeof *out->ports);
    out->names = calloc(s->n + 1, sizeof *out->names);
    if (out->reps == NULL || out->ptrs == NULL || out->ports == NULL ||
        out->names == NULL) {
        jd_iso_list_free(out);
        return -1;
    }
    for (i = 0; i < s->n; i++) {
        const struct entry *e = &s->entries[i];
        const struct jd_service *svc = &e->spec->services[0];
        struct jacod_iso_replica *r = &out->reps[n];
        struct jacod_iso_port *p = &out->ports[(size_t)n * JD_MAX_PORTS];
        if (!e->active) {
            continue;
        }
        memcpy(out->names[n][0], e->dep, JD_DEP_NAME_MAX);
        memcpy(out->names[n][1], svc->name, JD_DEP_NAME_MAX);
        r->deployment = out->names[n][0];
        r->service = out->names[n][1];
        r->ordinal = e->ordinal;
        r->pid = e->pid;
        for (k = 0; k < svc->n_ports; k++) {
            p[k].port = svc->ports[k].port;
            p[k].proto = svc->ports[k].proto;
        }
        r->ports = p;
        r->n_ports = svc->n_ports;
        out->ptrs[n] = r;
        n++;
    }
    out->n = n;
    return 0;
}

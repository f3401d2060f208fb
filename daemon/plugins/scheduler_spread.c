/* scheduler_spread.c: jacod's default scheduler plugin ("spread"), in two
 * halves (jaco-plugins(7)):
 *
 * Placement, on the leader: a replica stays where it is while its host is
 * READY (a running replica is never moved to even the spread out); one on
 * an unreachable host stays there for reschedule_after_ms unless it is
 * pinned; the others go to the READY host, among its pinned hosts if it
 * has any, that runs the fewest replicas of its service, then the fewest
 * replicas, then by name. A replica that no host can take is left
 * unplaced, with the reason ("cannot satisfy host placement: n3
 * unreachable"). A failed replica stays where it failed: only a new
 * revision retries it.
 *
 * The runtime, on every host: processes. posix_spawn (safe in jacod's
 * threaded process), in a process group of their own, standard input
 * /dev/null, output appended to the replica's log file, signals at their
 * defaults and unblocked, no descriptor of jacod's inherited; stopped with
 * SIGTERM to the group, then SIGKILL after the grace period. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../jacod_plugin.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_CHILDREN 4096
#define DEFAULT_PATH \
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct child {
    pid_t pid;
    bool stopping;
    int64_t kill_at_ms; /* SIGKILL the group then, if still there */
};

struct spread {
    struct child children[MAX_CHILDREN];
    unsigned n;
};

static int spread_start(const struct jacod_host *host,
                        const char *conf,
                        void **state)
{
    (void)host;
    (void)conf;
    *state = calloc(1, sizeof(struct spread));
    return *state != NULL ? 0 : -1; /* JR_ENOMEM */
}

static void spread_stop(void *state)
{
    free(state);
}

/* ---- placement ---- */

static const struct jacod_sched_host *host_named(
    const struct jacod_sched_input *in,
    const char *name)
{
    size_t i;
    for (i = 0; i < in->n_hosts; i++) {
        if (strcmp(in->hosts[i]->name, name) == 0) {
            return in->hosts[i];
        }
    }
    return NULL;
}

/* Why host name cannot take a replica ("" if it can). */
static const char *unfit(const struct jacod_sched_input *in, const char *name)
{
    const struct jacod_sched_host *h = host_named(in, name);
    if (h == NULL) {
        return "removed";
    }
    switch (h->state) {
        case JACOD_HOST_READY: return "";
        case JACOD_HOST_UNREACHABLE: return "unreachable";
        case JACOD_HOST_ISOLATION_UNAVAILABLE: return "isolation unavailable";
        case JACOD_HOST_NO_RUNTIME: return "runs no replicas";
        case JACOD_HOST_NOT_MEMBER: return "not in the Raft configuration";
        default: return "not ready";
    }
}

static bool pinned_to(const struct jacod_sched_replica *r, const char *host)
{
    unsigned i;
    for (i = 0; i < r->n_hosts; i++) {
        if (strcmp(r->hosts[i], host) == 0) {
            return true;
        }
    }
    return false;
}

static bool stays(const struct jacod_sched_input *in,
                  const struct jacod_sched_replica *r)
{
    const struct jacod_sched_host *h;
    if (r->host[0] == '\0') {
        return false;
    }
    if (r->state == JACOD_REPLICA_FAILED) {
        return true;
    }
    if (r->n_hosts > 0 && !pinned_to(r, r->host)) {
        return false; /* the placement changed */
    }
    if ((h = host_named(in, r->host)) == NULL) {
        return false;
    }
    if (h->state == JACOD_HOST_READY) {
        return true;
    }
    /* Maybe only a short outage: moving it would run it twice. A pinned
     * one cannot move anyway, and is reported pending at once. */
    return h->state == JACOD_HOST_UNREACHABLE && r->n_hosts == 0 &&
           h->unreachable_ms < in->reschedule_after_ms;
}

static bool same_service(const struct jacod_sched_replica *a,
                         const struct jacod_sched_replica *b)
{
    return strcmp(a->service, b->service) == 0 &&
           strcmp(a->deployment, b->deployment) == 0;
}

/* Replicas of r's service placed on host: they are consecutive in the
 * input (jacod_plugin.h), around index i. */
static unsigned same_on(const struct jacod_sched_input *in,
                        size_t i,
                        const char *host)
{
    const struct jacod_sched_replica *r = in->replicas[i];
    size_t a = i, b = i + 1, k;
    unsigned n = 0;
    while (a > 0 && same_service(in->replicas[a - 1], r)) {
        a--;
    }
    while (b < in->n_replicas && same_service(in->replicas[b], r)) {
        b++;
    }
    for (k = a; k < b; k++) {
        n += strcmp(in->replicas[k]->place, host) == 0;
    }
    return n;
}

static void explain_pending(const struct jacod_sched_input *in,
                            struct jacod_sched_replica *r)
{
    size_t i, used;
    if (r->n_hosts > 0) {
        used = (size_t)snprintf(r->reason, sizeof r->reason,
                                "cannot satisfy host placement:");
        for (i = 0; i < r->n_hosts && used < sizeof r->reason; i++) {
            used += (size_t)snprintf(r->reason + used, sizeof r->reason - used,
                                     "%s %s %s", i > 0 ? "," : "", r->hosts[i],
                                     unfit(in, r->hosts[i]));
        }
        return;
    }
    used = (size_t)snprintf(r->reason, sizeof r->reason, "no ready host");
    for (i = 0; i < in->n_hosts && used < sizeof r->reason; i++) {
        used +=
            (size_t)snprintf(r->reason + used, sizeof r->reason - used,
                             "%s%s %s", i == 0 ? ": " : ", ",
                             in->hosts[i]->name, unfit(in, in->hosts[i]->name));
    }
}

static int spread_place(void *state, const struct jacod_sched_input *in)
{
    unsigned *load = calloc(in->n_hosts > 0 ? in->n_hosts : 1, sizeof *load);
    size_t i, k;
    (void)state;
    if (load == NULL) {
        return -1; /* JR_ENOMEM */
    }
    /* First what stays, so that the load counts it. */
    for (i = 0; i < in->n_replicas; i++) {
        struct jacod_sched_replica *r = in->replicas[i];
        r->place[0] = '\0';
        if (!stays(in, r)) {
            continue;
        }
        (void)snprintf(r->place, sizeof r->place, "%s", r->host);
        for (k = 0; k < in->n_hosts; k++) {
            load[k] += strcmp(in->hosts[k]->name, r->place) == 0;
        }
    }
    for (i = 0; i < in->n_replicas; i++) {
        struct jacod_sched_replica *r = in->replicas[i];
        size_t best = in->n_hosts;
        unsigned best_same = 0;
        if (r->place[0] != '\0') {
            continue;
        }
        for (k = 0; k < in->n_hosts; k++) {
            const struct jacod_sched_host *h = in->hosts[k];
            unsigned same;
            if (h->state != JACOD_HOST_READY ||
                (r->n_hosts > 0 && !pinned_to(r, h->name))) {
                continue;
            }
            same = same_on(in, i, h->name);
            if (best == in->n_hosts || same < best_same ||
                (same == best_same &&
                 (load[k] < load[best] ||
                  (load[k] == load[best] &&
                   strcmp(h->name, in->hosts[best]->name) < 0)))) {
                best = k;
                best_same = same;
            }
        }
        if (best < in->n_hosts) {
            (void)snprintf(r->place, sizeof r->place, "%s",
                           in->hosts[best]->name);
            r->reason[0] = '\0';
            load[best]++;
        } else {
            explain_pending(in, r);
        }
    }
    free(load);
    return 0;
}

/* ---- the process runtime ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct child *child_of(struct spread *s, uint64_t handle)
{
    unsigned i;
    for (i = 0; i < s->n; i++) {
        if ((uint64_t)s->children[i].pid == handle) {
            return &s->children[i];
        }
    }
    return NULL;
}

/* argv[0] as a path: itself if it has a '/', else the first executable
 * of that name in envp's PATH. */
static const char *resolve(const char *const *envp,
                           const char *prog,
                           char *buf,
                           size_t size)
{
    const char *path = DEFAULT_PATH, *p;
    unsigned i;
    if (strchr(prog, '/') != NULL) {
        return prog;
    }
    for (i = 0; envp[i] != NULL; i++) {
        if (strncmp(envp[i], "PATH=", 5) == 0) {
            path = envp[i] + 5;
        }
    }
    for (p = path; *p != '\0';) {
        size_t len = strcspn(p, ":");
        int n = snprintf(buf, size, "%.*s/%s", (int)len, p, prog);
        if (len > 0 && n > 0 && (size_t)n < size && access(buf, X_OK) == 0) {
            return buf;
        }
        p += len + (p[len] == ':');
    }
    return NULL;
}

static int spread_run(void *state,
                      const struct jacod_replica_spec *spec,
                      uint64_t *handle,
                      int64_t *pid_out,
                      int *failure,
                      char *why,
                      size_t why_size)
{
    struct spread *s = state;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    char path[4096];
    const char *prog;
    struct stat st;
    pid_t pid;
    int fd, rv;
    if (s->n == MAX_CHILDREN) {
        *failure = JACOD_FAILURE_RUNTIME;
        (void)snprintf(why, why_size, "more than %d replicas on this host",
                       MAX_CHILDREN);
        return -16; /* JR_ETOOBIG */
    }
    if ((prog = resolve(spec->envp, spec->argv[0], path, sizeof path)) ==
        NULL) {
        *failure = JACOD_FAILURE_EXEC;
        (void)snprintf(why, why_size, "%s: not found in PATH", spec->argv[0]);
        return -15; /* JR_ENOTFOUND */
    }
    /* Checked here: a chdir failing inside posix_spawn would be reported
     * like the exec failing. */
    errno = 0;
    if (stat(spec->workdir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        const char *e = errno != 0 ? strerror(errno) : "not a directory";
        *failure = JACOD_FAILURE_RUNTIME;
        (void)snprintf(why, why_size, "workdir %s: %s", spec->workdir, e);
        return -15;
    }
    fd = open(spec->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        *failure = JACOD_FAILURE_RUNTIME;
        (void)snprintf(why, why_size, "open %s: %s", spec->log_path,
                       strerror(errno));
        return -9; /* JR_EIO */
    }
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    (void)posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    (void)posix_spawn_file_actions_adddup2(&fa, fd, 1);
    (void)posix_spawn_file_actions_adddup2(&fa, fd, 2);
    (void)posix_spawn_file_actions_addchdir_np(&fa, spec->workdir);
    (void)posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    (void)posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                              POSIX_SPAWN_SETSIGMASK |
                                              POSIX_SPAWN_SETSIGDEF);
    (void)posix_spawnattr_setpgroup(&attr, 0);
    (void)posix_spawnattr_setsigmask(&attr, &none);
    (void)posix_spawnattr_setsigdefault(&attr, &all);
    rv = posix_spawn(&pid, prog, &fa, &attr, (char *const *)spec->argv,
                     (char *const *)spec->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    (void)close(fd);
    if (rv != 0) {
        bool exec = rv == ENOENT || rv == EACCES || rv == ENOEXEC ||
                    rv == ENOTDIR || rv == ELOOP || rv == E2BIG ||
                    rv == ETXTBSY || rv == EPERM;
        *failure = exec ? JACOD_FAILURE_EXEC : JACOD_FAILURE_RUNTIME;
        (void)snprintf(why, why_size, "%s %s: %s", exec ? "exec" : "spawn",
                       prog, strerror(rv));
        return exec ? -15 : -9;
    }
    s->children[s->n].pid = pid;
    s->children[s->n].stopping = false;
    s->n++;
    *handle = (uint64_t)pid;
    *pid_out = pid;
    return 0;
}

static int spread_poll(void *state, uint64_t handle, int *wait_status)
{
    struct spread *s = state;
    struct child *c = child_of(s, handle);
    pid_t r;
    if (c == NULL) {
        return -15; /* JR_ENOTFOUND */
    }
    r = waitpid(c->pid, wait_status, WNOHANG);
    if (r == c->pid || (r < 0 && errno == ECHILD)) {
        if (r < 0) {
            *wait_status = 0; /* reaped by someone else: unknown */
        }
        /* What it left behind in its group goes with it. */
        (void)kill(-c->pid, SIGKILL);
        *c = s->children[--s->n];
        return 1;
    }
    if (c->stopping && mono_ms() >= c->kill_at_ms) {
        (void)kill(-c->pid, SIGKILL);
        c->kill_at_ms = INT64_MAX;
    }
    return 0;
}

static void spread_stop_replica(void *state, uint64_t handle, unsigned grace)
{
    struct spread *s = state;
    struct child *c = child_of(s, handle);
    if (c == NULL || c->stopping) {
        return;
    }
    c->stopping = true;
    c->kill_at_ms = mono_ms() + grace;
    (void)kill(-c->pid, SIGTERM);
}

static const struct jacod_sched_ops ops = {
    sizeof ops, spread_place, spread_run, spread_poll, spread_stop_replica,
};

static const struct jacod_plugin plugin = {
    JACOD_PLUGIN_ABI,
    sizeof plugin,
    JACOD_PLUGIN_SCHEDULER,
    "spread",
    spread_start,
    spread_stop,
    &ops,
};

EXPORT const struct jacod_plugin *jacod_plugin_entry(
    const struct jacod_host *host)
{
    (void)host;
    return &plugin;
}

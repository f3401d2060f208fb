/* backup_node.c: a jacod with backup-dir set is a backup node
 * (jaco-backup(8)). It joins like any host but never votes
 * (jr_config.never_vote keeps it a standby), follows the log, and every
 * backup-interval writes a verified archive of its own applied state into
 * backup-dir, keeping the newest backup-keep. Each archive is recorded in
 * the replicated state as labels of this node (jaco.backup.*), so that
 * `jaco cluster status` on any host shows the newest archive's age and
 * flags it when it is older than twice the interval. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup_node.h"
#include "state.h"

#define PREFIX "jaco-backup-"
#define SUFFIX ".tar.gz"
#define FIRST_DELAY_MS 5000 /* after start, once a member */
#define MAX_ARCHIVES 100000

struct jd_backup_node {
    uv_timer_t timer;
    uv_work_t work;
    bool busy;   /* an archive is being written */
    bool closed; /* stopped: freed by whichever of timer and work ends last */
    struct jr_node *node;
    const struct jd_config *cfg;
    jd_backup_log_fn log;
    /* Outcome of the last run, written by the worker, read after it. */
    int rv;
    char message[8192];
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Delete the oldest archives beyond keep (names sort by time), and any
 * temporary file a crash left. Returns how many were deleted. */
static unsigned prune(const char *dir, unsigned keep)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, path[4400];
    size_t n = 0, cap = 0, i;
    unsigned deleted = 0;
    if (d == NULL) {
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "." PREFIX, strlen("." PREFIX)) == 0) {
            (void)snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            (void)unlink(path);
            continue;
        }
        if (strncmp(e->d_name, PREFIX, strlen(PREFIX)) != 0 ||
            len < strlen(SUFFIX) ||
            strcmp(e->d_name + len - strlen(SUFFIX), SUFFIX) != 0 ||
            n == MAX_ARCHIVES) {
            continue;
        }
        if (n == cap) {
            char **more;
            cap = cap == 0 ? 64 : cap * 2;
            more = realloc(names, cap * sizeof *names);
            if (more == NULL) {
                break;
            }
            names = more;
        }
        if ((names[n] = strdup(e->d_name)) != NULL) {
            n++;
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    for (i = 0; i < n; i++) {
        if (i + keep < n) {
            (void)snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            if (unlink(path) == 0) {
                deleted++;
            }
        }
        free(names[i]);
    }
    free(names);
    return deleted;
}

/* Record the archive in the replicated state: labels of this node. */
static int record(struct jd_backup_node *b,
                  const char *file,
                  const struct jr_backup_info *info)
{
    char when[32], index[32], interval[32];
    const char *keys[] = {"jaco.backup.time", "jaco.backup.index",
                          "jaco.backup.interval", "jaco.backup.file"};
    const char *values[] = {when, index, interval, file};
    struct jr_error err;
    char *cmd;
    size_t len;
    int rv;
    (void)snprintf(when, sizeof when, "%" PRId64, wall_ms());
    (void)snprintf(index, sizeof index, "%" PRIu64, info->index);
    (void)snprintf(interval, sizeof interval, "%u", b->cfg->backup_interval_s);
    if (jd_cmd_label(b->cfg->name, keys, values, 4, NULL, 0, "backup-node",
                     wall_ms(), &cmd, &len) != 0) {
        return JR_ENOMEM;
    }
    memset(&err, 0, sizeof err);
    rv = jr_apply_sync(b->node, cmd, len, 0, NULL, NULL, &err);
    free(cmd);
    return rv;
}

static void work_cb(uv_work_t *w)
{
    struct jd_backup_node *b = w->data;
    struct jr_backup_info *info = calloc(1, sizeof *info);
    char stamp[32], tmp[4300], path[4400], file[128];
    struct jr_error err;
    struct tm tm;
    time_t now = time(NULL);
    unsigned deleted;
    int rv;

    b->message[0] = '\0';
    if (info == NULL) {
        b->rv = JR_ENOMEM;
        return;
    }
    if (jr_node_cluster_id(b->node)[0] == '\0') {
        b->rv = JR_ESTATE;
        (void)snprintf(b->message, sizeof b->message,
                       "backup node: not a member yet (jaco node join "
                       "TOKEN); no archive written");
        free(info);
        return;
    }
    (void)gmtime_r(&now, &tm);
    (void)strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    (void)snprintf(tmp, sizeof tmp, "%s/." PREFIX "%s" SUFFIX,
                   b->cfg->backup_dir, stamp);
    memset(&err, 0, sizeof err);
    /* Its own applied state: no quorum needed, and a standby that follows
     * the log is at most a heartbeat behind. */
    rv = jr_node_backup(b->node, tmp, JR_BACKUP_LOCAL, NULL, NULL, info, &err);
    if (rv == 0) {
        (void)snprintf(file, sizeof file, PREFIX "%s-%" PRIu64 SUFFIX, stamp,
                       info->index);
        (void)snprintf(path, sizeof path, "%s/%s", b->cfg->backup_dir, file);
        if (rename(tmp, path) != 0) {
            rv = JR_EIO;
            (void)snprintf(err.message, sizeof err.message, "rename %.150s: %s",
                           tmp, strerror(errno));
        }
    }
    if (rv == 0) {
        rv = jr_backup_verify(path, NULL, &err);
        if (rv != 0) {
            (void)unlink(path);
        }
    }
    if (rv != 0) {
        (void)unlink(tmp);
        b->rv = rv;
        (void)snprintf(b->message, sizeof b->message,
                       "backup node: no archive written: %s",
                       err.message[0] != '\0' ? err.message : jr_strerror(rv));
        free(info);
        return;
    }
    deleted = prune(b->cfg->backup_dir, b->cfg->backup_keep);
    rv = record(b, file, info);
    b->rv = 0;
    (void)snprintf(b->message, sizeof b->message,
                   "backup node: wrote and verified %s (index %" PRIu64
                   ", %" PRIu64
                   " bytes of state); %u old archive(s) "
                   "deleted%s%s",
                   path, info->index, info->state_size, deleted,
                   rv != 0 ? "; not recorded in the cluster state: " : "",
                   rv != 0 ? jr_strerror(rv) : "");
    free(info);
}

static void timer_cb(uv_timer_t *t);

static void after_work_cb(uv_work_t *w, int status)
{
    struct jd_backup_node *b = w->data;
    (void)status;
    b->busy = false;
    if (b->closed) {
        free(b);
        return;
    }
    if (b->rv == JR_ESTATE) {
        b->log(JR_LOG_DEBUG, b->message);
        /* Not a member yet: look again soon, not an interval on. */
        uv_timer_start(&b->timer, timer_cb, FIRST_DELAY_MS,
                       (uint64_t)b->cfg->backup_interval_s * 1000);
    } else if (b->message[0] != '\0') {
        b->log(b->rv == 0 ? JR_LOG_INFO : JR_LOG_ERROR, b->message);
    }
}

static void timer_cb(uv_timer_t *t)
{
    struct jd_backup_node *b = t->data;
    if (b->busy) {
        return; /* a slow archive: the next tick will do */
    }
    b->busy = true;
    b->work.data = b;
    if (uv_queue_work(t->loop, &b->work, work_cb, after_work_cb) != 0) {
        b->busy = false;
    }
}

int jd_backup_dir_check(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        (void)snprintf(err, errlen, "backup-dir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        (void)snprintf(err, errlen, "backup-dir %s: not a directory", dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        (void)snprintf(err, errlen, "backup-dir %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

struct jd_backup_node *jd_backup_node_start(uv_loop_t *loop,
                                            struct jr_node *node,
                                            const struct jd_config *cfg,
                                            jd_backup_log_fn log)
{
    struct jd_backup_node *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return NULL;
    }
    b->node = node;
    b->cfg = cfg;
    b->log = log;
    uv_timer_init(loop, &b->timer);
    b->timer.data = b;
    uv_timer_start(&b->timer, timer_cb,
                   cfg->backup_interval_s * 1000u < FIRST_DELAY_MS
                       ? cfg->backup_interval_s * 1000u
                       : FIRST_DELAY_MS,
                   (uint64_t)cfg->backup_interval_s * 1000);
    return b;
}

static void closed_cb(uv_handle_t *h)
{
    struct jd_backup_node *b = h->data;
    b->closed = true;
    if (!b->busy) {
        free(b);
    }
}

void jd_backup_node_stop(struct jd_backup_node *b)
{
    if (b != NULL) {
        uv_close((uv_handle_t *)&b->timer, closed_cb);
    }
}

/* supervisor.h: the host's agent in jacod. It runs the replicas the
 * cluster state places on this host through the scheduler plugin's runtime
 * (restarting one that exits, with capped exponential backoff, until
 * restart-limit failures in a row make it failed: restart_exhausted), stops
 * those placed elsewhere, and reports replica states and the host's own
 * facts (isolation self-test, runtime) through Raft, rate-limited. It acts
 * on this node's copy of the state: cut off from the quorum, it keeps its
 * replicas running. Everything runs on jacod's loop. */
#ifndef JD_SUPERVISOR_H
#define JD_SUPERVISOR_H

#include <jacoraft.h>
#include <uv.h>

#include "plugin.h"
#include "state.h"

struct jd_supervisor_config {
    const char *name;     /* this host's node name */
    const char *data_dir; /* replica logs go to DATA_DIR/replicas/ */
    unsigned restart_limit;
    unsigned restart_backoff_ms; /* the first; doubled, capped at 30 s */
    unsigned stop_timeout_ms;    /* SIGTERM, then SIGKILL after this */
    const char *isolation;       /* "ok", "unavailable" or "none" */
    const char *isolation_detail;
};

/* The replicas running now, with their ports: for the isolation plugin.
 * The pointers point into the list. */
struct jd_iso_list {
    struct jacod_iso_replica *reps;
    struct jacod_iso_replica **ptrs;
    struct jacod_iso_port *ports; /* JD_MAX_PORTS per replica */
    char (*names)[2][JD_DEP_NAME_MAX];
    size_t n;
};
void jd_iso_list_free(struct jd_iso_list *l);

struct jd_supervisor;

/* Start on loop (sched may hold no plugin: the host then runs no
 * replicas, and says so). Replicas a previous jacod left running (killed
 * with SIGKILL) are killed first. changed(data) is called on the loop
 * whenever the set of running replicas changes. NULL when out of
 * memory. */
struct jd_supervisor *jd_supervisor_start(
    uv_loop_t *loop,
    struct jr_node *node,
    struct jd_state *state,
    const struct jd_plugin *sched,
    const struct jd_supervisor_config *cfg,
    void (*log)(int level, const char *message),
    void (*changed)(void *data),
    void *data);

/* Stop every replica (SIGTERM, SIGKILL after stop-timeout); the loop runs
 * until they have exited. */
void jd_supervisor_stop(struct jd_supervisor *s);
/* Release s, after the loop has run dry and the node is closed (an apply
 * in flight refers to s until its callback ran). */
void jd_supervisor_free(struct jd_supervisor *s);

/* A copy of the running set; 0 or -1 when out of memory. */
int jd_supervisor_running(struct jd_supervisor *s, struct jd_iso_list *out);

#endif

/* scheduler.h: the leader's scheduler loop in jacod. While this node
 * leads, every SCHED_TICK_MS it hands the scheduler plugin's place() every
 * host and every replica of the cluster state, and records what changed
 * (placements and the reasons of replicas left unplaced) with one
 * sched.place command through Raft, one in flight at a time. */
#ifndef JD_SCHEDULER_H
#define JD_SCHEDULER_H

#include <jacoraft.h>
#include <uv.h>

#include "plugin.h"
#include "state.h"

struct jd_scheduler;

/* NULL when out of memory; sched may hold no plugin (nothing is placed
 * while this node leads, and it says so once). */
struct jd_scheduler *jd_scheduler_start(uv_loop_t *loop,
                                        struct jr_node *node,
                                        struct jd_state *state,
                                        const struct jd_plugin *sched,
                                        unsigned reschedule_after_s,
                                        void (*log)(int level,
                                                    const char *message));
/* Stop its timer (the loop can then run dry). */
void jd_scheduler_stop(struct jd_scheduler *s);
/* Release it, once the node is closed (an apply in flight refers to it
 * until its callback ran). */
void jd_scheduler_free(struct jd_scheduler *s);

/* One placement pass, for tests: run the plugin on hosts and view at
 * now_ms and fill out with the changes to record (at most max). Returns
 * their number, or a negative JR_E* code from the plugin. */
int jd_scheduler_pass(const struct jacod_sched_ops *ops,
                      void *plugin_state,
                      struct jd_sched_hosts *hosts,
                      struct jd_sched_view *view,
                      int64_t reschedule_after_ms,
                      struct jd_placement *out,
                      unsigned max);

#endif

/* backup_node.h: jacod as a backup node (backup-dir set; jaco-backup(8)). */
#ifndef JD_BACKUP_NODE_H
#define JD_BACKUP_NODE_H

#include <jacoraft.h>
#include <uv.h>

#include "config.h"

typedef void (*jd_backup_log_fn)(int level, const char *message);

struct jd_backup_node;

/* Create dir (mode 0700) if missing and check that it is a writable
 * directory: 0, or -1 with a message in err. */
int jd_backup_dir_check(const char *dir, char *err, size_t errlen);

/* Write an archive into cfg->backup_dir every cfg->backup_interval_s (the
 * first a few seconds after start, once the node is a member), on loop's
 * thread pool. cfg and node must outlive it. NULL when out of memory. */
struct jd_backup_node *jd_backup_node_start(uv_loop_t *loop,
                                            struct jr_node *node,
                                            const struct jd_config *cfg,
                                            jd_backup_log_fn log);
/* Stop the timer; an archive being written finishes (or fails once the
 * node stops). Frees b when both are done. */
void jd_backup_node_stop(struct jd_backup_node *b);

#endif

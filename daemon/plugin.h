/* plugin.h: jacod's plugin loader (jacod_plugin.h is the ABI). */
#ifndef JD_PLUGIN_H
#define JD_PLUGIN_H

#include <stddef.h>

#include "jacod_plugin.h"

struct jd_plugin {
    void *handle; /* dlopen's */
    const struct jacod_plugin *p;
    void *state; /* the plugin's, from start */
    char path[4096];
};

/* Load the plugin at path, check that it is of kind and of this ABI, and
 * start it with host and conf (the plugin's settings, or NULL). 0, or -1 with a
 * message in err naming the path and what is wrong (no such file, no entry
 * symbol, ABI or size or kind mismatch, start failed). */
int jd_plugin_load(struct jd_plugin *pl,
                   const char *path,
                   enum jacod_plugin_kind kind,
                   const struct jacod_host *host,
                   const char *conf,
                   char *err,
                   size_t errlen);

/* The plugin's ops if it has them (NULL, or a member past the plugin's
 * ops size, is "not implemented"). */
const struct jacod_iso_ops *jd_plugin_iso_ops(const struct jd_plugin *pl);
const struct jacod_sched_ops *jd_plugin_sched_ops(const struct jd_plugin *pl);

/* Whether ops (of ops_size bytes as built) has the member at offset and
 * it is not NULL: JD_PLUGIN_HAS(ops, member). */
#define JD_PLUGIN_HAS(ops, member)                                       \
    ((ops) != NULL &&                                                    \
     (ops)->size >=                                                      \
         offsetof(__typeof__(*(ops)), member) + sizeof((ops)->member) && \
     (ops)->member != NULL)

/* Stop it, then unload it. */
void jd_plugin_unload(struct jd_plugin *pl);

#endif

/* log.c: node logging through the embedder's callback, or to stderr. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jr_internal.h"

static const char *level_name(int level)
{
    switch (level) {
        case JR_LOG_DEBUG: return "debug";
        case JR_LOG_INFO: return "info";
        case JR_LOG_WARN: return "warning";
        default: return "error";
    }
}

void jr__log(struct jr_node *n, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (level < n->cfg.log_level) {
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n->cfg.log_cb != NULL) {
        n->cfg.log_cb(n->cfg.log_data, level, msg);
        return;
    }
    {
        struct timespec ts;
        struct tm tm;
        char when[32];
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        (void)gmtime_r(&ts.tv_sec, &tm);
        (void)strftime(when, sizeof when, "%H:%M:%S", &tm);
        /* One fprintf per line keeps lines whole across threads. */
        fprintf(stderr, "%s.%03ld jacoraft[%s] %s: %s\n", when,
                ts.tv_nsec / 1000000, n->name, level_name(level), msg);
    }
}

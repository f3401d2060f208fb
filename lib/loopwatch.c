/* loopwatch.c: how long the loop thread stays busy in one turn. Every
 * request, heartbeat and disk completion on this node waits while the loop
 * runs callbacks, so the longest turn is the node's worst stall; status
 * reports it and a turn over JR__LOOP_WARN_MS is logged (at most every
 * ten seconds) with what usually causes it. libuv's idle-time metric gives
 * the time spent waiting in the kernel; a turn's busy time is its length
 * minus that. */
#include "jr_internal.h"

#define JR__LOOP_WARN_MS 200
#define JR__LOOP_SLOW_NS (5 * 1000000ull)
#define WARN_INTERVAL_NS (10 * 1000000000ull)

static void prepare_cb(uv_prepare_t *p)
{
    struct jr_node *n = p->data;
    uint64_t now = uv_hrtime();
    uint64_t idle = uv_metrics_idle_time(&n->loop);
    uint64_t span = now - n->watch_last_ns;
    uint64_t waited = idle - n->watch_last_idle;
    uint64_t busy = span > waited ? span - waited : 0;
    n->watch_last_ns = now;
    n->watch_last_idle = idle;
    if (busy > n->loop_busy_max_ns) {
        n->loop_busy_max_ns = busy;
    }
    if (busy > JR__LOOP_SLOW_NS) {
        n->loop_slow_turns++;
    }
    if (busy > JR__LOOP_WARN_MS * 1000000ull &&
        now - n->watch_warned_ns > WARN_INTERVAL_NS) {
        n->watch_warned_ns = now;
        jr__warnf(n,
                  "the event loop was busy for %llu ms in one turn: "
                  "requests and heartbeats waited that long (a slow state "
                  "machine apply, snapshot or restore is the usual cause)",
                  (unsigned long long)(busy / 1000000));
    }
}

int jr__loopwatch_init(struct jr_node *n)
{
    /* Only measures; failure leaves the figures at zero. */
    (void)uv_loop_configure(&n->loop, UV_METRICS_IDLE_TIME);
    n->loop_busy_max_ns = 0;
    n->loop_slow_turns = 0;
    n->watch_warned_ns = 0;
    n->watch.data = n;
    return uv_prepare_init(&n->loop, &n->watch);
}

void jr__loopwatch_start(struct jr_node *n)
{
    n->watch_last_ns = uv_hrtime();
    n->watch_last_idle = uv_metrics_idle_time(&n->loop);
    (void)uv_prepare_start(&n->watch, prepare_cb);
}

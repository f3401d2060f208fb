/* queue.h: intrusive circular doubly-linked lists (the libuv/raft idiom). */
#ifndef JR_QUEUE_H
#define JR_QUEUE_H

#include <stddef.h>

typedef void *queue[2];

#define QUEUE_NEXT(q) (*(queue **)&((*(q))[0]))
#define QUEUE_PREV(q) (*(queue **)&((*(q))[1]))

#define QUEUE_INIT(q)        \
    {                        \
        QUEUE_NEXT(q) = (q); \
        QUEUE_PREV(q) = (q); \
    }

#define QUEUE_IS_EMPTY(q) ((const queue *)(q) == (const queue *)QUEUE_NEXT(q))

#define QUEUE_HEAD(q) (QUEUE_NEXT(q))

#define QUEUE_PUSH(q, e)                 \
    {                                    \
        QUEUE_NEXT(e) = (q);             \
        QUEUE_PREV(e) = QUEUE_PREV(q);   \
        QUEUE_NEXT(QUEUE_PREV(e)) = (e); \
        QUEUE_PREV(q) = (e);             \
    }

#define QUEUE_REMOVE(e)                            \
    {                                              \
        QUEUE_NEXT(QUEUE_PREV(e)) = QUEUE_NEXT(e); \
        QUEUE_PREV(QUEUE_NEXT(e)) = QUEUE_PREV(e); \
    }

/* Move every element of h to the end of n, leaving h empty. */
#define QUEUE_MOVE_ALL(h, n)                    \
    {                                           \
        if (!QUEUE_IS_EMPTY(h)) {               \
            queue *first_ = QUEUE_NEXT(h);      \
            queue *last_ = QUEUE_PREV(h);       \
            QUEUE_PREV(first_) = QUEUE_PREV(n); \
            QUEUE_NEXT(QUEUE_PREV(n)) = first_; \
            QUEUE_NEXT(last_) = (n);            \
            QUEUE_PREV(n) = last_;              \
            QUEUE_INIT(h);                      \
        }                                       \
    }

#define QUEUE_FOREACH(q, h) \
    for ((q) = QUEUE_NEXT(h); (q) != (h); (q) = QUEUE_NEXT(q))

#define QUEUE_DATA(e, type, field) \
    ((type *)(void *)((char *)(e)-offsetof(type, field)))

#endif /* JR_QUEUE_H */

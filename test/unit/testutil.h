/* testutil.h: what several unit test files need: free ports, removing a
 * temporary tree. */
#ifndef TEST_TESTUTIL_H
#define TEST_TESTUTIL_H

/* A loopback TCP port nobody listens on now (asserts on failure). */
unsigned tu_free_port(void);

/* Remove dir and everything below it, without following links; a missing
 * dir is fine. */
void tu_rm_rf(const char *dir);

struct jr_node;
/* Poll node's status until it leads; fails the test after ms. */
void tu_wait_leader(struct jr_node *node, unsigned ms);

#endif

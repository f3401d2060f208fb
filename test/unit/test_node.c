/* test_node.c: placeholder replaced below. */
#include "suites.h"
Suite *node_suite(void)
{
    return suite_create("node");
}

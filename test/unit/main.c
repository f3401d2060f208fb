/* main.c: runs every unit test suite; TAP-free, check's own summary. */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    int failed;
    srunner_add_suite(sr, admin_suite());
    srunner_add_suite(sr, backup_suite());
    srunner_add_suite(sr, datadir_suite());
    srunner_add_suite(sr, error_suite());
    srunner_add_suite(sr, jointoken_suite());
    srunner_add_suite(sr, node_suite());
    srunner_add_suite(sr, raft_contract_suite());
    srunner_add_suite(sr, raftmsg_suite());
    srunner_add_suite(sr, snapstore_suite());
    srunner_add_suite(sr, metastore_suite());
    srunner_add_suite(sr, logstore_suite());
    srunner_add_suite(sr, config_suite());
    srunner_add_suite(sr, state_suite());
    srunner_add_suite(sr, reconcile_suite());
    srunner_add_suite(sr, peers_suite());
    srunner_add_suite(sr, manifest_suite());
    srunner_add_suite(sr, deploy_suite());
    srunner_add_suite(sr, lincheck_suite());
    srunner_add_suite(sr, kvstore_store_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

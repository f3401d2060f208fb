/* suites.h: the unit test suites run by test_unit. */
#ifndef TEST_SUITES_H
#define TEST_SUITES_H

#include <check.h>

Suite *admin_suite(void);
Suite *backup_suite(void);
Suite *codec_suite(void);
Suite *datadir_suite(void);
Suite *error_suite(void);
Suite *jointoken_suite(void);
Suite *node_suite(void);
Suite *raft_contract_suite(void);
Suite *raftmsg_suite(void);
Suite *snapstore_suite(void);
Suite *metastore_suite(void);
Suite *logstore_suite(void);
Suite *config_suite(void);
Suite *state_suite(void);
Suite *reconcile_suite(void);
Suite *peers_suite(void);
Suite *manifest_suite(void);
Suite *deploy_suite(void);
Suite *lincheck_suite(void);
Suite *kvstore_store_suite(void);

#endif

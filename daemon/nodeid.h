/* nodeid.h: how jacod names map to Raft node ids, shared by jacod and jaco
 * (jaco recover write-peers takes names). */
#ifndef JD_NODEID_H
#define JD_NODEID_H

#include <stdint.h>

/* A node's id: FNV-1a of its name (never 0), so that every host computes
 * the same ids from an --initial-cluster list, and a joining host's id
 * follows from its name. */
uint64_t jd_node_id_of_name(const char *name);

#endif /* JD_NODEID_H */

// Which ranks shard one copy of the model (shard.replicate; FSDP's HYBRID_SHARD, HSDP): the job's
// ranks split into `replicas` groups of world/replicas ranks each. A group shards parameters,
// gradients and optimizer state among its ranks; the groups hold the same shards (rank i of every
// group owns the same slice), so gradients are reduce-scattered inside a group and then summed
// across the groups, rank i with rank i. One group (replicate 1) is plain FSDP over every rank;
// `node` makes each node a group, so that the all-gathers and reduce-scatters stay on the node's
// fast links and only one shard's worth of gradient per rank crosses the network.
#pragma once
#include <memory>
#include <string>

#include "comm/comm.h"

namespace angle::shard {

struct ShardGroups {
  comm::Comm& world;
  comm::Comm& shard;                       // this rank's group (the world itself with one group)
  comm::Comm* replica = nullptr;           // rank i of every group (null with one group)
  int replicas = 1;
  std::unique_ptr<comm::Comm> own_shard, own_replica;
};

// Collective over `world`. `replicate`: "1", "node" or K dividing the ranks. Errors (one line,
// the same on every rank): K not dividing the ranks; `node` with nodes running different numbers
// of ranks.
std::unique_ptr<ShardGroups> make_shard_groups(comm::Comm& world, const std::string& replicate);

// "node" or a positive integer (checked at configuration, before the world size is known).
bool valid_replicate(const std::string& replicate);

}  // namespace angle::shard

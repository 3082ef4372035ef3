#include "shard/shard_groups.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <sstream>

#include "core/error.h"

namespace angle::shard {

bool valid_replicate(const std::string& replicate) {
  if (replicate == "node") return true;
  return !replicate.empty() && replicate.size() < 6 &&
         std::all_of(replicate.begin(), replicate.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         std::stoi(replicate) >= 1;
}

namespace {

// Every rank's node and its count of ranks, checked equal across nodes: the ranks per node.
int ranks_per_node(comm::Comm& world) {
  at::Tensor mine = at::tensor({static_cast<int64_t>(world.node()), static_cast<int64_t>(world.node_size())}, at::kLong);
  at::Tensor all = world.all_gather_rows(mine.view({1, 2}).to(world.device())).cpu();
  std::ostringstream nodes;
  bool equal = true;
  for (int64_t r = 0; r < all.size(0); ++r) {
    equal = equal && all[r][1].item<int64_t>() == world.node_size();
    if (r == 0 || all[r][0].item<int64_t>() == r)  // the first rank of each node
      nodes << (r == 0 ? "" : ", ") << all[r][1].item<int64_t>() << " (the node of rank " << r << ")";
  }
  ANGLE_CHECK(equal, "shard.replicate = node needs the same number of ranks on every node; ranks per node: ",
              nodes.str());
  return world.node_size();
}

}  // namespace

std::unique_ptr<ShardGroups> make_shard_groups(comm::Comm& world, const std::string& replicate) {
  ANGLE_CHECK(valid_replicate(replicate), "shard.replicate '", replicate, "' (1, node, or the number of replicas)");
  const int n = world.size();
  int replicas = 1, group = n, color = 0, position = world.rank();
  if (replicate == "node") {
    group = ranks_per_node(world);
    replicas = n / group;
    color = world.node(), position = world.local_rank();
  } else {
    replicas = std::stoi(replicate);
    ANGLE_CHECK(n % replicas == 0, "shard.replicate = ", replicas, " does not divide the ", n,
                " ranks (each replica is sharded over ranks / replicate of them)");
    group = n / replicas;
    color = world.rank() / group, position = world.rank() % group;
  }
  if (replicas == 1) return std::unique_ptr<ShardGroups>(new ShardGroups{world, world, nullptr, 1, nullptr, nullptr});
  std::unique_ptr<comm::Comm> shard = world.split(color, world.rank());
  std::unique_ptr<comm::Comm> across = world.split(position, world.rank());
  auto groups = std::unique_ptr<ShardGroups>(new ShardGroups{world, *shard, across.get(), replicas, nullptr, nullptr});
  groups->own_shard = std::move(shard);
  groups->own_replica = std::move(across);
  return groups;
}

}  // namespace angle::shard

// What the ZeRO stage (and the dtypes) change in the sharder (shard/fsdp.h), decided once: the
// sharder's parts ask these flags instead of comparing stage numbers.
#pragma once
#include <c10/core/ScalarType.h>

#include "core/error.h"

namespace angle::shard {

struct StagePolicy {
  // `world`: the ranks of a shard group; `replicas`: the groups (shard/shard_groups.h).
  StagePolicy(int stage, at::ScalarType param_dtype, at::ScalarType reduce_dtype, int world, int replicas)
      : keeps_full_params(stage < 3),
        gathers_per_unit(stage == 3),
        shards_grads(stage != 1),
        reduce_scatters_at_step(stage == 1 && !(world == 1 && replicas == 1 && reduce_dtype == at::kFloat)),
        adds_grads_locally(stage == 1 || (world == 1 && replicas == 1 && reduce_dtype == at::kFloat)),
        views_are_module_params(stage < 3 && param_dtype == at::kFloat) {
    ANGLE_CHECK(stage >= 1 && stage <= 3, "shard.stage ", stage, " (1, 2 or 3)");
  }

  // Stages 1, 2: every unit's full parameters stay materialised (in param_dtype), re-gathered
  // after each step.
  bool keeps_full_params;
  // Stage 3 (always !keeps_full_params): a unit's full parameters are gathered just before its
  // forward and its backward and freed after each; the word embeddings are looked up by rows.
  bool gathers_per_unit;
  // Stages 2, 3: gradients are reduce-scattered in buckets as autograd delivers them; the
  // gradient held is the shard's ([shard]). Stage 1: each rank sums the unit's whole gradient
  // locally ([padded]) until the step.
  bool shards_grads;
  // Stage 1, except at one rank with fp32 reductions (where the local gradient already is the
  // shard's): the step first reduce-scatters the local gradients (and sums them across replicas).
  bool reduce_scatters_at_step;
  // Stage 1, and every stage at one rank with fp32 reductions (nothing to send): a gradient is
  // added to the unit's gradient where autograd delivers it, with no bucket.
  bool adds_grads_locally;
  // Stages 1, 2 in fp32: the model's own parameters are views into the gathered buffers, and the
  // master shard is this rank's slot of them (updated in place, then re-gathered).
  bool views_are_module_params;
};

}  // namespace angle::shard

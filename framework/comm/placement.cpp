#include "comm/placement.h"

#include <map>

#include "core/error.h"

namespace angle::comm {

std::string choose_backend(const PlacementRequest& r, bool under_mpi, bool nccl_built) {
  const std::string device = r.cuda ? "cuda" : "cpu";
  ANGLE_CHECK(r.backend == "auto" || r.backend == "single" || r.backend == "mpi" || r.backend == "nccl",
              "train.backend: unknown communication backend '", r.backend, "' (auto, single, mpi, nccl)");
  ANGLE_CHECK(!r.host_staging || r.cuda, "train.host_staging = true stages CUDA tensors through host memory: it "
              "needs train.device = cuda");
  ANGLE_CHECK(!r.host_staging || r.backend == "auto" || r.backend == "mpi",
              "train.host_staging = true is for train.backend = mpi (NCCL moves CUDA tensors itself)");
  if (r.backend == "nccl") {
    ANGLE_CHECK(r.cuda, "train.backend = nccl moves CUDA tensors: set train.device = cuda (each rank then uses its "
                "node-local rank's GPU), or train.backend = mpi for the CPU");
    ANGLE_CHECK(nccl_built, "train.backend = nccl: this build of angle has no NCCL (configure with the CUDA toolkit and "
                "the CUDA torch wheel)");
    return "nccl";
  }
  if (r.backend == "mpi") {
    ANGLE_CHECK(!r.cuda || r.host_staging, "train.backend = mpi moves CPU tensors, and train.device is ", device,
                ": use train.backend = nccl (or auto), or set train.host_staging = true to copy every collective "
                "through host memory (slow: for testing several ranks on one GPU)");
    return "mpi";
  }
  if (r.backend == "single") return "single";
  if (!under_mpi) return "single";
  if (!r.cuda || r.host_staging) return "mpi";
  ANGLE_CHECK(nccl_built, "train.device = cuda under mpirun/srun needs NCCL, which this build of angle lacks: rebuild "
              "with the CUDA toolkit, or set train.backend = mpi with train.host_staging = true (slow)");
  return "nccl";
}

int choose_gpu(const std::string& backend, const PlacementRequest& r, int local_rank, int ranks_on_node,
               int visible_gpus) {
  ANGLE_CHECK(visible_gpus > 0, "train.device = cuda: no CUDA device is visible to this process (local rank ",
              local_rank, "; check CUDA_VISIBLE_DEVICES and the driver)");
  if (backend == "nccl") {
    int gpu = 0;
    if (visible_gpus >= ranks_on_node) {
      gpu = local_rank;
    } else {
      // Fewer GPUs than ranks on the node: only a launcher that hands every rank a GPU of its
      // own (each then sees one) is fine; check_distinct_gpus confirms it across ranks.
      ANGLE_CHECK(visible_gpus == 1, ranks_on_node, " ranks run on this node but ", visible_gpus,
                  " GPUs are visible: NCCL needs a GPU per rank; start at most ", visible_gpus, " ranks per node");
    }
    ANGLE_CHECK(!r.gpu || *r.gpu == gpu, "train.device = cuda:", r.gpu.value_or(0), " conflicts with NCCL's placement: "
                "local rank ", local_rank, " of ", ranks_on_node, " uses cuda:", gpu,
                "; write train.device = cuda and each rank takes its own GPU");
    return gpu;
  }
  if (r.gpu) {
    ANGLE_CHECK(*r.gpu >= 0 && *r.gpu < visible_gpus, "train.device = cuda:", *r.gpu, ": only ", visible_gpus,
                " CUDA device(s) are visible (cuda:0 to cuda:", visible_gpus - 1, ")");
    return *r.gpu;
  }
  // single: the first GPU; mpi with host staging: ranks share the GPUs in turn (a test set-up).
  return backend == "mpi" ? local_rank % visible_gpus : 0;
}

void check_distinct_gpus(const std::vector<std::string>& gpu_of_rank) {
  std::map<std::string, int> first;
  for (int rank = 0; rank < static_cast<int>(gpu_of_rank.size()); ++rank) {
    const auto [at, fresh] = first.emplace(gpu_of_rank[rank], rank);
    ANGLE_CHECK(fresh, "ranks ", at->second, " and ", rank, " share GPU ", gpu_of_rank[rank],
                ": NCCL needs a GPU per rank (fewer ranks per node, or give each rank its own GPU)");
  }
}

}  // namespace angle::comm

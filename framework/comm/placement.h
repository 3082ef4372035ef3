// Which backend moves a rank's tensors and which device they live on, decided before any work from
// what the job asks (train.backend, train.device, train.host_staging) and what the rank sees (the
// launcher, its node-local rank, the GPUs visible to it). One rule set for every launcher:
//   nccl      CUDA tensors; each rank uses its node-local rank's GPU (`train.device = cuda`), or
//             the one GPU it sees when the launcher gives every rank its own (Slurm
//             --gpus-per-task=1, per-rank CUDA_VISIBLE_DEVICES); two ranks on one GPU are an
//             error, never a silent wrap.
//   mpi       CPU tensors; CUDA tensors only with host staging (every collective's tensors copied
//             through host memory: slow, meant for testing several ranks on one GPU).
//   single    one process, any device.
//   auto      nccl for CUDA under mpirun/srun, mpi for CPU under mpirun/srun, else single.
// Every refusal is one line naming the keys to change.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace angle::comm {

struct PlacementRequest {
  std::string backend = "auto";  // train.backend: auto, single, mpi, nccl
  bool cuda = false;             // train.device is cuda or cuda:N
  std::optional<int> gpu;        // N of cuda:N
  bool host_staging = false;     // train.host_staging
};

// The backend to create ("single", "mpi" or "nccl"), for a process started by mpirun/srun or
// not, in a build with or without NCCL.
std::string choose_backend(const PlacementRequest& request, bool under_mpi, bool nccl_built);

// The CUDA device index of a rank, for the chosen backend: `local_rank` of `ranks_on_node` ranks
// on its node, `visible_gpus` devices visible to it.
int choose_gpu(const std::string& backend, const PlacementRequest& request, int local_rank, int ranks_on_node,
               int visible_gpus);

// NCCL: the identity (UUID, unique across hosts) of every rank's GPU; fails when two ranks drive
// the same GPU (ranks outnumbering the GPUs, or launchers that hand one GPU to several).
void check_distinct_gpus(const std::vector<std::string>& gpu_of_rank);

}  // namespace angle::comm

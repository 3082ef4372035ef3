// comm/placement.h: the backend and the GPU each rank gets, and every refusal, decided before any
// work from train.backend / train.device / train.host_staging and what the rank sees.
#include <boost/test/unit_test.hpp>

#include "comm/placement.h"
#include "tiny_model.h"

using namespace angle;
using angle::testing::error_of;
using comm::PlacementRequest;

namespace {
PlacementRequest request(std::string backend, bool cuda, std::optional<int> gpu = std::nullopt, bool staging = false) {
  PlacementRequest r;
  r.backend = std::move(backend), r.cuda = cuda, r.gpu = gpu, r.host_staging = staging;
  return r;
}
bool has(const std::string& message, const std::string& part) { return message.find(part) != std::string::npos; }
}  // namespace

BOOST_AUTO_TEST_SUITE(placement)

BOOST_AUTO_TEST_CASE(auto_resolves_by_device_and_launcher) {
  BOOST_TEST(comm::choose_backend(request("auto", false), false, true) == "single");
  BOOST_TEST(comm::choose_backend(request("auto", false), true, true) == "mpi");
  BOOST_TEST(comm::choose_backend(request("auto", true), false, true) == "single");
  BOOST_TEST(comm::choose_backend(request("auto", true), true, true) == "nccl");
  BOOST_TEST(comm::choose_backend(request("auto", true, std::nullopt, true), true, true) == "mpi");
  BOOST_TEST(comm::choose_backend(request("mpi", true, std::nullopt, true), true, false) == "mpi");
  BOOST_TEST(comm::choose_backend(request("single", true), true, false) == "single");
}

BOOST_AUTO_TEST_CASE(backend_and_device_that_disagree_are_refused) {
  const std::string nccl_cpu = error_of([] { comm::choose_backend(request("nccl", false), true, true); });
  BOOST_TEST(has(nccl_cpu, "train.backend = nccl moves CUDA tensors: set train.device = cuda"), nccl_cpu);
  const std::string mpi_cuda = error_of([] { comm::choose_backend(request("mpi", true), true, true); });
  BOOST_TEST((has(mpi_cuda, "train.backend = mpi moves CPU tensors") && has(mpi_cuda, "train.host_staging = true")),
             mpi_cuda);
  const std::string auto_no_nccl = error_of([] { comm::choose_backend(request("auto", true), true, false); });
  BOOST_TEST(has(auto_no_nccl, "needs NCCL, which this build of angle lacks"), auto_no_nccl);
  const std::string nccl_unbuilt = error_of([] { comm::choose_backend(request("nccl", true), true, false); });
  BOOST_TEST(has(nccl_unbuilt, "this build of angle has no NCCL"), nccl_unbuilt);
  const std::string staging_cpu = error_of([] { comm::choose_backend(request("mpi", false, std::nullopt, true), true, true); });
  BOOST_TEST(has(staging_cpu, "train.host_staging = true stages CUDA tensors"), staging_cpu);
  const std::string staging_nccl = error_of([] { comm::choose_backend(request("nccl", true, std::nullopt, true), true, true); });
  BOOST_TEST(has(staging_nccl, "train.host_staging = true is for train.backend = mpi"), staging_nccl);
  BOOST_TEST(has(error_of([] { comm::choose_backend(request("gloo", false), true, true); }), "unknown communication backend 'gloo'"));
}

BOOST_AUTO_TEST_CASE(nccl_gives_each_rank_its_local_ranks_gpu) {
  for (int local = 0; local < 4; ++local) BOOST_TEST(comm::choose_gpu("nccl", request("nccl", true), local, 4, 8) == local);
  // a launcher that gives every rank one GPU of its own (Slurm --gpus-per-task=1)
  BOOST_TEST(comm::choose_gpu("nccl", request("nccl", true), 3, 4, 1) == 0);
  BOOST_TEST(comm::choose_gpu("nccl", request("nccl", true, 2), 2, 4, 4) == 2);  // an index that agrees
  const std::string conflict = error_of([] { comm::choose_gpu("nccl", request("nccl", true, 0), 1, 2, 2); });
  BOOST_TEST(has(conflict, "train.device = cuda:0 conflicts with NCCL's placement: local rank 1 of 2 uses cuda:1; "
                           "write train.device = cuda"),
             conflict);
  const std::string too_many = error_of([] { comm::choose_gpu("nccl", request("nccl", true), 2, 4, 2); });
  BOOST_TEST(has(too_many, "4 ranks run on this node but 2 GPUs are visible"), too_many);
  const std::string none = error_of([] { comm::choose_gpu("nccl", request("nccl", true), 0, 1, 0); });
  BOOST_TEST(has(none, "no CUDA device is visible"), none);
}

BOOST_AUTO_TEST_CASE(single_and_staged_mpi_take_the_named_gpu_or_share) {
  BOOST_TEST(comm::choose_gpu("single", request("single", true), 0, 1, 2) == 0);
  BOOST_TEST(comm::choose_gpu("single", request("single", true, 1), 0, 1, 2) == 1);
  BOOST_TEST(comm::choose_gpu("mpi", request("mpi", true, std::nullopt, true), 3, 4, 2) == 1);  // shared in turn
  const std::string out_of_range = error_of([] { comm::choose_gpu("single", request("single", true, 2), 0, 1, 2); });
  BOOST_TEST(has(out_of_range, "train.device = cuda:2: only 2 CUDA device(s) are visible"), out_of_range);
}

BOOST_AUTO_TEST_CASE(two_ranks_on_one_gpu_are_refused) {
  comm::check_distinct_gpus({"GPU-a", "GPU-b", "GPU-c", "GPU-d"});
  const std::string shared = error_of([] { comm::check_distinct_gpus({"GPU-a", "GPU-b", "GPU-c", "GPU-a"}); });
  BOOST_TEST(has(shared, "ranks 0 and 3 share GPU GPU-a"), shared);
}

BOOST_AUTO_TEST_SUITE_END()

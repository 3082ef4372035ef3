// Examples/s that one rank reads from a prepared HDF5 dataset: for world sizes 1, 2, 4, 8, rank 0
// reads its slice of each global batch (random rows, one hyperslab selection per column).
//   build/tests/angle_bench_read FILE.h5 [global_batch=32] [steps=300]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "core/log.h"
#include "data/dataset_file.h"
#include "data/sampler.h"

namespace {

// The CPU model as /proc/cpuinfo names it, beside the figures (another machine gives others).
std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE.h5 [global_batch] [steps]\n", argv[0]);
    return 2;
  }
  try {
    angle::data::DatasetFile file(argv[1]);
    const uint64_t batch = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 32;
    const uint64_t steps = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 300;
    angle::data::GlobalSampler sampler({static_cast<uint64_t>(file.info().count)}, {}, 42, batch);
    std::printf("machine: %s, %u hardware threads; one reading thread\n", cpu_model().c_str(),
                std::thread::hardware_concurrency());
    std::printf("%s: %lld examples, global batch %llu, %llu steps\n", argv[1], static_cast<long long>(file.info().count),
                static_cast<unsigned long long>(batch), static_cast<unsigned long long>(steps));
    std::printf("%6s %14s %18s\n", "ranks", "rows/rank/step", "examples/s/rank");
    for (int world : {1, 2, 4, 8}) {
      uint64_t rows = 0;
      double start = angle::now_seconds();
      for (uint64_t step = 0; step < steps; ++step) {
        auto refs = sampler.global_batch(step);
        auto [begin, end] = angle::data::GlobalSampler::rank_slice(refs.size(), 0, world);
        std::vector<uint64_t> indices;
        for (size_t i = begin; i < end; ++i) indices.push_back(refs[i].index);
        rows += file.read(indices).size();
      }
      double seconds = angle::now_seconds() - start;
      std::printf("%6d %14.1f %18.0f\n", world, static_cast<double>(rows) / steps, rows / seconds);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

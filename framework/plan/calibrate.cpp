#include "plan/calibrate.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/atomic_output.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/log.h"
#include "model/encoder.h"
#include "model/model_shape.h"
#include "shard/adamw.h"
#include "train/step_batch.h"
#include "train/training_data.h"

namespace angle::plan {
namespace {

template <typename F>
double best_seconds(int repeats, F&& body) {
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    const double start = now_seconds();
    body();
    best = std::min(best, now_seconds() - start);
  }
  return best;
}

// alpha from 8-byte all-gathers, beta from 8 MiB ones (ring: n-1 steps of the rank's bytes).
void measure_link(comm::Comm& comm, Machine& m) {
  auto time_gather = [&](int64_t bytes) {
    at::Tensor chunk = at::zeros({bytes / 4}, at::TensorOptions().dtype(at::kFloat).device(comm.device()));
    at::Tensor all = at::empty({bytes / 4 * comm.size()}, chunk.options());
    comm.barrier();
    return best_seconds(5, [&] {
      comm.all_gather_into(chunk, all);
      comm.barrier();
    });
  };
  const double steps = static_cast<double>(comm.size() - 1), small = time_gather(8), large = time_gather(8 << 20);
  m.alpha_s = small / steps;
  m.beta_bytes_per_s = static_cast<double>(8 << 20) / std::max(1e-12, (large - small) / steps);
}

}  // namespace

bool comm_on_cores(const std::string& backend) { return !backend.starts_with("nccl"); }

Machine calibrate(const train::JobConfig& job, comm::Comm& comm) {
  Machine m;
  m.cores = std::max(1u, std::thread::hardware_concurrency());
  at::set_num_threads(1);
  // FLOP/s: rank 0 trains on its share of the job's first micro-batch (the others wait).
  double flops_per_thread = 0;
  if (comm.rank() == 0) {
    model::Encoder encoder = model::load_encoder(job.model_path, train::encoder_options(job));
    encoder.model->train(true);
    const train::TrainingData data(job, encoder.tokenizer, encoder.max_length);
    const size_t micro = static_cast<size_t>(job.global_batch / job.grad_accum);
    const auto examples = data.rank_slices(1, 0, 1, micro).front();
    std::vector<const std::vector<int64_t>*> rows;
    for (const auto& e : examples)
      for (const auto& ids : e.ids) rows.push_back(&ids);
    // Forward + backward on the first R rows, R = all, 1/2, 1/4, 1/8 of the micro-batch's.
    const model::ModelShape shape = bert_shape(encoder.bert_config("angle plan"));
    for (size_t count = rows.size(); count >= 1; count /= 2) {
      std::vector<const std::vector<int64_t>*> some(rows.begin(), rows.begin() + static_cast<int64_t>(count));
      const model::TokenBatch batch = encoder.collate(some);
      const double seconds = best_seconds(3, [&] {
        // (any distinct dropout keys: the time does not depend on them)
        at::Tensor hidden = encoder.model->forward(batch.input_ids, batch.attention_mask, nullptr,
                                                   at::arange(static_cast<int64_t>(count), at::kLong));
        model::pool(hidden, batch.attention_mask, encoder.pooling, encoder.tokenizer.padding_side()).pow(2).sum().backward();
      });
      m.flops_by_rows.insert(m.flops_by_rows.begin(), {static_cast<double>(count), shape.train_cost(some).flops / seconds});
      if (count == rows.size() || count <= 1) flops_per_thread = std::max(flops_per_thread, m.flops_by_rows.front().second);
      if (count <= 1 || m.flops_by_rows.size() == 4) break;
    }
    // The optimizer: AdamW on a 4M-parameter shard, then the gradient zeroed (as step() does).
    const int64_t size = 1 << 22;
    at::Tensor p = at::randn({size}), g = at::randn({size}), m1 = at::zeros({size}), m2 = at::zeros({size});
    m.optimizer_s_per_param = best_seconds(3, [&] {
                                shard::adamw_update(p, g, m1, m2, {{0, size}}, 1, 1e-5, {});
                                g.zero_();
                              }) / static_cast<double>(size);
    at::Tensor from = at::randn({size}), to = at::empty({size});
    m.copy_bytes_per_s = static_cast<double>(size * 4) / best_seconds(3, [&] { to.copy_(from); });
  }
  // Rank 0's figures to every rank (the others hold zeros).
  std::vector<double> figures = {flops_per_thread, m.optimizer_s_per_param, m.copy_bytes_per_s};
  for (const auto& [rows, flops] : m.flops_by_rows) figures.push_back(rows), figures.push_back(flops);
  figures.resize(3 + 2 * 4, 0.0);
  at::Tensor shared = at::tensor(figures, at::kDouble);
  if (comm.rank() != 0) shared.zero_();
  shared = shared.to(comm.device());
  comm.all_reduce_sum(shared);
  shared = shared.cpu();
  m.flops_per_thread = shared[0].item<double>();
  m.optimizer_s_per_param = shared[1].item<double>();
  m.copy_bytes_per_s = shared[2].item<double>();
  m.flops_by_rows.clear();
  for (int i = 0; i < 4; ++i)
    if (shared[3 + 2 * i].item<double>() > 0)
      m.flops_by_rows.emplace_back(shared[3 + 2 * i].item<double>(), shared[4 + 2 * i].item<double>());
  if (comm.size() > 1) measure_link(comm, m);
  m.ranks_per_node = comm.size();
  m.comm_on_cores = comm_on_cores(comm.backend());
  return m;
}

void save_machine(const Machine& m, const std::string& path) {
  nlohmann::json j = {{"flops_per_thread", m.flops_per_thread}, {"alpha_s", m.alpha_s},
                      {"beta_bytes_per_s", m.beta_bytes_per_s}, {"cores", m.cores},
                      {"optimizer_s_per_param", m.optimizer_s_per_param}, {"copy_bytes_per_s", m.copy_bytes_per_s},
                      {"flops_by_rows", m.flops_by_rows}, {"comm_on_cores", m.comm_on_cores}};
  write_atomically(path, j.dump(2) + "\n");
}

void calibrate_into(const train::JobConfig& job, const std::string& path, std::ostream& out) {
  std::unique_ptr<comm::Comm> comm = comm::make_comm(train::to_string(job.backend));
  const Machine machine = calibrate(job, *comm);
  if (comm->rank() == 0) {
    save_machine(machine, path);
    out << "calibrated on " << comm->size() << " rank(s): " << machine.flops_per_thread / 1e9
        << " GFLOP/s per thread, alpha " << machine.alpha_s * 1e6 << " us, beta " << machine.beta_bytes_per_s / 1e9
        << " GB/s, " << machine.cores << " cores -> " << path << "\n";
  }
  comm->barrier();
}

Machine load_machine(const std::string& path) {
  const nlohmann::json j = read_json_file(path);
  Machine m;
  for (auto [key, field] : {std::pair{"flops_per_thread", &m.flops_per_thread}, {"alpha_s", &m.alpha_s},
                            {"beta_bytes_per_s", &m.beta_bytes_per_s}, {"optimizer_s_per_param", &m.optimizer_s_per_param},
                            {"copy_bytes_per_s", &m.copy_bytes_per_s}}) {
    ANGLE_CHECK(j.contains(key) && j[key].is_number() && j[key].get<double>() > 0, path, ": '", key,
                "' must be a positive number");
    *field = j[key].get<double>();
  }
  ANGLE_CHECK(j.contains("cores") && j["cores"].is_number_integer() && j["cores"].get<int64_t>() > 0, path,
              ": 'cores' must be a positive integer");
  m.cores = j["cores"].get<int64_t>();
  if (j.contains("comm_on_cores")) {
    ANGLE_CHECK(j["comm_on_cores"].is_boolean(), path, ": 'comm_on_cores' must be true or false");
    m.comm_on_cores = j["comm_on_cores"].get<bool>();
  }
  if (j.contains("flops_by_rows")) m.flops_by_rows = j["flops_by_rows"].get<std::vector<std::pair<double, double>>>();
  return m;
}

}  // namespace angle::plan

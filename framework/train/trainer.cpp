#include "train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <unistd.h>

#include <csignal>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>

#include "ckpt/checkpoint.h"
#include "comm/comm.h"
#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/text_file.h"
#include "data/example_source.h"
#include "data/sampler.h"
#include "eval/sts_eval.h"
#include "loss/angle_loss.h"
#include "loss/gather.h"
#include "shard/sharded_adamw.h"
#include "train/pair_batches.h"
#include "train/schedule.h"

namespace angle::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

loss::Weights loss_weights(const JobConfig& c) {
  loss::Weights w = loss::Weights::preset(c.preset);
  for (auto [field, value] : {std::pair{&w.cosine_w, c.cosine_w}, {&w.ibn_w, c.ibn_w}, {&w.cln_w, c.cln_w},
                              {&w.angle_w, c.angle_w}, {&w.cosine_tau, c.cosine_tau}, {&w.ibn_tau, c.ibn_tau},
                              {&w.angle_tau, c.angle_tau}})
    if (value) *field = *value;
  w.label_mode = loss::parse_label_mode(c.label_mode);
  w.angle_mean = c.angle_reduction == "mean";
  return w;
}

// bf16 autocast of the forward pass on the model's device, off again at scope exit.
struct Autocast {
  at::DeviceType device;
  bool on;
  Autocast(at::DeviceType d, bool enable) : device(d), on(enable) {
    if (!on) return;
    at::autocast::set_autocast_dtype(device, at::kBFloat16);
    at::autocast::set_autocast_enabled(device, true);
  }
  ~Autocast() {
    if (!on) return;
    at::autocast::set_autocast_enabled(device, false);
    at::autocast::clear_cache();
  }
};

// SIGTERM / SIGUSR1 (Slurm before a time limit or preemption): finish the step, checkpoint, exit.
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void request_stop(int signal) { g_stop_signal = signal; }

json score_json(const eval::StsScore& s) { return {{"spearman", s.spearman}, {"pearson", s.pearson}, {"n", s.n}}; }

// Every rank must run the same job: compare a hash of the resolved configuration.
void check_same_job(comm::Comm& comm, const JobConfig& c) {
  const auto hash = static_cast<int64_t>(std::hash<std::string>{}(c.dump()) >> 1);
  at::Tensor all = comm.all_gather_rows(at::full({1}, hash, at::kLong).to(comm.device())).cpu();
  for (int r = 0; r < comm.size(); ++r)
    ANGLE_CHECK(all[r].item<int64_t>() == all[0].item<int64_t>(), "rank ", r, " runs a different job configuration "
                "than rank 0 (job file or overrides differ across ranks; hash ", all[r].item<int64_t>(), " vs ",
                all[0].item<int64_t>(), ")");
}

void preflight(comm::Comm& comm, const JobConfig& c) {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  for (int r = 0; r < comm.size(); ++r) {
    if (r == comm.rank())
      std::fprintf(stderr, "[rank %d/%d] host %s, local rank %d, %d threads, backend %s, device %s\n", comm.rank(),
                   comm.size(), host, comm.local_rank(), at::get_num_threads(), comm.backend().c_str(), c.device.c_str());
    if (comm.size() > 1) comm.barrier();
  }
}

}  // namespace

int run_training(const JobConfig& c) {
  std::unique_ptr<comm::Comm> comm = comm::make_comm(c.backend);
  comm->set_timeout(c.comm_timeout);
  const int rank = comm->rank(), world = comm->size();
  ANGLE_CHECK(c.global_batch % (static_cast<long>(world) * c.grad_accum) == 0, "train.global_batch ", c.global_batch,
              " must be divisible by ranks x train.grad_accum = ", world, " x ", c.grad_accum);
  check_same_job(*comm, c);
  if (c.threads) at::set_num_threads(*c.threads);
  else if (world > 1 && !std::getenv("OMP_NUM_THREADS")) at::set_num_threads(1);  // ranks x threads <= cores
  preflight(*comm, c);
  at::manual_seed(c.seed + 1000003ULL * static_cast<uint64_t>(rank));  // dropout masks differ across ranks
  const loss::Weights weights = loss_weights(c);
  // Evaluation files are read before the model: a typo fails in a second, not after loading.
  std::optional<data::StsPairs> dev_set, test_set;
  if (!c.dev.empty()) dev_set = data::read_sts_spec(c.dev);
  if (!c.test.empty()) test_set = data::read_sts_spec(c.test);

  model::EncoderOptions options;
  options.pooling = c.pooling;
  options.max_length = c.max_length;
  options.dropout = c.dropout;
  options.device = c.device;
  model::Encoder encoder = model::load_encoder(c.model_path, options);
  model::check_exportable(encoder.pooling);

  std::vector<std::unique_ptr<data::ExampleSource>> sources;
  std::vector<uint64_t> sizes;
  for (const std::string& spec : split(c.train, ',')) {
    sources.push_back(data::open_source(spec, encoder.tokenizer, c.model_path, encoder.max_length, c.text_prompt));
    ANGLE_CHECK(sources.back()->format() == "A", spec, ": format ", sources.back()->format(),
                " cannot be trained yet (format A: text1, text2, label)");
    sizes.push_back(sources.back()->size());
  }
  std::vector<double> mix;
  if (!c.mix_weights.empty())
    for (const std::string& w : split(c.mix_weights, ',')) {
      char* end = nullptr;
      mix.push_back(std::strtod(w.c_str(), &end));
      ANGLE_CHECK(!w.empty() && *end == '\0', "data.mix_weights: '", w, "' is not a number");
    }
  const data::GlobalSampler sampler(sizes, mix, c.seed, static_cast<uint64_t>(c.global_batch));
  const size_t micro = static_cast<size_t>(c.global_batch / c.grad_accum);
  // This rank's examples of each micro-batch of a step (read on a background thread, one step
  // ahead): its contiguous slice of every micro-batch of the global batch.
  long sampler_shift = 0;  // only the negative-control test shifts the data order
  auto fetch = [&](long step) {
    std::vector<data::ExampleRef> refs = sampler.global_batch(static_cast<uint64_t>(step - 1 - sampler_shift));
    std::vector<std::vector<data::Example>> micro_batches;
    for (size_t start = 0; start < refs.size(); start += micro) {
      const size_t size = std::min(micro, refs.size() - start);
      auto [begin, end] = data::GlobalSampler::rank_slice(size, rank, world);
      std::vector<data::Example> examples(end - begin);
      for (size_t d = 0; d < sources.size(); ++d) {
        std::vector<uint64_t> indices;
        std::vector<size_t> slots;
        for (size_t i = begin; i < end; ++i)
          if (refs[start + i].dataset == d) indices.push_back(refs[start + i].index), slots.push_back(i - begin);
        if (indices.empty()) continue;
        auto rows = sources[d]->fetch(indices);
        for (size_t k = 0; k < rows.size(); ++k) examples[slots[k]] = std::move(rows[k]);
      }
      micro_batches.push_back(std::move(examples));
    }
    return micro_batches;
  };

  const long batches_per_epoch = static_cast<long>(sampler.steps_per_epoch());
  const long total_steps = c.max_steps > 0 ? c.max_steps : c.epochs * batches_per_epoch;
  const long eval_every = c.eval_every > 0 ? c.eval_every : batches_per_epoch;

  model::BertModel& model = encoder.model;
  shard::ShardedAdamW optimizer(model.named_parameters(), *comm,
                                {c.adam_beta1, c.adam_beta2, c.adam_eps, c.weight_decay}, [](const std::string& name) {
                                  return !(name.ends_with("bias") || name.find("LayerNorm") != std::string::npos);
                                });
  if (rank == 0)
    log_info("train: " + std::to_string(sampler.epoch_length()) + " pairs, " + std::to_string(total_steps) +
             " steps of " + std::to_string(c.global_batch) + " pairs on " + std::to_string(world) + " rank(s), pooling " +
             encoder.pooling.name() + ", max length " + std::to_string(encoder.max_length) + ", output " +
             c.output_dir + "\noptimizer state per rank: " + std::to_string(optimizer.state_bytes()) + " bytes (" +
             std::to_string(world) + " ranks, " + std::to_string(optimizer.numel()) + " parameters)");

  long start_step = 1;
  std::optional<ckpt::TrainingState> resumed;
  if (c.resume != "none") {
    resumed = ckpt::resume(c.output_dir, {c.resume, c.allow_job_change, c.debug_skip_restore != "rng"},
                           c.identity_hash(), optimizer, *comm);
    if (resumed) {
      start_step = resumed->step + 1;
      const uint64_t expected = sampler.cursor_after(static_cast<uint64_t>(resumed->step - 1));
      ANGLE_CHECK(resumed->cursor == expected, "checkpoint cursor ", resumed->cursor, " does not match step ",
                  resumed->step, " of this data (", expected, "): the training data changed");
      if (c.debug_skip_restore == "cursor") sampler_shift = resumed->step;
    } else if (rank == 0) {
      log_info("no complete checkpoint in " + c.output_dir + ": starting from step 1");
    }
  }
  std::ofstream metrics;
  if (rank == 0) {
    fs::create_directories(c.output_dir);
    std::ofstream(fs::path(c.output_dir) / "job.ini") << c.dump();
    metrics.open(fs::path(c.output_dir) / "metrics.jsonl", start_step > 1 ? std::ios::app : std::ios::trunc);
    ANGLE_CHECK(metrics.good(), c.output_dir, "/metrics.jsonl: cannot open for writing");
  }
  double best_dev = -1e9;
  long best_step = 0;
  if (resumed) best_dev = resumed->best_dev, best_step = resumed->best_step;
  auto checkpoint = [&](long step) {
    ckpt::save(c.output_dir, {step, sampler.cursor_after(static_cast<uint64_t>(step - 1)), c.dump(), c.identity_hash(),
                              best_dev, best_step},
               optimizer, *comm, c.keep_last);
  };
  std::signal(SIGTERM, request_stop);
  std::signal(SIGUSR1, request_stop);

  eval::EmbedOptions eval_options{64, false};
  auto next_batch = std::async(std::launch::async, fetch, start_step);
  Progress progress("step", total_steps, 5.0);
  double window_start = now_seconds(), comm_seconds = 0;
  long window_pairs = 0;
  model.train(true);

  for (long step = start_step; step <= total_steps; ++step) {
    const long epoch = (step - 1) / batches_per_epoch;
    const double lr = c.lr * linear_schedule(step - 1, c.warmup_steps, total_steps);
    auto micro_batches = next_batch.get();
    if (step < total_steps) next_batch = std::async(std::launch::async, fetch, step + 1);
    std::map<std::string, double> terms;
    double step_loss = 0;
    long dropped = 0;
    for (const auto& examples : micro_batches) {
      // The duplicate filter runs on the global micro-batch: ranks exchange text hashes.
      std::vector<int64_t> local_hashes;
      for (const auto& e : examples)
        for (const auto& ids : e.ids) local_hashes.push_back(static_cast<int64_t>(hash_ids(ids)));
      double t0 = now_seconds();
      at::Tensor all_hashes = comm->all_gather_rows(at::tensor(local_hashes, at::kLong).to(comm->device())).cpu();
      at::Tensor counts =
          comm->all_gather_rows(at::full({1}, static_cast<int64_t>(examples.size()), at::kLong).to(comm->device())).cpu();
      comm_seconds += now_seconds() - t0;
      std::vector<uint64_t> hashes(all_hashes.numel());
      const int64_t* hash_data = all_hashes.data_ptr<int64_t>();
      for (int64_t i = 0; i < all_hashes.numel(); ++i) hashes[i] = static_cast<uint64_t>(hash_data[i]);
      std::vector<bool> keep_all = c.filter_duplicate ? duplicate_filter(hashes, 2) : std::vector<bool>(hashes.size() / 2, true);
      const long kept = std::count(keep_all.begin(), keep_all.end(), true);
      dropped += static_cast<long>(keep_all.size()) - kept;
      ANGLE_CHECK(kept > 0, "step ", step, ": every pair of the batch is a duplicate of another; set "
                  "data.filter_duplicate = false or deduplicate the data");
      const int64_t my_begin = counts.narrow(0, 0, rank).sum().item<int64_t>();
      std::vector<bool> keep(keep_all.begin() + my_begin, keep_all.begin() + my_begin + static_cast<int64_t>(examples.size()));
      PairBatch batch = make_pair_batch(examples, keep, encoder.tokenizer.pad_id());

      at::Tensor embeddings;
      if (batch.labels.numel() > 0) {
        at::Tensor ids = batch.tokens.input_ids.to(encoder.device), mask = batch.tokens.attention_mask.to(encoder.device);
        Autocast autocast(encoder.device.type(), c.dtype == "bf16");
        embeddings = model::pool(model.forward(ids, mask), mask, encoder.pooling);
      } else {  // this rank kept nothing of this micro-batch
        embeddings = at::zeros({0, model.config().hidden_size}, at::TensorOptions().device(encoder.device)).requires_grad_();
      }
      embeddings = embeddings.to(at::kFloat);
      at::Tensor labels = batch.labels.to(encoder.device);
      loss::LossValue value;
      double scale = 1.0 / static_cast<double>(c.grad_accum);
      if (c.local_negatives && world > 1) {
        // The reference's per-device negatives: each rank's own loss, gradients averaged.
        value = labels.numel() > 0 ? loss::angle_objective(loss::Format::A, weights, labels, embeddings)
                                   : loss::LossValue{embeddings.sum() * 0, {}};
        scale /= world;
      } else {
        t0 = now_seconds();
        at::Tensor all_embeddings = loss::gather_rows_with_grad(embeddings, *comm);
        at::Tensor all_labels = comm->all_gather_rows(labels);
        comm_seconds += now_seconds() - t0;
        value = loss::angle_objective(loss::Format::A, weights, all_labels, all_embeddings);
      }
      double loss_value = value.total.item<double>();
      if (c.local_negatives && world > 1) {
        at::Tensor mean = at::full({1}, loss_value / world, at::kDouble).to(comm->device());
        comm->all_reduce_sum(mean);
        loss_value = mean.item<double>();
      }
      ANGLE_CHECK(std::isfinite(loss_value), "step ", step, ": loss is ", loss_value,
                  " (not finite); lower optim.lr or check the data");
      (value.total * scale).backward();
      step_loss += loss_value / c.grad_accum;
      for (const auto& [k, v] : value.terms) terms[k] += v / c.grad_accum;
      window_pairs += kept;
    }
    double t0 = now_seconds();
    const double grad_norm = optimizer.step(lr, c.max_grad_norm);
    comm_seconds += world > 1 ? now_seconds() - t0 : 0;  // (the update itself is included here)
    optimizer.zero_grad();

    if (rank == 0 && (step % c.log_every == 0 || step == total_steps)) {
      double now = now_seconds();
      json line = {{"step", step}, {"epoch", epoch}, {"loss", step_loss}, {"lr", lr}, {"grad_norm", grad_norm},
                   {"pairs_per_s", window_pairs / std::max(1e-9, now - window_start)},
                   {"rss_bytes", resident_bytes()}, {"dropped_duplicates", dropped}, {"comm_s", comm_seconds}};
      for (const auto& [k, v] : terms) line[k] = v;
      metrics << line.dump() << std::endl;
      window_start = now, window_pairs = 0, comm_seconds = 0;
    }
    if (rank == 0) progress.update(step, step == total_steps);

    // A stop signal on any rank stops every rank after this step, with a checkpoint.
    at::Tensor stop = at::full({1}, static_cast<int64_t>(g_stop_signal), at::kLong).to(comm->device());
    if (world > 1) comm->all_reduce_sum(stop);
    if (stop.cpu()[0].item<int64_t>() != 0) {
      if (next_batch.valid()) next_batch.wait();
      checkpoint(step);
      const int signal = g_stop_signal ? static_cast<int>(g_stop_signal) : SIGTERM;
      if (rank == 0) log_info("stopped by signal " + std::to_string(signal) + " after step " + std::to_string(step) +
                              "; checkpoint written; resume with --run.resume auto");
      return 128 + signal;
    }

    if (dev_set && (step % eval_every == 0 || step == total_steps)) {
      if (rank == 0) {  // the other ranks wait at the barrier (within the watchdog timeout)
        model.train(false);
        eval::StsScore dev = eval::evaluate_sts(encoder, *dev_set, eval_options);
        model.train(true);
        metrics << json{{"step", step}, {"dev", score_json(dev)}}.dump() << std::endl;
        log_info("step " + std::to_string(step) + ": dev spearman " + std::to_string(dev.spearman));
        if (dev.spearman > best_dev) {
          best_dev = dev.spearman, best_step = step;
          model::save_model_dir(model, encoder.export_spec, (fs::path(c.output_dir) / "best").string());
        }
      }
      comm->barrier();
    }
    // After the evaluation, so that the checkpoint knows this step's dev score.
    if (c.checkpoint_every > 0 && (step % c.checkpoint_every == 0 || step == total_steps)) checkpoint(step);
  }
  model.train(false);
  if (rank == 0) {
    model::save_model_dir(model, encoder.export_spec, (fs::path(c.output_dir) / "final").string());
    json result = {{"job", c.job_file}, {"steps", total_steps}, {"ranks", world}};
    if (dev_set) result["best"] = {{"step", best_step}, {"dev", {{"spearman", best_dev}}}};
    if (test_set) {
      result["final"] = {{"test", score_json(eval::evaluate_sts(encoder, *test_set, eval_options))}};
      if (dev_set) {
        model::EncoderOptions best_options;
        best_options.device = c.device;
        model::Encoder best = model::load_encoder((fs::path(c.output_dir) / "best").string(), best_options);
        result["best"]["test"] = score_json(eval::evaluate_sts(best, *test_set, eval_options));
      }
    }
    std::ofstream(fs::path(c.output_dir) / "eval.json") << result.dump(2) << "\n";
    log_info("eval: " + result.dump());
  }
  comm->barrier();
  return 0;
}

}  // namespace angle::train

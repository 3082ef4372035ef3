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
#include "core/fault.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/text_file.h"
#include "data/example_source.h"
#include "data/sampler.h"
#include "eval/sts_eval.h"
#include "loss/angle_loss.h"
#include "loss/gather.h"
#include "shard/fsdp.h"
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

// bf16 parameters or reductions on a device that cannot multiply bf16 matrices (CUDA before
// sm_80 fails here) are refused before any work.
void check_bf16(const at::Device& device) {
  try {
    at::Tensor a = at::ones({8, 8}, at::TensorOptions().dtype(at::kBFloat16).device(device));
    (void)at::mm(a, a).sum().item<float>();
  } catch (const std::exception& e) {
    ANGLE_FAIL("shard.param_dtype/reduce_dtype bf16: device ", device.str(), " cannot compute in bf16 (",
               std::string(e.what()).substr(0, 200), ")");
  }
}

// One row of [CLS] [SEP] (or the tokenizer's specials), for ranks that kept no pair.
model::TokenBatch dummy_batch(const model::Encoder& encoder) {
  std::vector<int64_t> ids = encoder.tokenizer.encode("", encoder.max_length);
  return model::collate({&ids}, encoder.tokenizer.pad_id());
}

}  // namespace

// The run itself, on every rank alike.
int train(const JobConfig& c, comm::Comm& comm);

int run_training(const JobConfig& c) {
  std::unique_ptr<comm::Comm> comm = comm::make_comm(c.backend);
  comm->set_timeout(c.comm_timeout);
  try {
    return train(c, *comm);
  } catch (const std::exception& e) {
    // One rank's error is everyone's: its message, then every rank ends at once (the others
    // would otherwise wait in their next collective until the watchdog gives up).
    if (comm->size() == 1) throw;
    std::fprintf(stderr, "angle train: error: rank %d: %s\n", comm->rank(), message_of(e).c_str());
    std::fflush(stderr);
    comm->abort_job(1);
  }
}

int train(const JobConfig& c, comm::Comm& comm) {
  const int rank = comm.rank(), world = comm.size();
  ANGLE_CHECK(c.global_batch % (static_cast<long>(world) * c.grad_accum) == 0, "train.global_batch ", c.global_batch,
              " must be divisible by ranks x train.grad_accum = ", world, " x ", c.grad_accum);
  check_same_job(comm, c);
  if (c.threads) at::set_num_threads(*c.threads);
  else if (world > 1 && !std::getenv("OMP_NUM_THREADS")) at::set_num_threads(1);  // ranks x threads <= cores
  preflight(comm, c);
  fault::maybe_fail(rank, "startup");
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
  shard::ShardOptions shard_options;
  shard_options.stage = c.stage;
  shard_options.param_dtype = c.param_dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  shard_options.reduce_dtype = c.reduce_dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  shard_options.bucket_mb = c.bucket_mb;
  shard_options.inflight_bytes = static_cast<int64_t>(c.inflight_mb * (1 << 20));
  shard_options.adam = {c.adam_beta1, c.adam_beta2, c.adam_eps, c.weight_decay};
  if (c.param_dtype == "bf16" || c.reduce_dtype == "bf16") check_bf16(encoder.device);
  // Model FLOPs of a training step (forward + backward = 3x forward), for the achieved FLOP/s:
  // 6 x (weights of the encoder layers' matrix products) per token, plus attention's two batched
  // products of 2 x hidden x length^2 per layer and sequence in forward (12 x layers x hidden x
  // length^2 over forward and backward). Embedding look-ups, LayerNorm and biases are left out.
  int64_t matmul_weights = 0;
  for (const auto& [name, p] : model.named_parameters())
    if (name.starts_with("encoder.layer.") && p.dim() == 2) matmul_weights += p.numel();
  const double attention_flops = 12.0 * static_cast<double>(model.config().num_hidden_layers * model.config().hidden_size);
  shard::ShardedModel sharded(model, comm, shard_options, [](const std::string& name) {
    return !(name.ends_with("bias") || name.find("LayerNorm") != std::string::npos);
  });
  auto mib = [](int64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; };
  if (rank == 0)
    log_info("train: " + std::to_string(sampler.epoch_length()) + " pairs, " + std::to_string(total_steps) +
             " steps of " + std::to_string(c.global_batch) + " pairs on " + std::to_string(world) + " rank(s), pooling " +
             encoder.pooling.name() + ", max length " + std::to_string(encoder.max_length) + ", output " +
             c.output_dir + "\nsharding: stage " + std::to_string(c.stage) + ", param " + c.param_dtype + ", reduce " +
             c.reduce_dtype + "; model state per rank: parameters " + mib(sharded.memory().live(shard::MemoryLedger::kParams)) +
             ", gradients " + mib(sharded.memory().live(shard::MemoryLedger::kGrads)) + ", optimizer " +
             mib(sharded.memory().live(shard::MemoryLedger::kOptim)) + " (" + std::to_string(sharded.numel()) + " parameters)");

  long start_step = 1;
  std::optional<ckpt::TrainingState> resumed;
  if (c.resume != "none") {
    const std::string skip = fault::skip_restore();
    resumed = ckpt::resume(c.output_dir, {c.resume, c.allow_job_change, skip != "rng"},
                           c.identity_hash(), sharded, comm);
    if (resumed) {
      start_step = resumed->step + 1;
      const uint64_t expected = sampler.cursor_after(static_cast<uint64_t>(resumed->step - 1));
      ANGLE_CHECK(resumed->cursor == expected, "checkpoint cursor ", resumed->cursor, " does not match step ",
                  resumed->step, " of this data (", expected, "): the training data changed");
      if (skip == "cursor") sampler_shift = resumed->step;
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
               sharded, comm, c.keep_last);
  };
  std::signal(SIGTERM, request_stop);
  std::signal(SIGUSR1, request_stop);

  eval::EmbedOptions eval_options{64, false};
  auto next_batch = std::async(std::launch::async, fetch, start_step);
  Progress progress("step", total_steps, 5.0);
  double window_start = now_seconds(), comm_wait_seconds = 0;
  uint64_t comm_bytes = 0;
  const shard::MemoryLedger& memory = sharded.memory();
  int64_t run_peak_state = 0;
  long window_pairs = 0;
  double window_flops = 0, window_tokens = 0;
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
      // The duplicate filter runs on the global micro-batch: ranks exchange text hashes (which
      // also tells every rank every other rank's example count).
      std::vector<int64_t> local_hashes;
      for (const auto& e : examples)
        for (const auto& ids : e.ids) local_hashes.push_back(static_cast<int64_t>(hash_ids(ids)));
      std::vector<int64_t> hash_counts;
      at::Tensor all_hashes =
          comm.all_gather_rows(at::tensor(local_hashes, at::kLong).to(comm.device()), &hash_counts).cpu();
      std::vector<uint64_t> hashes(all_hashes.numel());
      const int64_t* hash_data = all_hashes.data_ptr<int64_t>();
      for (int64_t i = 0; i < all_hashes.numel(); ++i) hashes[i] = static_cast<uint64_t>(hash_data[i]);
      std::vector<bool> keep_all = c.filter_duplicate ? duplicate_filter(hashes, 2) : std::vector<bool>(hashes.size() / 2, true);
      const long kept = std::count(keep_all.begin(), keep_all.end(), true);
      dropped += static_cast<long>(keep_all.size()) - kept;
      ANGLE_CHECK(kept > 0, "step ", step, ": every pair of the batch is a duplicate of another; set "
                  "data.filter_duplicate = false or deduplicate the data");
      // Every rank's kept pairs (two embedding rows each), known to all ranks.
      std::vector<int64_t> kept_rows(world);
      int64_t my_begin = 0;
      for (int r = 0, at = 0; r < world; ++r) {
        const int64_t examples_of_r = hash_counts[r] / 2;
        if (r == rank) my_begin = at;
        kept_rows[r] = 2 * std::count(keep_all.begin() + at, keep_all.begin() + at + examples_of_r, true);
        at += static_cast<int>(examples_of_r);
      }
      std::vector<bool> keep(keep_all.begin() + my_begin, keep_all.begin() + my_begin + static_cast<int64_t>(examples.size()));
      PairBatch batch = make_pair_batch(examples, keep, encoder.tokenizer.pad_id());
      if (batch.labels.numel() > 0) {
        at::Tensor lengths = batch.tokens.attention_mask.sum(1).to(at::kDouble);
        const double tokens = lengths.sum().item<double>();
        window_tokens += tokens;
        window_flops += 6.0 * static_cast<double>(matmul_weights) * tokens +
                        attention_flops * lengths.pow(2).sum().item<double>();
      }

      at::Tensor embeddings;
      {
        // A rank that kept nothing still runs the model (on one dummy row, then drops it): every
        // rank must take part in the sharder's collectives of forward and backward.
        const bool empty = batch.labels.numel() == 0;
        model::TokenBatch tokens = empty ? dummy_batch(encoder) : batch.tokens;
        at::Tensor ids = tokens.input_ids.to(encoder.device), mask = tokens.attention_mask.to(encoder.device);
        Autocast autocast(encoder.device.type(), c.dtype == "bf16");
        embeddings = model::pool(model.forward(ids, mask, &sharded), mask, encoder.pooling);
        if (empty) embeddings = embeddings.narrow(0, 0, 0);
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
        std::vector<int64_t> kept_pairs(world);
        for (int r = 0; r < world; ++r) kept_pairs[r] = kept_rows[r] / 2;
        at::Tensor all_embeddings = loss::gather_rows_with_grad(embeddings, comm, kept_rows);
        at::Tensor all_labels = comm.all_gather_rows_known(labels, kept_pairs);
        value = loss::angle_objective(loss::Format::A, weights, all_labels, all_embeddings);
      }
      double loss_value = value.total.item<double>();
      if (c.local_negatives && world > 1) {
        at::Tensor mean = at::full({1}, loss_value / world, at::kDouble).to(comm.device());
        comm.all_reduce_sum(mean);
        loss_value = mean.item<double>();
      }
      fault::maybe_fail(rank, "step:" + std::to_string(step));
      ANGLE_CHECK(std::isfinite(loss_value), "step ", step, ": loss is ", loss_value,
                  " (not finite); lower optim.lr or check the data");
      (value.total * scale).backward();
      sharded.finish_backward();
      step_loss += loss_value / c.grad_accum;
      for (const auto& [k, v] : value.terms) terms[k] += v / c.grad_accum;
      window_pairs += kept;
    }
    const double grad_norm = sharded.step(lr, c.max_grad_norm);
    comm_wait_seconds += comm.take_wait_seconds();
    comm_bytes += comm.take_bytes();
    run_peak_state = std::max(run_peak_state, memory.peak());

    if (rank == 0 && (step % c.log_every == 0 || step == total_steps)) {
      double now = now_seconds();
      json line = {{"step", step}, {"epoch", epoch}, {"loss", step_loss}, {"lr", lr}, {"grad_norm", grad_norm},
                   {"pairs_per_s", window_pairs / std::max(1e-9, now - window_start)},
                   {"tokens_per_s", window_tokens / std::max(1e-9, now - window_start)},
                   {"model_flops_per_s", window_flops / std::max(1e-9, now - window_start)},
                   {"rss_bytes", resident_bytes()}, {"rss_peak_bytes", peak_resident_bytes()},
                   {"state_peak_bytes", memory.peak()}, {"params_bytes", memory.at_peak(shard::MemoryLedger::kParams)},
                   {"grads_bytes", memory.at_peak(shard::MemoryLedger::kGrads)},
                   {"optim_bytes", memory.at_peak(shard::MemoryLedger::kOptim)}, {"dropped_duplicates", dropped},
                   {"comm_wait_s", comm_wait_seconds}, {"comm_bytes", comm_bytes}};
      for (const auto& [k, v] : terms) line[k] = v;
      metrics << line.dump() << std::endl;
      window_start = now, window_pairs = 0, comm_wait_seconds = 0, comm_bytes = 0, window_flops = window_tokens = 0;
      sharded.reset_memory_peak();
    }
    if (rank == 0) progress.update(step, step == total_steps);

    // A stop signal on any rank stops every rank after this step, with a checkpoint.
    at::Tensor stop = at::full({1}, static_cast<int64_t>(g_stop_signal), at::kLong).to(comm.device());
    if (world > 1) comm.all_reduce_sum(stop);
    if (stop.cpu()[0].item<int64_t>() != 0) {
      if (next_batch.valid()) next_batch.wait();
      checkpoint(step);
      const int signal = g_stop_signal ? static_cast<int>(g_stop_signal) : SIGTERM;
      if (rank == 0) log_info("stopped by signal " + std::to_string(signal) + " after step " + std::to_string(step) +
                              "; checkpoint written; resume with --run.resume auto");
      return 128 + signal;
    }

    if (dev_set && (step % eval_every == 0 || step == total_steps)) {
      sharded.gather_full();
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
      comm.barrier();
      sharded.release_full();
    }
    // After the evaluation, so that the checkpoint knows this step's dev score.
    if (c.checkpoint_every > 0 && (step % c.checkpoint_every == 0 || step == total_steps)) checkpoint(step);
  }
  model.train(false);
  run_peak_state = std::max(run_peak_state, memory.peak());
  std::fprintf(stderr, "[rank %d] peak model state %.1f MiB (stage %d), peak RSS %.1f MiB\n", rank,
               static_cast<double>(run_peak_state) / (1 << 20), c.stage,
               static_cast<double>(peak_resident_bytes()) / (1 << 20));
  sharded.gather_full();
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
  comm.barrier();
  return 0;
}

}  // namespace angle::train

#include <ATen/Parallel.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "comm/comm.h"
#include "core/error.h"
#include "model/native_bf16.h"
#include "text/tokenizer.h"

namespace angle::cli {

std::optional<po::variables_map> parse(const std::string& command, const std::string& synopsis,
                                       const po::options_description& options, const std::vector<std::string>& args,
                                       const po::positional_options_description* positional) {
  po::options_description all(options);
  all.add_options()("help,h", "show this help");
  po::variables_map vm;
  try {
    po::command_line_parser parser(args);
    parser.options(all);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: angle " << command << " " << synopsis << "\n\n" << all << "\n";
      return std::nullopt;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    ANGLE_FAIL(e.what(), " (see 'angle ", command, " --help')");
  }
  return vm;
}

po::options_description model_options() {
  po::options_description o("model");
  o.add_options()
      ("model", po::value<std::string>()->required(), "HuggingFace / sentence-transformers model directory")
      ("pooling", po::value<std::string>(), "cls, cls_avg, cls_max, mean, max, last or a token index "
                                            "(default: the model's 1_Pooling config, else cls)")
      ("max-length", po::value<size_t>(), "truncate texts to N tokens including [CLS]/[SEP] (default: the model's)")
      ("prompt", po::value<std::string>(),
       "a template with {text} every text is put in, e.g. 'Summarize sentence \"{text}\" in one word:\"' "
       "(angle-emb's encode(prompt=...)); '' for none (default: the model directory's: angle_embedding.json, else "
       "config_sentence_transformers.json's default prompt)")
      ("bidirectional-from", po::value<int64_t>(),
       "BiLLM: a decoder's layers K.. attend both ways (angle-emb's apply_billm with BiLLM_START_INDEX=K; "
       "default: the model directory's angle_embedding.json, else causal)")
      ("dim", po::value<int64_t>(), "keep the first D dimensions of each embedding (a Matryoshka model used small; "
                                    "re-normalised when the model normalises; default: the model directory's "
                                    "truncate_dim, else all)")
      ("normalize", po::value<bool>(), "L2-normalise embeddings (default: true iff the model has a Normalize module)")
      ("dtype", po::value<std::string>()->default_value("fp32"),
       "fp32, bf16, or auto: bf16 where the device computes it natively (AVX512_BF16/AMX CPUs, CUDA sm_80+)")
      ("device", po::value<std::string>()->default_value("cpu"), "cpu, cuda or cuda:N")
      ("threads", po::value<int>(), "intra-op compute threads (default: all cores, or OMP_NUM_THREADS)");
  return o;
}

model::EncoderOptions encoder_options(const po::variables_map& vm) {
  model::EncoderOptions o;
  if (vm.count("pooling")) o.pooling = vm["pooling"].as<std::string>();
  if (vm.count("max-length")) o.max_length = vm["max-length"].as<size_t>();
  if (vm.count("prompt")) {
    o.prompt = vm["prompt"].as<std::string>();
    text::check_prompt("--prompt", *o.prompt);  // before anything is read
  }
  if (vm.count("bidirectional-from")) o.bidirectional_from = vm["bidirectional-from"].as<int64_t>();
  if (vm.count("dim")) o.dim = vm["dim"].as<int64_t>();
  if (vm.count("normalize")) o.normalize = vm["normalize"].as<bool>();
  o.dtype = vm["dtype"].as<std::string>();
  o.device = vm["device"].as<std::string>();
  return o;
}

std::string dtype_description(const model::Encoder& encoder) {
  if (encoder.dtype != at::kBFloat16) return "fp32";
  const std::string native = model::native_bf16(encoder.device);
  return native.empty() ? "bf16 (emulated: no native bf16 on " + encoder.device.str() + ")" : "bf16 (native: " + native + ")";
}

void apply_threads(const po::variables_map& vm) {
  if (!vm.count("threads")) return;
  int threads = vm["threads"].as<int>();
  ANGLE_CHECK(threads > 0, "--threads must be positive (got ", threads, ")");
  at::set_num_threads(threads);
}

int on_ranks(const char* command, const std::function<int(comm::Comm& comm)>& body) {
  std::unique_ptr<comm::Comm> comm = comm::make_comm("auto");
  try {
    return body(*comm);
  } catch (const std::exception& e) {
    if (comm->size() == 1) throw;
    std::fprintf(stderr, "angle %s: error: rank %d: %s\n", command, comm->rank(), message_of(e).c_str());
    std::fflush(stderr);
    comm->abort_job(1);
  }
}

}  // namespace angle::cli

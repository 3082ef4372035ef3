// The `angle` program's subcommands: each lives in its own cmd_*.cpp and parses its own
// options with Boost.Program_options; main.cpp only dispatches.
#pragma once
#include <boost/program_options.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/encoder.h"

namespace angle::comm {
class Comm;
}

namespace angle::cli {

namespace po = boost::program_options;

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};
const std::vector<Command>& commands();

int run_embed(const std::vector<std::string>& args);
int run_eval(const std::vector<std::string>& args);
int run_tokenize(const std::vector<std::string>& args);
int run_train(const std::vector<std::string>& args);
int run_export(const std::vector<std::string>& args);
int run_prepare(const std::vector<std::string>& args);
int run_plan(const std::vector<std::string>& args);
int run_sweep(const std::vector<std::string>& args);
int run_report(const std::vector<std::string>& args);
int run_mine(const std::vector<std::string>& args);

// Parses args; prints usage and returns nullopt for --help. Unknown options are errors.
// `positional`: options that may be given without their name (e.g. angle report DIR...).
std::optional<po::variables_map> parse(const std::string& command, const std::string& synopsis,
                                       const po::options_description& options, const std::vector<std::string>& args,
                                       const po::positional_options_description* positional = nullptr);

// --model, --pooling, --max-length, --dtype, --device, --threads: shared by embed and eval.
po::options_description model_options();
model::EncoderOptions encoder_options(const po::variables_map& vm);
void apply_threads(const po::variables_map& vm);
// "fp32", or "bf16" with what makes it native on the encoder's device ("bf16 (native: avx512_bf16)").
std::string dtype_description(const model::Encoder& encoder);

// Runs `body` on this process's communicator (make_comm("auto"): every rank under mpirun, else one).
// Under mpirun one rank's error ends them all at once, with "angle COMMAND: error: rank R: ...".
int on_ranks(const char* command, const std::function<int(comm::Comm& comm)>& body);

}  // namespace angle::cli

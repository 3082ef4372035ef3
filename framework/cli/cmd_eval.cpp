#include <ATen/ATen.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "eval/sts_eval.h"

namespace angle::cli {

int run_eval(const std::vector<std::string>& args) {
  po::options_description options = model_options();
  options.add_options()
      ("data", po::value<std::vector<std::string>>()->required(), "stsb:PATH or sick:PATH (repeatable)")
      ("batch-size", po::value<size_t>()->default_value(32), "texts per forward pass")
      ("json", po::bool_switch(), "one JSON object per dataset on stdout instead of a table")
      ("quiet", po::bool_switch(), "no progress line");
  auto vm = parse("eval", "--model DIR --data stsb:PATH|sick:PATH [--data ...] [--json] [options]", options, args);
  if (!vm) return 0;
  apply_threads(*vm);
  std::vector<data::StsPairs> sets;  // read every file first: a typo fails before the model loads
  for (const std::string& spec : (*vm)["data"].as<std::vector<std::string>>()) sets.push_back(data::read_sts_spec(spec));
  auto encoder = model::load_encoder((*vm)["model"].as<std::string>(), encoder_options(*vm));
  eval::EmbedOptions embed{(*vm)["batch-size"].as<size_t>(), !(*vm)["quiet"].as<bool>()};
  const bool json = (*vm)["json"].as<bool>();
  if (!json) std::printf("%-10s %6s %9s %9s  %s\n", "dataset", "n", "spearman", "pearson", "file");
  for (const data::StsPairs& set : sets) {
    eval::StsScore score = eval::evaluate_sts(encoder, set, embed);
    if (json) {
      std::cout << nlohmann::json{{"dataset", set.name}, {"n", score.n}, {"spearman", score.spearman},
                                  {"pearson", score.pearson}, {"path", set.path}, {"model", encoder.dir},
                                  {"pooling", encoder.pooling.name()}}.dump()
                << std::endl;
    } else {
      std::printf("%-10s %6zu %9.2f %9.2f  %s\n", set.name.c_str(), score.n, score.spearman, score.pearson,
                  set.path.c_str());
    }
  }
  return 0;
}

}  // namespace angle::cli

#include <ATen/ATen.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "eval/sts_eval.h"
#include "eval/sts_suite.h"

namespace angle::cli {
namespace {

int run_suite(const po::variables_map& vm) {
  ANGLE_CHECK(vm["suite"].as<std::string>() == "sts", "unknown --suite '", vm["suite"].as<std::string>(), "' (sts)");
  auto sets = eval::read_sts_suite(vm["data-dir"].as<std::string>());  // before loading the model
  size_t present = 0;
  for (const auto& set : sets) present += set.pairs.has_value();
  ANGLE_CHECK(present > 0, vm["data-dir"].as<std::string>(), ": none of the STS12-16, STS-B, SICK-R files found");
  auto encoder = model::load_encoder(vm["model"].as<std::string>(), encoder_options(vm));
  eval::EmbedOptions embed{vm["batch-size"].as<size_t>(), !vm["quiet"].as<bool>()};
  const bool json = vm["json"].as<bool>();
  std::string header, row;
  double sum = 0;
  for (const auto& set : sets) {
    char cell[32];
    if (set.pairs) {
      eval::StsScore score = eval::evaluate_sts(encoder, *set.pairs, embed);
      sum += score.spearman;
      std::snprintf(cell, sizeof cell, "%8.2f", score.spearman);
      if (json)
        std::cout << nlohmann::json{{"dataset", set.name}, {"n", score.n}, {"spearman", score.spearman},
                                    {"pearson", score.pearson}, {"path", set.location}}.dump() << std::endl;
    } else {
      std::snprintf(cell, sizeof cell, "%8s", "-");
    }
    char name[32];
    std::snprintf(name, sizeof name, "%8s", set.name.c_str());
    header += name, row += cell;
  }
  const double average = sum / static_cast<double>(present);
  if (json) {
    std::cout << nlohmann::json{{"dataset", "avg"}, {"sets", present}, {"spearman", average}}.dump() << std::endl;
  } else {
    std::printf("%s %8s\n%s %8.2f\n", header.c_str(), "Avg.", row.c_str(), average);
    if (present < sets.size())
      std::printf("(Avg. over the %zu sets found; '-' = not in %s)\n", present, vm["data-dir"].as<std::string>().c_str());
  }
  return 0;
}

}  // namespace

int run_eval(const std::vector<std::string>& args) {
  po::options_description options = model_options();
  options.add_options()
      ("data", po::value<std::vector<std::string>>(), "stsb:PATH or sick:PATH (repeatable)")
      ("suite", po::value<std::string>(), "sts: the paper's table (STS12-16 'all', STS-B, SICK-R) from --data-dir")
      ("data-dir", po::value<std::string>()->default_value("data"), "SentEval-style directory for --suite")
      ("batch-size", po::value<size_t>()->default_value(32), "texts per forward pass")
      ("json", po::bool_switch(), "one JSON object per dataset on stdout instead of a table")
      ("quiet", po::bool_switch(), "no progress line");
  auto vm = parse("eval", "--model DIR (--data stsb:PATH|sick:PATH ... | --suite sts --data-dir DIR) [--json]", options,
                  args);
  if (!vm) return 0;
  apply_threads(*vm);
  ANGLE_CHECK(vm->count("data") != vm->count("suite"), "give either --data or --suite sts (see 'angle eval --help')");
  if (vm->count("suite")) return run_suite(*vm);
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
                                  {"pooling", encoder.pooling.name()}, {"prompt", encoder.prompt},
                                  {"bidirectional_from", encoder.export_spec.embedding.bidirectional_from.value_or(-1)},
                                  {"dtype", encoder.dtype == at::kBFloat16 ? "bf16" : "fp32"}}.dump()
                << std::endl;
    } else {
      std::printf("%-10s %6zu %9.2f %9.2f  %s\n", set.name.c_str(), score.n, score.spearman, score.pearson,
                  set.path.c_str());
    }
  }
  return 0;
}

}  // namespace angle::cli

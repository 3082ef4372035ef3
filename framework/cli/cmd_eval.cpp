#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "comm/comm.h"
#include "core/atomic_output.h"
#include "core/error.h"
#include "eval/retrieval_eval.h"
#include "eval/sts_eval.h"
#include "eval/sts_suite.h"

namespace angle::cli {
namespace {

namespace fs = std::filesystem;

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

int run_retrieval(const po::variables_map& vm, comm::Comm& comm) {
  const std::string dir = vm["retrieval"].as<std::string>(), split = vm["split"].as<std::string>();
  const eval::BeirSet set = eval::read_beir(dir, split);  // before loading the model
  std::optional<std::string> run_output;
  if (vm.count("run-output")) {
    run_output = vm["run-output"].as<std::string>();
    const fs::path parent = fs::absolute(*run_output).parent_path();
    ANGLE_CHECK(fs::is_directory(parent), "--run-output ", *run_output, ": directory ", parent.string(), " does not exist");
  }
  eval::RetrievalOptions options{{vm["batch-size"].as<size_t>(), !vm["quiet"].as<bool>(), {}}, {}, {}};
  for (auto [name, prompt] :
       {std::pair{"query-prompt", &options.query_prompt}, std::pair{"doc-prompt", &options.doc_prompt}})
    if (vm.count(name)) {
      *prompt = vm[name].as<std::string>();
      text::check_prompt(std::string("--") + name, **prompt);
    }
  auto encoder = model::load_encoder(vm["model"].as<std::string>(), encoder_options(vm));
  const eval::RetrievalResult result = eval::evaluate_retrieval(encoder, set, options, comm);
  if (comm.rank() != 0) return 0;
  if (run_output) write_atomically(*run_output, eval::trec_run_text(result.run, "angle"));
  const eval::RetrievalScores& s = result.scores;
  if (vm["json"].as<bool>()) {
    std::cout << nlohmann::json{{"dataset", dir}, {"split", split}, {"queries", s.queries},
                                {"documents", set.doc_ids.size()}, {"ndcg_at_10", s.ndcg_at_10},
                                {"mrr_at_10", s.mrr_at_10}, {"recall_at_100", s.recall_at_100},
                                {"ranks", comm.size()}, {"model", encoder.dir}}.dump()
              << std::endl;
  } else {
    std::printf("%-10s %7s %9s %9s %9s %10s  %s\n", "split", "queries", "documents", "nDCG@10", "MRR@10", "Recall@100",
                "directory");
    std::printf("%-10s %7zu %9zu %9.2f %9.2f %10.2f  %s\n", split.c_str(), s.queries, set.doc_ids.size(), s.ndcg_at_10,
                s.mrr_at_10, s.recall_at_100, dir.c_str());
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
      ("retrieval", po::value<std::string>(),
       "BEIR directory (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv): nDCG@10, MRR@10, Recall@100 by exact cosine search")
      ("split", po::value<std::string>()->default_value("test"), "--retrieval: the qrels file to score")
      ("query-prompt", po::value<std::string>(), "--retrieval: template with {text} for queries (default: the model's prompt)")
      ("doc-prompt", po::value<std::string>(), "--retrieval: template with {text} for documents (default: the model's prompt)")
      ("run-output", po::value<std::string>(), "--retrieval: write the 100 hits per query as a TREC run file")
      ("batch-size", po::value<size_t>()->default_value(32), "texts per forward pass")
      ("json", po::bool_switch(), "one JSON object per dataset on stdout instead of a table")
      ("quiet", po::bool_switch(), "no progress line");
  auto vm = parse("eval",
                  "--model DIR (--data stsb:PATH|sick:PATH ... | --suite sts --data-dir DIR | --retrieval DIR) [--json]",
                  options, args);
  if (!vm) return 0;
  apply_threads(*vm);
  ANGLE_CHECK(vm->count("data") + vm->count("suite") + vm->count("retrieval") == 1,
              "give one of --data, --suite sts or --retrieval DIR (see 'angle eval --help')");
  for (const char* only : {"query-prompt", "doc-prompt", "run-output"})
    ANGLE_CHECK(!vm->count(only) || vm->count("retrieval"), "--", only, " applies to --retrieval only");
  if (vm->count("suite")) return run_suite(*vm);
  if (vm->count("retrieval")) return on_ranks("eval", [&](comm::Comm& comm) { return run_retrieval(*vm, comm); });
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
                                  {"dim", encoder.dim > 0 ? encoder.dim : encoder.model->hidden_size()},
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

// angle mine: hard negatives for (query, positive) pairs, written as format C training data
// (eval/hard_negatives.h has the rules). Under mpirun the ranks share the embedding and the search.
#include <ATen/ATen.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "comm/comm.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text_file.h"
#include "data/dataset_file.h"
#include "eval/embedder.h"
#include "eval/embedding_matrix.h"
#include "eval/exact_search.h"
#include "eval/hard_negatives.h"

namespace angle::cli {
namespace {
namespace fs = std::filesystem;

data::RawDataset read_pairs(const po::variables_map& vm) {
  const std::string path = vm["queries"].as<std::string>();
  const std::string format = path.ends_with(".jsonl") ? "jsonl" : path.ends_with(".tsv") ? "tsv" : "";
  ANGLE_CHECK(!format.empty(), "--queries ", path, ": expected a .jsonl or .tsv file of (query, positive) pairs");
  data::RawOptions options;
  options.format = format, options.input = path, options.columns = vm["columns"].as<std::string>();
  data::RawDataset raw = data::read_raw(options);
  ANGLE_CHECK(raw.format == "B", "--queries ", path, ": --columns must name query and positive only (format B), not "
              "format ", raw.format);
  return raw;
}

// Every query's embedding, on every rank: read from --query-embeddings (a row per input pair) or
// computed across the ranks.
at::Tensor query_embeddings(const po::variables_map& vm, const model::Encoder& encoder, const eval::MiningSet& set,
                            size_t pairs, eval::EmbedOptions options, comm::Comm& comm) {
  if (!vm.count("query-embeddings")) {
    if (vm.count("query-prompt")) options.prompt = vm["query-prompt"].as<std::string>();
    return eval::unit_rows(eval::embed_texts(encoder, set.queries, options, comm));
  }
  const eval::EmbeddingMatrix matrix(vm["query-embeddings"].as<std::string>());
  ANGLE_CHECK(matrix.rows() == static_cast<int64_t>(pairs), matrix.path(), ": ", matrix.rows(), " rows for the ", pairs,
              " pairs of --queries (one row per pair, in order)");
  return eval::unit_rows(matrix.read(0, matrix.rows()).index_select(0, at::tensor(set.query_rows, at::kLong)));
}

// This rank's corpus rows a block at a time: a contiguous range of --corpus-embeddings' rows, read
// block by block, or its share of the corpus embedded here.
struct CorpusSource {
  std::unique_ptr<eval::EmbeddingMatrix> matrix;
  std::vector<int64_t> corpus_of_line;  // matrix row -> corpus row (-1: a repeated text)
  eval::EmbeddedShare share;
  int64_t next = 0, end = 0, block_rows = 0;

  bool operator()(eval::CorpusBlock& block) {
    if (next >= end) return false;
    const int64_t count = std::min(block_rows, end - next);
    if (!matrix) {
      block = {share.rows.narrow(0, next, count), share.ids.narrow(0, next, count)};
    } else {
      at::Tensor rows = matrix->read(next, count);
      std::vector<int64_t> keep, ids;
      for (int64_t r = 0; r < count; ++r)
        if (int64_t c = corpus_of_line[static_cast<size_t>(next + r)]; c >= 0) keep.push_back(r), ids.push_back(c);
      block = {eval::unit_rows(rows.index_select(0, at::tensor(keep, at::kLong))), at::tensor(ids, at::kLong)};
    }
    next += count;
    return true;
  }
};

CorpusSource corpus_source(const po::variables_map& vm, const model::Encoder& encoder, const eval::MiningSet& set,
                           int64_t corpus_lines, int64_t dim, eval::EmbedOptions options, comm::Comm& comm) {
  CorpusSource source;
  source.block_rows = vm["block-rows"].as<int64_t>();
  ANGLE_CHECK(source.block_rows > 0, "--block-rows must be positive");
  if (!vm.count("corpus-embeddings")) {
    if (vm.count("doc-prompt")) options.prompt = vm["doc-prompt"].as<std::string>();
    source.share = eval::embed_share(encoder, set.corpus, options, comm);
    source.share.rows = eval::unit_rows(source.share.rows);
    source.end = source.share.rows.size(0);
    return source;
  }
  source.matrix = std::make_unique<eval::EmbeddingMatrix>(vm["corpus-embeddings"].as<std::string>());
  const eval::EmbeddingMatrix& m = *source.matrix;
  ANGLE_CHECK(m.rows() == corpus_lines, m.path(), ": ", m.rows(), " rows for the ", corpus_lines,
              " lines of --corpus (one row per line, in order)");
  ANGLE_CHECK(m.dim() == dim, m.path(), ": ", m.dim(), "-dimensional, but the queries' embeddings have ", dim);
  source.corpus_of_line.assign(static_cast<size_t>(corpus_lines), -1);
  for (size_t c = 0; c < set.corpus.size(); ++c) {
    ANGLE_CHECK(set.corpus_rows[c] >= 0, "--corpus-embeddings: the positive '", set.corpus[c].substr(0, 80),
                "' is not a line of --corpus (with precomputed embeddings every positive must be in the corpus)");
    source.corpus_of_line[static_cast<size_t>(set.corpus_rows[c])] = static_cast<int64_t>(c);
  }
  source.next = corpus_lines * comm.rank() / comm.size(), source.end = corpus_lines * (comm.rank() + 1) / comm.size();
  return source;
}

eval::MineFilters filters_of(const po::variables_map& vm) {
  eval::MineFilters f;
  f.num_negatives = vm["num-negatives"].as<int64_t>();
  f.range_min = vm["range-min"].as<int64_t>();
  if (vm.count("range-max")) f.range_max = vm["range-max"].as<int64_t>();
  for (auto [name, field] : {std::pair{"absolute-margin", &f.absolute_margin}, {"relative-margin", &f.relative_margin},
                             {"max-score", &f.max_score}, {"min-score", &f.min_score}})
    if (vm.count(name)) *field = vm[name].as<double>();
  return f;
}

// What made the file: recorded in its attribute "mined", so that a training run's data says where it came from.
std::string provenance(const po::variables_map& vm, const model::Encoder& encoder, const eval::MineFilters& f,
                       int64_t range_max, int ranks) {
  nlohmann::json j{{"model", encoder.dir}, {"pooling", encoder.pooling.name()}, {"num_negatives", f.num_negatives},
                   {"range_min", f.range_min}, {"range_max", range_max}, {"ranks", ranks}};
  for (const char* name : {"queries", "corpus", "query-embeddings", "corpus-embeddings", "query-prompt", "doc-prompt"})
    if (vm.count(name)) j[name] = vm[name].as<std::string>();
  for (auto [name, value] : {std::pair{"absolute_margin", f.absolute_margin}, {"relative_margin", f.relative_margin},
                             {"max_score", f.max_score}, {"min_score", f.min_score}})
    if (value) j[name] = *value;
  if (encoder.dim > 0) j["dim"] = encoder.dim;
  return j.dump();
}

int mine(const po::variables_map& vm, comm::Comm& comm) {
  const std::string output = vm["output"].as<std::string>();
  ANGLE_CHECK(output.ends_with(".h5"), "--output ", output, ": must be an .h5 file (format C training data)");
  const fs::path parent = fs::absolute(output).parent_path();
  ANGLE_CHECK(fs::is_directory(parent), "--output ", output, ": directory ", parent.string(), " does not exist");
  ANGLE_CHECK(!vm.count("corpus-embeddings") || vm.count("corpus"),
              "--corpus-embeddings needs --corpus, the texts of its rows (one per line)");
  for (const char* name : {"query-prompt", "doc-prompt"})
    if (vm.count(name)) text::check_prompt(std::string("--") + name, vm[name].as<std::string>());
  const eval::MineFilters filters = filters_of(vm);
  // Everything is read and checked before the model loads.
  const data::RawDataset pairs = read_pairs(vm);
  std::vector<std::string> corpus_lines;
  if (vm.count("corpus")) {
    corpus_lines = read_utf8_lines(vm["corpus"].as<std::string>());
    ANGLE_CHECK(!corpus_lines.empty(), "--corpus ", vm["corpus"].as<std::string>(), ": no texts");
  }
  const eval::MiningSet set = eval::build_mining_set(pairs.texts[0], pairs.texts[1], vm.count("corpus") ? &corpus_lines : nullptr);
  const int64_t range_max =
      eval::resolved_range_max(filters, set.most_positives(), static_cast<int64_t>(set.corpus.size()));

  const double start = now_seconds();
  const model::Encoder encoder = model::load_encoder(vm["model"].as<std::string>(), encoder_options(vm));
  const eval::EmbedOptions embed{vm["batch-size"].as<size_t>(), !vm["quiet"].as<bool>() && comm.rank() == 0, {}};
  const at::Tensor queries = query_embeddings(vm, encoder, set, pairs.size(), embed, comm);
  CorpusSource source = corpus_source(vm, encoder, set, static_cast<int64_t>(corpus_lines.size()), queries.size(1),
                                      embed, comm);
  const eval::MinedNegatives mined = eval::mine_hard_negatives(set, queries, std::ref(source), filters, comm);
  if (comm.rank() != 0) return 0;

  data::RawDataset out;
  out.format = "C", out.columns = {"query", "positive", "negative"}, out.texts.resize(3);
  double positive_sum = 0, negative_sum = 0;
  size_t slot = 0, negatives = 0;
  for (size_t q = 0; q < set.queries.size(); ++q)
    for (int64_t p : set.positives[q]) {
      positive_sum += mined.positive_scores[slot++];
      for (size_t j = 0; j < mined.negatives[q].size(); ++j) {
        out.texts[0].push_back(set.queries[q]);
        out.texts[1].push_back(set.corpus[static_cast<size_t>(p)]);
        out.texts[2].push_back(set.corpus[static_cast<size_t>(mined.negatives[q][j])]);
        negative_sum += mined.scores[q][j], ++negatives;
      }
    }
  ANGLE_CHECK(negatives > 0, "no candidate passed the filters: nothing to write (loosen --range-max, the margins or "
              "the score limits)");
  out.sources = {vm["queries"].as<std::string>()};
  out.attributes["mined"] = provenance(vm, encoder, filters, range_max, comm.size());
  data::write_dataset(output, out, encoder.tokenizer, encoder.dir, encoder.max_length, /*keep_text=*/true);
  char summary[256];
  std::snprintf(summary, sizeof summary, "; mean cosine: positives %.4f, negatives %.4f; %.1f s on %d rank(s)",
                positive_sum / static_cast<double>(slot), negative_sum / static_cast<double>(negatives),
                now_seconds() - start, comm.size());
  log_info("mined " + std::to_string(out.size()) + " (query, positive, negative) triplets for " +
           std::to_string(set.queries.size()) + " queries from a corpus of " + std::to_string(set.corpus.size()) +
           " texts -> " + output + summary);
  return 0;
}

}  // namespace

int run_mine(const std::vector<std::string>& args) {
  po::options_description options = model_options();
  options.add_options()
      ("queries", po::value<std::string>()->required(), "(query, positive) pairs: .jsonl or .tsv")
      ("columns", po::value<std::string>()->default_value("query=query,positive=positive"),
       "the fields of --queries that hold the query and the positive")
      ("corpus", po::value<std::string>(), "candidate texts, one per line (default: the positives); the positives "
                                           "are added when missing")
      ("query-embeddings", po::value<std::string>(), "precomputed query embeddings (`angle embed` .h5, a row per pair)")
      ("corpus-embeddings", po::value<std::string>(), "precomputed corpus embeddings (`angle embed` .h5, a row per "
                                                      "--corpus line): the corpus is embedded once, mined many times")
      ("output", po::value<std::string>()->required(), "format C training data (.h5, with the texts)")
      ("num-negatives", po::value<int64_t>()->default_value(3), "negatives per (query, positive)")
      ("range-min", po::value<int64_t>()->default_value(0), "skip the first N candidates (the hardest)")
      ("range-max", po::value<int64_t>(), "consider the first N candidates only (default: range-min + num-negatives, "
                                          "x 10 with a margin or max-score, + the most positives of a query)")
      ("absolute-margin", po::value<double>(), "drop candidates scoring above the positive's score - margin")
      ("relative-margin", po::value<double>(), "drop candidates scoring above the positive's score x (1 - margin)")
      ("max-score", po::value<double>(), "drop candidates scoring above this cosine")
      ("min-score", po::value<double>(), "drop candidates scoring below this cosine")
      ("query-prompt", po::value<std::string>(), "template with {text} for queries (default: the model's prompt)")
      ("doc-prompt", po::value<std::string>(), "template with {text} for the corpus (default: the model's prompt)")
      ("block-rows", po::value<int64_t>()->default_value(65536), "corpus rows scored at a time per rank (memory)")
      ("batch-size", po::value<size_t>()->default_value(32), "texts per forward pass")
      ("quiet", po::bool_switch(), "no progress line");
  auto vm = parse("mine", "--model DIR --queries PAIRS.jsonl --output OUT.h5 [--corpus TEXTS.txt] [options]", options,
                  args);
  if (!vm) return 0;
  apply_threads(*vm);
  return on_ranks("mine", [&](comm::Comm& comm) { return mine(*vm, comm); });
}

}  // namespace angle::cli

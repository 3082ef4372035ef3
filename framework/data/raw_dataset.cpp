#include "data/raw_dataset.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "core/text_file.h"
#include "text/tokenizer.h"
#include "data/sts_files.h"

namespace angle::data {
namespace fs = std::filesystem;
namespace {

RawDataset pairs_dataset(const StsPairs& pairs, std::vector<std::string> sources) {
  RawDataset raw{"A", {"text1", "text2"}, {pairs.text1, pairs.text2}, {}, {}, std::move(sources), {}, {}};
  for (double s : pairs.score) raw.labels.push_back(static_cast<float>(s));
  return raw;
}

// SentEval's SNLI files: s1.<split>, s2.<split>, labels.<split>, aligned by line.
RawDataset read_snli(const RawOptions& o) {
  const fs::path dir(o.input);
  ANGLE_CHECK(!o.split.empty(), "--split is required for snli-senteval (dev, test or train)");
  std::string s1 = (dir / ("s1." + o.split)).string(), s2 = (dir / ("s2." + o.split)).string(),
              lab = (dir / ("labels." + o.split)).string();
  auto premises = read_utf8_lines(s1), hypotheses = read_utf8_lines(s2), labels = read_utf8_lines(lab);
  ANGLE_CHECK(premises.size() == hypotheses.size() && premises.size() == labels.size(), o.input,
              ": s1/s2/labels files differ in length (", premises.size(), ", ", hypotheses.size(), ", ", labels.size(), ")");
  for (size_t i = 0; i < labels.size(); ++i)
    ANGLE_CHECK(labels[i] == "entailment" || labels[i] == "neutral" || labels[i] == "contradiction", lab, ":", i + 1,
                ": unknown label '", labels[i], "' (entailment, neutral, contradiction)");
  std::vector<std::string> sources = {s1, s2, lab};
  if (!o.triplets) {  // entailment 1, contradiction 0, neutral dropped (reference §3.2)
    RawDataset raw{"A", {"text1", "text2"}, {{}, {}}, {}, {}, sources, {}, {}};
    for (size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] == "neutral") continue;
      raw.texts[0].push_back(premises[i]);
      raw.texts[1].push_back(hypotheses[i]);
      raw.labels.push_back(labels[i] == "entailment" ? 1.f : 0.f);
    }
    return raw;
  }
  // Triplets: per premise (in order of first appearance), its i-th entailment with its i-th
  // contradiction, as many as the smaller of the two counts.
  std::vector<std::string> order;
  std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::string>>> by_premise;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] == "neutral") continue;
    auto [it, fresh] = by_premise.try_emplace(premises[i]);
    if (fresh) order.push_back(premises[i]);
    (labels[i] == "entailment" ? it->second.first : it->second.second).push_back(hypotheses[i]);
  }
  RawDataset raw{"C", {"query", "positive", "negative"}, {{}, {}, {}}, {}, {}, sources, {}, {}};
  for (const std::string& premise : order) {
    const auto& [entailed, contradicted] = by_premise[premise];
    for (size_t k = 0; k < std::min(entailed.size(), contradicted.size()); ++k) {
      raw.texts[0].push_back(premise);
      raw.texts[1].push_back(entailed[k]);
      raw.texts[2].push_back(contradicted[k]);
    }
  }
  return raw;
}

// "text1=a,text2=b,label=score" -> {text1: a, ...}; decides the format from the target names.
std::map<std::string, std::string> parse_mapping(const std::string& spec, std::string& format) {
  std::map<std::string, std::string> mapping;
  for (const std::string& item : split(spec, ',')) {
    auto eq = item.find('=');
    ANGLE_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < item.size(), "--columns '", spec,
                "': expected name=column pairs, e.g. text1=sentence1,text2=sentence2,label=score");
    mapping[item.substr(0, eq)] = item.substr(eq + 1);
  }
  for (const auto& [target, column] : mapping)
    ANGLE_CHECK(target == "text1" || target == "text2" || target == "label" || target == "query" ||
                    target == "positive" || target == "negative" || target == "weight",
                "--columns: unknown target '", target, "' (text1, text2, label, query, positive, negative, weight)");
  if (mapping.count("text1") || mapping.count("text2") || mapping.count("label")) {
    format = "A";
    for (const char* need : {"text1", "text2", "label"})
      ANGLE_CHECK(mapping.count(need), "--columns: format A needs text1, text2 and label (missing ", need, ")");
  } else {
    ANGLE_CHECK(mapping.count("query") && mapping.count("positive"), "--columns: name text1,text2,label (format A) "
                "or query,positive[,negative] (formats B/C)");
    format = mapping.count("negative") ? "C" : "B";
  }
  return mapping;
}

float parse_label(const std::string& text, const std::string& where, const RawOptions& o, const char* what) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  ANGLE_CHECK(!text.empty() && end && *end == '\0' && std::isfinite(v), where, ": ", what, " '", text,
              "' is not a number");
  ANGLE_CHECK(v >= o.label_min && v <= o.label_max, where, ": ", what, " ", v, " is outside the declared range [",
              o.label_min, ", ", o.label_max, "]");
  return static_cast<float>(v);
}

RawDataset read_table(const RawOptions& o) {
  RawDataset raw;
  auto mapping = parse_mapping(o.columns, raw.format);
  raw.columns = raw.format == "A" ? std::vector<std::string>{"text1", "text2"}
              : raw.format == "B" ? std::vector<std::string>{"query", "positive"}
                                  : std::vector<std::string>{"query", "positive", "negative"};
  raw.texts.resize(raw.columns.size());
  raw.sources = {o.input};
  auto lines = read_utf8_lines(o.input);
  auto add_row = [&](const std::map<std::string, std::string>& row, const std::string& where) {
    for (size_t c = 0; c < raw.columns.size(); ++c) {
      auto it = row.find(mapping[raw.columns[c]]);
      ANGLE_CHECK(it != row.end(), where, ": missing column '", mapping[raw.columns[c]], "' (mapped to ", raw.columns[c], ")");
      raw.texts[c].push_back(it->second);
    }
    if (raw.format == "A") {
      auto it = row.find(mapping["label"]);
      ANGLE_CHECK(it != row.end(), where, ": missing column '", mapping["label"], "' (mapped to label)");
      raw.labels.push_back(parse_label(it->second, where, o, "label"));
    }
    if (mapping.count("weight")) {
      auto it = row.find(mapping["weight"]);
      ANGLE_CHECK(it != row.end(), where, ": missing column '", mapping["weight"], "' (mapped to weight)");
      raw.weights.push_back(parse_label(it->second, where, RawOptions{}, "weight"));
      ANGLE_CHECK(raw.weights.back() >= 0, where, ": weight ", raw.weights.back(), " is negative (weights are >= 0)");
    }
  };
  if (o.format == "jsonl") {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].find_first_not_of(" \t") == std::string::npos) continue;
      const std::string where = o.input + ":" + std::to_string(i + 1);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(lines[i]);
      } catch (const nlohmann::json::exception&) {
        ANGLE_FAIL(where, ": not a JSON object");
      }
      ANGLE_CHECK(j.is_object(), where, ": not a JSON object");
      std::map<std::string, std::string> row;
      for (const auto& [k, v] : j.items()) row[k] = v.is_string() ? v.get<std::string>() : v.dump();
      add_row(row, where);
    }
  } else {
    ANGLE_CHECK(o.header, "--format tsv needs a header line naming the columns");
    auto names = split(lines[0], '\t');
    for (size_t i = 1; i < lines.size(); ++i) {
      auto fields = split(lines[i], '\t');
      ANGLE_CHECK(fields.size() == names.size(), o.input, ":", i + 1, ": expected ", names.size(),
                  " tab-separated columns (as the header), found ", fields.size());
      std::map<std::string, std::string> row;
      for (size_t c = 0; c < names.size(); ++c) row[names[c]] = fields[c];
      add_row(row, o.input + ":" + std::to_string(i + 1));
    }
  }
  ANGLE_CHECK(raw.size() > 0, o.input, ": no examples");
  return raw;
}

}  // namespace

RawDataset read_raw(const RawOptions& o) {
  RawDataset raw;
  if (o.format == "stsb") {
    raw = pairs_dataset(read_stsb(o.input), {o.input});
  } else if (o.format == "sick") {
    raw = pairs_dataset(read_sick(o.input), {o.input});
  } else if (o.format == "senteval-sts") {
    raw = pairs_dataset(read_senteval_sts(o.input), {});
    for (const auto& entry : fs::directory_iterator(o.input))
      if (entry.path().filename().string().find(".txt") != std::string::npos) raw.sources.push_back(entry.path().string());
    std::sort(raw.sources.begin(), raw.sources.end());
  } else if (o.format == "snli-senteval") {
    raw = read_snli(o);
  } else if (o.format == "jsonl" || o.format == "tsv") {
    raw = read_table(o);
  } else {
    ANGLE_FAIL("unknown --format '", o.format, "' (stsb, sick, senteval-sts, snli-senteval, jsonl, tsv)");
  }
  if (o.format != "jsonl" && o.format != "tsv")
    for (size_t i = 0; i < raw.labels.size(); ++i)
      ANGLE_CHECK(raw.labels[i] >= o.label_min && raw.labels[i] <= o.label_max, o.input, ": example ", i + 1, " label ",
                  raw.labels[i], " is outside the declared range [", o.label_min, ", ", o.label_max, "]");
  const bool declared = o.label_min > -1e300 || o.label_max < 1e300;
  const std::map<std::string, std::string> scales = {{"stsb", "0:5"}, {"senteval-sts", "0:5"}, {"sick", "1:5"},
                                                     {"snli-senteval", "0:1"}};
  if (raw.format == "A" && declared) {
    std::ostringstream range;
    range.precision(std::numeric_limits<double>::max_digits10);
    range << o.label_min << ":" << o.label_max;
    raw.attributes["label_range"] = range.str();
  } else if (raw.format == "A" && scales.count(o.format)) {
    raw.attributes["label_range"] = scales.at(o.format);
  }
  if (!o.llm_model.empty()) {
    raw.attributes["annotator_model"] = o.llm_model;
    raw.attributes["annotator_prompt"] = o.llm_prompt;
  }
  return raw;
}

std::vector<std::string> column_prompts(const std::string& format, const Prompts& p, const std::string& where,
                                        const std::string& style) {
  const bool flags = style == "--";
  const std::string text = flags ? "--text-prompt" : "data.text_prompt", query = flags ? "--query-prompt" : "data.query_prompt",
                    doc = flags ? "--doc-prompt" : "data.doc_prompt";
  text::check_prompt(text, p.text), text::check_prompt(query, p.query), text::check_prompt(doc, p.doc);
  if (format == "A") {
    ANGLE_CHECK(p.query.empty() && p.doc.empty(), where, ": ", query, "/", doc, " apply to formats B and C; format A "
                "data (text1, text2) takes ", text);
    return {p.text, p.text};
  }
  ANGLE_CHECK(p.text.empty(), where, ": ", text, " applies to format A; format ", format, " data takes ", query,
              " (the query) and ", doc, " (positive and negative)");
  std::vector<std::string> prompts = {p.query, p.doc};
  if (format == "C") prompts.push_back(p.doc);
  return prompts;
}

std::pair<double, double> parse_label_range(const std::string& where, const std::string& text) {
  const auto colon = text.find(':');
  char *end1 = nullptr, *end2 = nullptr;
  const std::string lo = text.substr(0, colon), hi = colon == std::string::npos ? "" : text.substr(colon + 1);
  const double a = std::strtod(lo.c_str(), &end1), b = std::strtod(hi.c_str(), &end2);
  ANGLE_CHECK(colon != std::string::npos && !lo.empty() && !hi.empty() && *end1 == '\0' && *end2 == '\0' &&
                  std::isfinite(a) && std::isfinite(b) && a < b,
              where, ": label range '", text, "': expected MIN:MAX with MIN < MAX");
  return {a, b};
}

}  // namespace angle::data

#include "eval/beir_set.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/text_file.h"

namespace angle::eval {
namespace {

namespace fs = std::filesystem;

// Each non-blank line of a .jsonl as an object: (where, object).
std::vector<std::pair<std::string, nlohmann::json>> read_objects(const std::string& path) {
  ANGLE_CHECK(fs::is_regular_file(path), path, ": not found (a BEIR directory has corpus.jsonl, queries.jsonl, qrels/)");
  std::vector<std::pair<std::string, nlohmann::json>> objects;
  const std::vector<std::string> lines = read_utf8_lines(path);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(i + 1);
    nlohmann::json j = nlohmann::json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
    ANGLE_CHECK(j.is_object(), where, ": not a JSON object");
    objects.emplace_back(where, std::move(j));
  }
  ANGLE_CHECK(!objects.empty(), path, ": no entries");
  return objects;
}

std::string string_field(const nlohmann::json& j, const char* key, const std::string& where, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    ANGLE_CHECK(!required, where, ": missing field '", key, "'");
    return "";
  }
  ANGLE_CHECK(it->is_string(), where, ": field '", key, "' is not a string");
  return it->get<std::string>();
}

// "_id": a string, or a number read as its text (some BEIR sets write numbers); no white space,
// which separates a TREC run's fields.
std::string id_field(const nlohmann::json& j, const std::string& where) {
  auto it = j.find("_id");
  const std::string id = it != j.end() && it->is_number_integer() ? it->dump() : string_field(j, "_id", where, true);
  ANGLE_CHECK(!id.empty() && id.find_first_of(" \t\n\r") == std::string::npos, where, ": id '", id,
              "' is empty or holds white space");
  return id;
}

// BEIR's (title + " " + text).strip(), for ASCII whitespace.
std::string strip(const std::string& s) {
  const char* space = " \t\n\r\f\v";
  const size_t begin = s.find_first_not_of(space);
  return begin == std::string::npos ? "" : s.substr(begin, s.find_last_not_of(space) - begin + 1);
}

}  // namespace

BeirSet read_beir(const std::string& dir, const std::string& split_name) {
  BeirSet set;
  const std::string corpus_path = (fs::path(dir) / "corpus.jsonl").string();
  const std::string queries_path = (fs::path(dir) / "queries.jsonl").string();
  const std::string qrels_path = (fs::path(dir) / "qrels" / (split_name + ".tsv")).string();

  std::set<std::string> docs;
  for (const auto& [where, j] : read_objects(corpus_path)) {
    std::string id = id_field(j, where);
    ANGLE_CHECK(docs.insert(id).second, where, ": document id '", id, "' appears twice");
    const std::string title = string_field(j, "title", where, false), text = string_field(j, "text", where, true);
    set.doc_ids.push_back(std::move(id));
    set.doc_texts.push_back(strip(title + " " + text));
  }

  ANGLE_CHECK(fs::is_regular_file(qrels_path), qrels_path, ": not found (the judgements of split '", split_name, "')");
  const std::vector<std::string> lines = read_utf8_lines(qrels_path);
  std::map<std::string, std::string> first_judged;  // query id -> where the qrels first name it
  for (size_t i = 1; i < lines.size(); ++i) {  // line 1: query-id, corpus-id, score
    if (lines[i].find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = qrels_path + ":" + std::to_string(i + 1);
    const std::vector<std::string> fields = split(lines[i], '\t');
    ANGLE_CHECK(fields.size() == 3, where, ": expected 3 tab-separated fields (query-id, corpus-id, score), found ",
                fields.size());
    ANGLE_CHECK(docs.count(fields[1]), where, ": corpus-id '", fields[1], "' is not in ", corpus_path);
    size_t used = 0;
    int score = 0;
    try {
      score = std::stoi(fields[2], &used);
    } catch (const std::exception&) {
      used = 0;
    }
    ANGLE_CHECK(used > 0 && used == fields[2].size(), where, ": score '", fields[2], "' is not an integer");
    first_judged.emplace(fields[0], where);
    ANGLE_CHECK(set.qrels[fields[0]].emplace(fields[1], score).second, where, ": query '", fields[0], "' judges '",
                fields[1], "' twice");
  }
  ANGLE_CHECK(!set.qrels.empty(), qrels_path, ": no judgements");

  std::set<std::string> queries;
  for (const auto& [where, j] : read_objects(queries_path)) {
    std::string id = id_field(j, where);
    ANGLE_CHECK(queries.insert(id).second, where, ": query id '", id, "' appears twice");
    if (!set.qrels.count(id)) continue;  // BEIR evaluates the judged queries only
    set.query_texts.push_back(string_field(j, "text", where, true));
    set.query_ids.push_back(std::move(id));
  }
  for (const auto& [query, where] : first_judged)
    ANGLE_CHECK(queries.count(query), where, ": query-id '", query, "' is not in ", queries_path);
  return set;
}

}  // namespace angle::eval

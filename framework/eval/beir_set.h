// A retrieval test set in the BEIR layout: DIR/corpus.jsonl ({"_id", "title", "text"} per line),
// DIR/queries.jsonl ({"_id", "text"}), DIR/qrels/SPLIT.tsv (header, then query-id, corpus-id,
// score). As BEIR: a document's text is its title and text joined by a space and stripped; only the queries
// that the qrels judge are evaluated. Every problem is an error naming file:line.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace angle::eval {

using Qrels = std::map<std::string, std::map<std::string, int>>;  // query id -> document id -> relevance

struct BeirSet {
  std::vector<std::string> doc_ids, doc_texts;
  std::vector<std::string> query_ids, query_texts;  // the judged queries, in queries.jsonl order
  Qrels qrels;
};

BeirSet read_beir(const std::string& dir, const std::string& split_name = "test");

}  // namespace angle::eval

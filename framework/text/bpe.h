// The BPE model of HuggingFace `tokenizers` (no dropout): a pre-tokenized word becomes its
// characters' ids, then the lowest-ranked adjacent merge is applied until none applies (leftmost
// first among equal ranks). Characters missing from the vocabulary become <0xXX> byte tokens
// (byte_fallback, SentencePiece) or the unknown token, consecutive ones fused (fuse_unk).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace angle::text {

struct BpeSpec {
  std::unordered_map<std::string, int64_t> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::optional<std::string> unk_token;
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool ignore_merges = false;  // a word that is itself in the vocabulary is one token (Llama-3)
  std::string source;          // for messages
};

class Bpe {
 public:
  explicit Bpe(BpeSpec spec);
  void append_ids(std::string_view word, std::vector<int64_t>& out) const;

 private:
  struct Merge {
    int32_t rank;
    int64_t merged_id;
  };
  const Merge* find_merge(int64_t left, int64_t right) const;
  void merge_all(std::vector<int64_t>& symbols) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> rank, merged id
  std::optional<int64_t> unk_id_;
  int64_t byte_ids_[256];                        // id of <0xXX>, or -1
  bool byte_fallback_, fuse_unk_, ignore_merges_;
};

}  // namespace angle::text

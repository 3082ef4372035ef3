#include "text/bpe.h"

#include <unicode/utf8.h>

#include <cstdio>
#include <queue>

#include "core/error.h"

namespace angle::text {

Bpe::Bpe(BpeSpec spec)
    : vocab_(std::move(spec.vocab)),
      byte_fallback_(spec.byte_fallback),
      fuse_unk_(spec.fuse_unk),
      ignore_merges_(spec.ignore_merges) {
  for (const auto& [token, id] : vocab_)
    ANGLE_CHECK(id >= 0 && id < (int64_t{1} << 31), spec.source, ": model.vocab['", token, "'] = ", id, " is out of range");
  if (spec.unk_token) {
    auto it = vocab_.find(*spec.unk_token);
    ANGLE_CHECK(it != vocab_.end(), spec.source, ": model.unk_token '", *spec.unk_token, "' is not in the vocabulary");
    unk_id_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto it = vocab_.find(name);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
  auto id_of = [&](const std::string& token, size_t rank) {
    auto it = vocab_.find(token);
    ANGLE_CHECK(it != vocab_.end(), spec.source, ": model.merges[", rank, "] needs '", token,
                "', which is not in the vocabulary");
    return it->second;
  };
  merges_.reserve(spec.merges.size());
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const auto& [left, right] = spec.merges[rank];
    const uint64_t key = static_cast<uint64_t>(id_of(left, rank)) << 32 | static_cast<uint64_t>(id_of(right, rank));
    merges_[key] = {static_cast<int32_t>(rank), id_of(left + right, rank)};  // a repeated merge: the last wins, as in HF
  }
}

const Bpe::Merge* Bpe::find_merge(int64_t left, int64_t right) const {
  auto it = merges_.find(static_cast<uint64_t>(left) << 32 | static_cast<uint64_t>(right));
  return it == merges_.end() ? nullptr : &it->second;
}

void Bpe::append_ids(std::string_view word, std::vector<int64_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_)
    if (auto it = vocab_.find(std::string(word)); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  std::vector<int64_t> symbols;
  symbols.reserve(word.size());
  // HF's merge_word: a pending unknown is written when the next known character comes (so a byte
  // fallback in between goes before it), and fused with the next unknown under fuse_unk.
  bool unknown_pending = false;
  const auto* bytes = reinterpret_cast<const uint8_t*>(word.data());
  const int32_t length = static_cast<int32_t>(word.size());
  int32_t i = 0;
  std::string character;
  while (i < length) {
    const int32_t start = i;
    UChar32 c;
    U8_NEXT(bytes, i, length, c);
    character.assign(word.substr(static_cast<size_t>(start), static_cast<size_t>(i - start)));
    if (auto it = vocab_.find(character); it != vocab_.end()) {
      if (unknown_pending) symbols.push_back(*unk_id_);
      unknown_pending = false;
      symbols.push_back(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : character) all = all && byte_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : character) symbols.push_back(byte_ids_[b]);
        continue;
      }
    }
    if (!unk_id_) continue;  // no unknown token: HF drops the character
    if (unknown_pending && !fuse_unk_) symbols.push_back(*unk_id_);
    unknown_pending = true;
  }
  if (unknown_pending) symbols.push_back(*unk_id_);
  merge_all(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
}

void Bpe::merge_all(std::vector<int64_t>& symbols) const {
  const int32_t n = static_cast<int32_t>(symbols.size());
  if (n < 2) return;
  std::vector<int32_t> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  std::vector<bool> alive(static_cast<size_t>(n), true);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank, pos;
    int64_t merged_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto offer = [&](int32_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    if (const Merge* m = find_merge(symbols[pos], symbols[next[pos]])) queue.push({m->rank, pos, m->merged_id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) offer(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const int32_t right = alive[top.pos] ? next[top.pos] : -1;
    if (right < 0) continue;
    const Merge* m = find_merge(symbols[top.pos], symbols[right]);
    if (!m || m->merged_id != top.merged_id) continue;  // stale: a neighbour changed since it was queued
    symbols[top.pos] = top.merged_id;
    alive[right] = false;
    next[top.pos] = next[right];
    if (next[top.pos] >= 0) prev[next[top.pos]] = top.pos;
    offer(prev[top.pos]);
    offer(top.pos);
  }
  size_t kept = 0;
  for (int32_t i = 0; i < n; ++i)
    if (alive[i]) symbols[kept++] = symbols[i];
  symbols.resize(kept);
}

}  // namespace angle::text

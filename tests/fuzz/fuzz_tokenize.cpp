// Tokenisation of arbitrary bytes (invalid UTF-8, control characters, very long words) with the
// real all-MiniLM-L6-v2 WordPiece tokenizer (ANGLE_FUZZ_MODEL, default models/all-MiniLM-L6-v2):
// angle::Error or ids, every id inside the vocabulary, at most max_length of them.
#include <cstdlib>

#include "fuzz_target.h"
#include "text/tokenizer.h"

using namespace angle;

ANGLE_FUZZ_TARGET(wordpiece) {
  static const text::Tokenizer tokenizer = text::Tokenizer::from_model_dir(
      std::getenv("ANGLE_FUZZ_MODEL") ? std::getenv("ANGLE_FUZZ_MODEL") : "models/all-MiniLM-L6-v2");
  fuzz::expect_angle_errors([&] {
    const auto ids = tokenizer.encode(input, 64);
    fuzz::require(ids.size() <= 64, "at most max_length ids");
    for (int64_t id : ids) fuzz::require(id >= 0 && static_cast<size_t>(id) < tokenizer.vocab_size(), "ids inside the vocabulary");
  });
}

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "core/text_file.h"
#include "text/tokenizer.h"

namespace angle::cli {

int run_tokenize(const std::vector<std::string>& args) {
  po::options_description options("tokenize");
  options.add_options()
      ("model", po::value<std::string>()->required(), "model directory (tokenizer.json or vocab.txt)")
      ("input", po::value<std::string>(), "UTF-8 text file, one text per line")
      ("describe", po::bool_switch(), "print the tokenizer's kind, sizes, special and pad ids as one JSON line instead")
      ("jsonl", po::bool_switch(), "each input line is a JSON string (texts with newlines or control characters)")
      ("max-length", po::value<size_t>()->default_value(512), "truncate to N ids including the special tokens");
  auto vm = parse("tokenize",
                  "--model DIR (--input FILE [--jsonl] [--max-length N] | --describe)  (JSON lines of ids on stdout)",
                  options, args);
  if (!vm) return 0;
  auto tokenizer = text::Tokenizer::from_model_dir((*vm)["model"].as<std::string>());
  if ((*vm)["describe"].as<bool>()) {
    std::cout << nlohmann::json{{"fingerprint", tokenizer.fingerprint()},
                                {"vocab_size", tokenizer.vocab_size()},
                                {"model_max_length", tokenizer.model_max_length()},
                                {"special_ids", tokenizer.encode("", tokenizer.model_max_length())},
                                {"pad_id", tokenizer.pad_id()},
                                {"padding_side", tokenizer.padding_side() == text::PaddingSide::left ? "left" : "right"}}
                     .dump()
              << "\n";
    return 0;
  }
  ANGLE_CHECK(vm->count("input"), "tokenize: --input FILE is required (or --describe)");
  const size_t max_length = (*vm)["max-length"].as<size_t>();
  const std::string input = (*vm)["input"].as<std::string>();
  const bool jsonl = (*vm)["jsonl"].as<bool>();
  size_t line_number = 0;
  for (const std::string& line : read_utf8_lines(input)) {
    ++line_number;
    std::string text = line;
    if (jsonl) {
      const nlohmann::json value = nlohmann::json::parse(line, nullptr, false);
      ANGLE_CHECK(value.is_string(), input, ":", line_number, ": not a JSON string (--jsonl)");
      text = value.get<std::string>();
    }
    std::cout << nlohmann::json(tokenizer.encode(text, max_length)).dump() << "\n";
  }
  return 0;
}

}  // namespace angle::cli

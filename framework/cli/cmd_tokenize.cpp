#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/text_file.h"
#include "text/tokenizer.h"

namespace angle::cli {

int run_tokenize(const std::vector<std::string>& args) {
  po::options_description options("tokenize");
  options.add_options()
      ("model", po::value<std::string>()->required(), "model directory (tokenizer.json or vocab.txt)")
      ("input", po::value<std::string>()->required(), "UTF-8 text file, one text per line")
      ("max-length", po::value<size_t>()->default_value(512), "truncate to N ids including [CLS]/[SEP]");
  auto vm = parse("tokenize", "--model DIR --input FILE [--max-length N]  (JSON lines of ids on stdout)", options, args);
  if (!vm) return 0;
  auto tokenizer = text::Tokenizer::from_model_dir((*vm)["model"].as<std::string>());
  size_t max_length = (*vm)["max-length"].as<size_t>();
  for (const std::string& line : read_utf8_lines((*vm)["input"].as<std::string>()))
    std::cout << nlohmann::json(tokenizer.encode(line, max_length)).dump() << "\n";
  return 0;
}

}  // namespace angle::cli

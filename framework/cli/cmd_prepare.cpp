#include <iostream>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "data/dataset_file.h"
#include "eval/embedding_output.h"

namespace angle::cli {
int run_prepare(const std::vector<std::string>& args) {
  po::options_description options("prepare");
  options.add_options()
      ("format", po::value<std::string>()->required(),
       "stsb, sick, senteval-sts (a STS12-16 directory), snli-senteval (a SentEval SNLI directory), jsonl, tsv")
      ("input", po::value<std::string>()->required(), "input file or directory")
      ("model", po::value<std::string>()->required(), "model directory whose tokenizer is used (and recorded)")
      ("output", po::value<std::string>()->required(), "HDF5 file to write (.h5)")
      ("max-length", po::value<size_t>(), "truncate texts to N tokens incl. [CLS]/[SEP] (default: the model's)")
      ("split", po::value<std::string>()->default_value(""), "snli-senteval: dev, test or train")
      ("triplets", po::bool_switch(), "snli-senteval: premise-grouped (query, positive, negative) triplets")
      ("columns", po::value<std::string>()->default_value(""),
       "jsonl/tsv: text1=COL,text2=COL,label=COL (format A) or query=COL,positive=COL[,negative=COL]; weight=COL")
      ("label-range", po::value<std::string>(), "MIN:MAX that every label must lie in (e.g. 0:5)")
      ("llm-model", po::value<std::string>()->default_value(""), "labels come from this LLM (recorded in the file)")
      ("llm-prompt", po::value<std::string>()->default_value(""), "the annotation prompt (recorded in the file)")
      ("text-prompt", po::value<std::string>()->default_value(""), "format A: template with {text} for both texts")
      ("query-prompt", po::value<std::string>()->default_value(""), "formats B/C: template with {text} for the query")
      ("doc-prompt", po::value<std::string>()->default_value(""),
       "formats B/C: template with {text} for the positive and the negative")
      ("keep-text", po::bool_switch(), "also store the raw texts");
  auto vm = parse("prepare", "--format F --input PATH --model DIR --output FILE.h5 [options]", options, args);
  if (!vm) return 0;
  const std::string output = (*vm)["output"].as<std::string>();
  ANGLE_CHECK(output.ends_with(".h5") || output.ends_with(".hdf5"), "--output '", output, "': expected a .h5 file");
  eval::check_output_path(output);
  data::RawOptions raw_options;
  raw_options.format = (*vm)["format"].as<std::string>();
  raw_options.input = (*vm)["input"].as<std::string>();
  raw_options.split = (*vm)["split"].as<std::string>();
  raw_options.triplets = (*vm)["triplets"].as<bool>();
  raw_options.columns = (*vm)["columns"].as<std::string>();
  if (vm->count("label-range")) std::tie(raw_options.label_min, raw_options.label_max) =
      data::parse_label_range("--label-range", (*vm)["label-range"].as<std::string>());
  raw_options.llm_model = (*vm)["llm-model"].as<std::string>();
  raw_options.llm_prompt = (*vm)["llm-prompt"].as<std::string>();
  data::RawDataset raw = data::read_raw(raw_options);
  raw.prompts = data::column_prompts(raw.format,
                                     {(*vm)["text-prompt"].as<std::string>(), (*vm)["query-prompt"].as<std::string>(),
                                      (*vm)["doc-prompt"].as<std::string>()},
                                     raw_options.input, "--");

  const std::string model_dir = (*vm)["model"].as<std::string>();
  text::Tokenizer tokenizer = text::Tokenizer::from_model_dir(model_dir);
  // Default: the tokenizer's limit; training cuts longer rows to its own max length.
  size_t max_length = vm->count("max-length") ? (*vm)["max-length"].as<size_t>() : tokenizer.model_max_length();
  ANGLE_CHECK(max_length >= 2, "--max-length must be at least 2");
  data::DatasetInfo info = data::write_dataset(output, raw, tokenizer, model_dir, max_length, (*vm)["keep-text"].as<bool>());
  std::string columns;
  for (const auto& c : info.columns) columns += (columns.empty() ? "" : ",") + c;
  std::cout << "prepared " << info.count << " examples (format " << info.format << ": " << columns
            << (info.has_labels ? ",label" : "") << (info.has_weights ? ",weight" : "") << ") -> " << output
            << " (tokenizer " << info.tokenizer << ", max length " << info.max_length << ")\n";
  return 0;
}

}  // namespace angle::cli

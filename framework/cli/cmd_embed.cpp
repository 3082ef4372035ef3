#include <ATen/ATen.h>

#include <iostream>

#include "cli/command.h"
#include "core/log.h"
#include "core/text_file.h"
#include "eval/embedder.h"
#include "eval/embedding_output.h"

namespace angle::cli {

int run_embed(const std::vector<std::string>& args) {
  po::options_description options = model_options();
  options.add_options()
      ("input", po::value<std::string>()->required(), "UTF-8 text file, one text per line")
      ("output", po::value<std::string>()->required(), "output .npy or .h5 (dataset 'embeddings'), [N, D] float32")
      ("batch-size", po::value<size_t>()->default_value(32), "texts per forward pass")
      ("quiet", po::bool_switch(), "no progress line");
  auto vm = parse("embed", "--model DIR --input FILE --output FILE.npy|FILE.h5 [options]", options, args);
  if (!vm) return 0;
  apply_threads(*vm);
  const std::string output = (*vm)["output"].as<std::string>();
  eval::check_output_path(output);  // fail before any expensive work
  auto texts = read_utf8_lines((*vm)["input"].as<std::string>());
  auto encoder = model::load_encoder((*vm)["model"].as<std::string>(), encoder_options(*vm));
  double start = now_seconds();
  at::Tensor embeddings =
      eval::embed_texts(encoder, texts, {(*vm)["batch-size"].as<size_t>(), !(*vm)["quiet"].as<bool>()});
  double seconds = now_seconds() - start;
  eval::write_embeddings(output, embeddings);
  log_info("wrote " + std::to_string(embeddings.size(0)) + " x " + std::to_string(embeddings.size(1)) +
           " embeddings to " + output + " (" + encoder.pooling.name() + " pooling" +
           (encoder.prompt.empty() ? "" : ", prompt '" + encoder.prompt + "'") +
           (encoder.export_spec.embedding.bidirectional_from
                ? ", both ways from layer " + std::to_string(*encoder.export_spec.embedding.bidirectional_from)
                : "") +
           (encoder.normalize ? ", normalized" : "") + ", " + dtype_description(encoder) + "; encoded in " + std::to_string(seconds) + " s, " +
           std::to_string(static_cast<long>(texts.size() / seconds)) + " texts/s)");
  return 0;
}

}  // namespace angle::cli

// Raw training/evaluation data in the three AnglE formats, read from the public file layouts
// (`angle prepare --format ...`). Every reader names file and line on malformed input.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace angle::data {

struct RawDataset {
  std::string format;                          // "A" (text1,text2,label), "B" (query,positive), "C" (+negative)
  std::vector<std::string> columns;            // text column names in row order
  std::vector<std::vector<std::string>> texts; // texts[column][example]
  std::vector<float> labels;                   // format A (empty otherwise)
  std::vector<float> weights;                  // optional per-example weights (LLM confidence)
  std::vector<std::string> sources;            // input files, for checksums
  std::map<std::string, std::string> attributes;  // extra file attributes (annotator, label_range, ...)
  std::vector<std::string> prompts;            // per column: "{text}" template applied at tokenization, or ""
  size_t size() const { return texts.empty() ? 0 : texts[0].size(); }
};

// Prompt templates as angle-emb 0.6.1 applies them: `text` to both texts of format A, `query` to
// the query and `doc` to the positive and the negative of formats B/C.
struct Prompts {
  std::string text, query, doc;
};
// The template of each text column of `format` ("" where none). A template without {text}, or one
// that does not apply to the format (text with B/C, query/doc with A), is an error; `where` (the
// data spec or command) and `style` ("data." keys of a job, or "--" flags of prepare) name them.
std::vector<std::string> column_prompts(const std::string& format, const Prompts& prompts, const std::string& where,
                                        const std::string& style);
// A prompt template must contain {text}: error naming `key` otherwise.
// "MIN:MAX" with MIN < MAX (a label range); errors name `where`.
std::pair<double, double> parse_label_range(const std::string& where, const std::string& text);

struct RawOptions {
  std::string format;        // stsb, sick, senteval-sts, snli-senteval, jsonl, tsv
  std::string input;         // file or directory
  std::string split;         // snli-senteval: dev | test | train
  bool triplets = false;     // snli-senteval: premise-grouped (query, positive, negative)
  std::string columns;       // jsonl/tsv: "text1=col,text2=col,label=col[,weight=col]" or query/positive/negative
  bool header = true;        // tsv: first line names the columns
  double label_min = -1e300, label_max = 1e300;  // declared label range (checked)
  std::string llm_model, llm_prompt;             // annotator of LLM labels (recorded as attributes)
};

// Records the label range as the attribute `label_range` ("MIN:MAX"): the declared one, else the
// scale of the public format (STS-B 0:5, SICK 1:5, SNLI 0:1).
RawDataset read_raw(const RawOptions& options);

}  // namespace angle::data

// The prompt a model embeds its texts with: a template with {text} (angle-emb's
// `encode(prompt=...)`, e.g. Prompts.A 'Summarize sentence "{text}" in one word:"'), carried in the
// model directory so that a trained model is scored and used as it was trained:
//   angle_prompt.json                   {"prompt": TEMPLATE}: ours, any template (a suffix too)
//   config_sentence_transformers.json   {"prompts": {"text": PREFIX}, "default_prompt_name": "text"}:
//                                       sentence-transformers applies it by default; written too
//                                       when the template is a prefix ("PREFIX{text}")
// Reading prefers angle_prompt.json, then sentence-transformers' default prompt (as PREFIX{text}).
#pragma once
#include <string>

namespace angle::model {

// The model directory's prompt template, "" when it has none.
std::string read_model_prompt(const std::string& dir);
// Writes the files above for `prompt` into `dir` (nothing for an empty prompt).
void write_prompt_files(const std::string& dir, const std::string& prompt);

}  // namespace angle::model

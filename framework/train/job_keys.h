// The one table of a job's keys (train/job_keys.cpp), from which train/job_config.cpp makes the
// Boost.Program_options description (help and parsing), JobConfig::dump() and identity_hash().
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace boost::program_options {
class value_semantic;
}

namespace angle::train {

struct JobConfig;

// How a key counts in JobConfig::identity_hash(): hashed (the default), or not. The identity text is
// dump() up to the first section after the last hashed key; the lines of the keys before that cut
// that are not hashed are erased from it as text, lowest erase_rank first (the order matters only
// when a value holds the "KEY = " text of two such keys: see identity_hash()).
struct Identity {
  bool hashed = true;
  int erase_rank = 0;
};
inline constexpr Identity kHashed{true, 0}, kNotHashed{false, 0};
constexpr Identity erased(int rank) { return {false, rank}; }

struct JobKey {
  enum class Presence { defaulted, required, optional };  // optional: no default, no dump() line when unset

  const char* section;  // "model"
  const char* name;     // "dtype"
  const char* help;
  Presence presence;
  Identity identity;
  // Writes: a Boost value that parses the key into c's field (default, if any, shown in the help).
  std::function<boost::program_options::value_semantic*(JobConfig& c)> parser;
  // Reads: the field's text as dump() writes it (std::ostream defaults); nullopt: an unset optional key.
  std::function<std::optional<std::string>(const JobConfig& c)> text;

  std::string option() const { return std::string(section) + "." + name; }  // "model.dtype"
};

// Every key, in dump()'s order (each section's keys together, the sections in file order).
const std::vector<JobKey>& job_keys();
// A section's heading in the help ("[lora] (LoRA adapters on a decoder; ...)").
std::string section_caption(const std::string& section);

}  // namespace angle::train

// The typed values of a job file's keys (train/job_config.h): each parsed once from its text and
// written back as exactly that text (job.ini, checkpoint manifests and the job's identity hash are
// made of these texts, so they must not change).
#pragma once
#include <c10/core/ScalarType.h>

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

#include "loss/angle_loss.h"

namespace angle::train {

// model.dtype (bf16: autocast of the forward pass), shard.param_dtype, shard.reduce_dtype.
enum class Dtype { fp32, bf16 };
// train.backend: auto (mpi under mpirun/srun, else single), single, mpi or nccl.
enum class Backend { automatic, single, mpi, nccl };
// data.format: what the training sets must be (any: whatever they are; written as "").
enum class DataFormat { any, A, B, C };
// data.weight_mode: confidence = each example's stored weight scales its loss.
enum class WeightMode { none, confidence };
// data.label_norm: range = each set's labels mapped to [0, 1] by its label range.
enum class LabelNorm { none, range };
// loss.angle_reduction.
enum class AngleReduction { sum, mean };

// The text of each value of an enum, and what a message lists as the accepted values.
template <typename E>
struct EnumNames;
template <>
struct EnumNames<Dtype> {
  static constexpr std::pair<Dtype, std::string_view> all[] = {{Dtype::fp32, "fp32"}, {Dtype::bf16, "bf16"}};
  static constexpr const char* expected = "fp32 or bf16";
};
template <>
struct EnumNames<Backend> {
  static constexpr std::pair<Backend, std::string_view> all[] = {
      {Backend::automatic, "auto"}, {Backend::single, "single"}, {Backend::mpi, "mpi"}, {Backend::nccl, "nccl"}};
  static constexpr const char* expected = "auto, single, mpi or nccl";
};
template <>
struct EnumNames<DataFormat> {
  static constexpr std::pair<DataFormat, std::string_view> all[] = {
      {DataFormat::any, ""}, {DataFormat::A, "A"}, {DataFormat::B, "B"}, {DataFormat::C, "C"}};
  static constexpr const char* expected =
      "A (text1, text2, label), B (query, positive) or C (query, positive, negative); empty: any";
};
template <>
struct EnumNames<WeightMode> {
  static constexpr std::pair<WeightMode, std::string_view> all[] = {{WeightMode::none, "none"},
                                                                    {WeightMode::confidence, "confidence"}};
  static constexpr const char* expected = "none or confidence";
};
template <>
struct EnumNames<LabelNorm> {
  static constexpr std::pair<LabelNorm, std::string_view> all[] = {{LabelNorm::none, "none"},
                                                                   {LabelNorm::range, "range"}};
  static constexpr const char* expected = "none or range";
};
template <>
struct EnumNames<AngleReduction> {
  static constexpr std::pair<AngleReduction, std::string_view> all[] = {{AngleReduction::sum, "sum"},
                                                                        {AngleReduction::mean, "mean"}};
  static constexpr const char* expected = "sum or mean";
};
// loss.label_mode (parsed by loss::parse_label_mode).
template <>
struct EnumNames<loss::LabelMode> {
  static constexpr std::pair<loss::LabelMode, std::string_view> all[] = {{loss::LabelMode::float_labels, "float"},
                                                                         {loss::LabelMode::legacy_int, "legacy-int"}};
  static constexpr const char* expected = "float or legacy-int";
};

// loss.false_negatives (loss/angle_loss.h).
template <>
struct EnumNames<loss::FalseNegatives> {
  static constexpr std::pair<loss::FalseNegatives, std::string_view> all[] = {
      {loss::FalseNegatives::none, "none"}, {loss::FalseNegatives::margin, "margin"}, {loss::FalseNegatives::text, "text"}};
  static constexpr const char* expected = "none, margin or text";
};

template <typename E>
concept NamedEnum = requires { EnumNames<E>::all; };

// The value's text ("bf16", "auto", "" for DataFormat::any, "legacy-int", ...).
template <NamedEnum E>
std::string to_string(E value) {
  for (const auto& [v, name] : EnumNames<E>::all)
    if (v == value) return std::string(name);
  return "?";
}
// The value a text names, or nullopt.
template <NamedEnum E>
std::optional<E> parse_enum(std::string_view text) {
  for (const auto& [v, name] : EnumNames<E>::all)
    if (name == text) return v;
  return std::nullopt;
}
template <NamedEnum E>
std::ostream& operator<<(std::ostream& out, E value) {
  return out << to_string(value);
}

inline at::ScalarType scalar_type(Dtype d) { return d == Dtype::bf16 ? at::kBFloat16 : at::kFloat; }
inline int64_t element_bytes(Dtype d) { return d == Dtype::bf16 ? 2 : 4; }
// The loss's format (nullopt for DataFormat::any).
std::optional<loss::Format> loss_format(DataFormat f);

// shard.stage: 1 (optimizer state sharded), 2 (+ gradients) or 3 (+ parameters); no other value exists.
class Stage {
 public:
  constexpr Stage() = default;  // 2
  static std::optional<Stage> of(long number);  // nullopt unless 1, 2 or 3
  constexpr int number() const { return number_; }
  bool operator==(const Stage&) const = default;

 private:
  constexpr explicit Stage(int number) : number_(number) {}
  int number_ = 2;
};
std::ostream& operator<<(std::ostream& out, Stage s);  // "2"

// train.device: cpu, cuda or cuda:N.
struct Device {
  enum class Type { cpu, cuda };
  Type type = Type::cpu;
  std::optional<int> index;  // cuda:N

  static std::optional<Device> parse(std::string_view text);
  std::string str() const;  // "cpu", "cuda" or "cuda:N", as parsed
  bool is_cuda() const { return type == Type::cuda; }
  bool operator==(const Device&) const = default;
};
std::ostream& operator<<(std::ostream& out, const Device& d);

// run.resume: none, auto (the newest complete checkpoint in run.output_dir) or a checkpoint directory.
struct Resume {
  enum class Mode { none, automatic, directory };
  Mode mode = Mode::none;
  std::string directory;  // Mode::directory

  static Resume parse(const std::string& text);  // "none", "auto", else a directory
  std::string str() const;                       // "none", "auto" or the directory (ckpt::ResumeOptions::spec)
  bool enabled() const { return mode != Mode::none; }
  bool operator==(const Resume&) const = default;
};
std::ostream& operator<<(std::ostream& out, const Resume& r);

}  // namespace angle::train

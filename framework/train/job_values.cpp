#include "train/job_values.h"

namespace angle::train {

std::optional<loss::Format> loss_format(DataFormat f) {
  switch (f) {
    case DataFormat::A: return loss::Format::A;
    case DataFormat::B: return loss::Format::B;
    case DataFormat::C: return loss::Format::C;
    case DataFormat::any: break;
  }
  return std::nullopt;
}

std::optional<Stage> Stage::of(long number) {
  if (number < 1 || number > 3) return std::nullopt;
  return Stage(static_cast<int>(number));
}

std::ostream& operator<<(std::ostream& out, Stage s) { return out << s.number(); }

std::optional<Device> Device::parse(std::string_view text) {
  if (text == "cpu") return Device{};
  if (text == "cuda") return Device{Type::cuda, std::nullopt};
  if (!text.starts_with("cuda:")) return std::nullopt;
  const std::string_view digits = text.substr(5);
  // As at::Device reads it: digits, no leading zero.
  if (digits.empty() || digits.size() > 9 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  int index = 0;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') return std::nullopt;
    index = index * 10 + (ch - '0');
  }
  return Device{Type::cuda, index};
}

std::string Device::str() const {
  if (type == Type::cpu) return "cpu";
  return index ? "cuda:" + std::to_string(*index) : "cuda";
}

std::ostream& operator<<(std::ostream& out, const Device& d) { return out << d.str(); }

Resume Resume::parse(const std::string& text) {
  if (text == "none") return {};
  if (text == "auto") return {Mode::automatic, ""};
  return {Mode::directory, text};
}

std::string Resume::str() const {
  switch (mode) {
    case Mode::none: return "none";
    case Mode::automatic: return "auto";
    case Mode::directory: break;
  }
  return directory;
}

std::ostream& operator<<(std::ostream& out, const Resume& r) { return out << r.str(); }

}  // namespace angle::train

// What runs read back: the job INI, a checkpoint's manifest.json, a sweep's manifest.json, and a
// run directory as `angle report` reads it (metrics.jsonl, then eval.json after the first NUL byte).
#include "ckpt/manifest.h"
#include "core/json_file.h"
#include "fuzz_target.h"
#include "report/report.h"
#include "sweep/sweep.h"
#include "train/job_config.h"

namespace fs = std::filesystem;
using namespace angle;

ANGLE_FUZZ_TARGET(job_ini) {
  fuzz::expect_angle_errors([&] { train::parse_job_text(std::string(input), "fuzz.ini"); });
}

ANGLE_FUZZ_TARGET(checkpoint_manifest) {
  const std::string path = fuzz::write_scratch("step-1/manifest.json", input);
  fuzz::expect_angle_errors([&] {
    const ckpt::Manifest m = ckpt::read_manifest(path);
    if (m.format_version > ckpt::kFormatVersion) return;
    for (const auto& shard : m.shards)
      for (const auto& [begin, size] : shard.ranges)
        fuzz::require(begin >= 0 && size >= 0 && begin + size <= m.numel, "ranges inside the parameters");
  });
}

ANGLE_FUZZ_TARGET(sweep_manifest) {
  fuzz::write_scratch("sweep/manifest.json", input);
  fuzz::expect_angle_errors([&] {
    const sweep::Sweep s = sweep::read_manifest((fuzz::scratch() / "sweep").string());
    for (const auto& run : s.runs) fuzz::require(fs::path(run.output_dir).is_relative(), "runs inside the sweep");
  });
}

ANGLE_FUZZ_TARGET(run_record) {
  const size_t nul = input.find('\0');
  fuzz::write_scratch("run/metrics.jsonl", input.substr(0, nul));
  if (nul != std::string_view::npos) fuzz::write_scratch("run/eval.json", input.substr(nul + 1));
  else fs::remove(fuzz::scratch() / "run/eval.json");
  fuzz::expect_angle_errors([&] {
    const report::Report r = report::build_report({(fuzz::scratch() / "run").string()});
    report::format_table(r);
    report::format_csv(r);
    report::to_json(r).dump();
  });
}

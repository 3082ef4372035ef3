// The job file's typed values and its one key table (train/job_keys.cpp): dump() and
// identity_hash() exactly the first release's (job_config_cases.h), dump() parsed back to itself,
// each typed value parsed once with errors that name the key and FILE:LINE (or the command line),
// and the hash blind to the keys outside the job's identity.
#include <boost/test/unit_test.hpp>
#include <set>
#include <string>
#include <vector>

#include "tiny_model.h"
#include "train/job_config.h"
#include "train/run_metrics.h"
#include "train/job_keys.h"
#include "train/job_config_cases.h"

using namespace angle;
using namespace angle::train;
using namespace angle::testing::job_cases;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const char* const kMinimalJob = "[model]\npath = m\n[data]\ntrain = a.h5\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(job_config)

BOOST_AUTO_TEST_CASE(dump_and_identity_hash_are_the_first_releases) {
  struct Case {
    const char* job;
    const char* file;
    std::vector<std::string> overrides;
    const char* dump;
    uint64_t hash;
  };
  const std::vector<Case> cases = {
      {kDefaultJob, "jobs/default.ini", {"--train.max_steps", "1", "--run.output_dir", "/tmp/jc-old-default"},
       kDefaultDump, kDefaultHash},
      {kStsbJob, "jobs/stsb.ini", {"--train.max_steps", "1", "--run.output_dir", "/tmp/jc-old-stsb"}, kStsbDump,
       kStsbHash},
      {kManyKeysJob, "jobs/many.ini", {"--optim.lr", "5e-5", "--train.threads=2"}, kManyKeysDump, kManyKeysHash},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.file) {
      const JobConfig job = parse_job_text(c.job, c.file, c.overrides);
      BOOST_TEST(job.dump() == c.dump);
      BOOST_TEST(job.identity_hash() == c.hash);
      // job.ini and a checkpoint's manifest are read back as jobs: the same job again.
      const JobConfig again = parse_job_text(job.dump(), c.file);
      BOOST_TEST(again.dump() == c.dump);
      BOOST_TEST(again.identity_hash() == c.hash);
    }
  }
}

// The identity text loses each "KEY = " of threads, backend, comm_timeout, device and chunk up to
// the end of its line wherever it appears, in that order: a value holding such texts changes the hash
// exactly as it did.
BOOST_AUTO_TEST_CASE(identity_hash_erases_as_the_first_release_did) {
  const std::vector<std::string> overrides = {"--run.output_dir", "/tmp/jc-old-quirk"};
  BOOST_TEST(parse_job_text(kQuirkJob, "sweeps/backend = 2/job.ini", overrides).identity_hash() == kQuirkHash);
}

BOOST_AUTO_TEST_CASE(typed_values) {
  const JobConfig job = parse_job_text(kManyKeysJob, "jobs/many.ini");
  BOOST_TEST((job.dtype == Dtype::bf16 && job.param_dtype == Dtype::bf16 && job.reduce_dtype == Dtype::bf16));
  BOOST_TEST((job.backend == Backend::nccl));
  BOOST_TEST((job.device == Device{Device::Type::cuda, 1}));
  BOOST_TEST(job.device.str() == "cuda:1");
  BOOST_TEST(job.stage.number() == 3);
  BOOST_TEST((job.resume.mode == Resume::Mode::automatic));
  BOOST_TEST((job.label_mode == loss::LabelMode::legacy_int));
  BOOST_TEST((job.angle_reduction == AngleReduction::mean));
  BOOST_TEST((job.weight_mode == WeightMode::confidence));
  BOOST_TEST((job.label_norm == LabelNorm::none));
  BOOST_TEST((job.format == DataFormat::C && loss_format(job.format) == loss::Format::C));

  const JobConfig defaults = parse_job_text(kMinimalJob, "minimal.ini");
  BOOST_TEST((defaults.dtype == Dtype::fp32 && defaults.backend == Backend::automatic));
  BOOST_TEST((defaults.device.str() == "cpu" && defaults.stage.number() == 2 && !defaults.resume.enabled()));
  BOOST_TEST((defaults.format == DataFormat::any && !loss_format(defaults.format)));

  for (const char* spec : {"none", "auto", "checkpoints/x/step-10", "cuda"}) {
    const JobConfig j = parse_job_text(kMinimalJob, "minimal.ini", {"--run.resume", spec});
    BOOST_TEST(j.resume.str() == spec);
    BOOST_TEST(contains(j.dump(), std::string("\nresume = ") + spec + "\n"));
  }
  BOOST_TEST(parse_job_text(kMinimalJob, "m.ini", {"--train.device", "cuda"}).device.str() == "cuda");
  BOOST_TEST(parse_job_text(kMinimalJob, "m.ini", {"--train.device", "cuda:10"}).device.str() == "cuda:10");
}

// A value that is none of its key's: the key, the value and the accepted values, with the FILE:LINE
// of the line that gave it (or "command line").
BOOST_AUTO_TEST_CASE(bad_values_name_the_key_and_the_line) {
  const std::string text = std::string(kMinimalJob) + "[shard]\nstage = 4\n";
  std::string message = testing::error_of([&] { parse_job_text(text, "jobs/x.ini"); });
  BOOST_TEST(contains(message, "jobs/x.ini:6: shard.stage 4: must be 1, 2 or 3"), message);
  message = testing::error_of([] { parse_job_text("[model]\npath = m\ndtype = fp16\n[data]\ntrain = a", "y.ini"); });
  BOOST_TEST(contains(message, "y.ini:3: model.dtype 'fp16' (fp32 or bf16)"), message);
  const std::vector<std::pair<std::vector<std::string>, std::string>> overrides = {
      {{"--data.weight_mode", "llm"}, "command line: data.weight_mode 'llm' (none or confidence)"},
      {{"--data.label_norm", "minmax"}, "command line: data.label_norm 'minmax' (none or range)"},
      {{"--data.format", "D"}, "data.format 'D' (A (text1, text2, label)"},
      {{"--loss.label_mode", "int"}, "loss.label_mode 'int' (float or legacy-int)"},
      {{"--loss.angle_reduction", "max"}, "loss.angle_reduction 'max' (sum or mean)"},
      {{"--train.backend", "gloo"}, "train.backend 'gloo' (auto, single, mpi or nccl)"},
      {{"--train.device", "gpu"}, "train.device 'gpu' (cpu, cuda or cuda:N)"},
      {{"--train.device", "cuda:01"}, "train.device 'cuda:01'"},
      {{"--shard.stage", "two"}, "shard.stage two: must be 1, 2 or 3"},
      {{"--shard.param_dtype", "fp16"}, "shard.param_dtype 'fp16' (fp32 or bf16)"},
      {{"--shard.reduce_dtype", "BF16"}, "shard.reduce_dtype 'BF16' (fp32 or bf16)"},
  };
  for (const auto& [args, expected] : overrides) {
    message = testing::error_of([&] { parse_job_text(kMinimalJob, "m.ini", args); });
    BOOST_TEST(contains(message, expected), message);
  }
  message = testing::error_of(
      [] { parse_job_text(kMinimalJob, "m.ini", {"--data.label_norm", "range", "--loss.label_mode", "legacy-int"}); });
  BOOST_TEST((contains(message, "data.label_norm = range") && contains(message, "legacy-int")), message);
}

// What identity_hash() leaves out ([shard], [run], threads, backend, comm_timeout, device, chunk)
// does not change it; every other key does.
BOOST_AUTO_TEST_CASE(identity_hash_ignores_how_the_job_is_computed) {
  const uint64_t base = parse_job_text(kMinimalJob, "m.ini").identity_hash();
  for (const std::vector<std::string>& same :
       {std::vector<std::string>{"--shard.stage", "3", "--shard.param_dtype", "bf16", "--run.output_dir", "o"},
        {"--train.threads", "3", "--train.backend", "mpi", "--train.comm_timeout", "5", "--train.device", "cuda"},
        {"--train.chunk", "4", "--run.resume", "auto", "--run.keep_last", "5", "--shard.inflight_mb", "1"}})
    BOOST_TEST(parse_job_text(kMinimalJob, "m.ini", same).identity_hash() == base);
  for (const std::vector<std::string>& other :
       {std::vector<std::string>{"--optim.lr", "2e-5"}, {"--model.dtype", "bf16"}, {"--loss.label_mode", "legacy-int"},
        {"--data.format", "A"}, {"--train.seed", "1"}, {"--model.pooling", "cls"}})
    BOOST_TEST(parse_job_text(kMinimalJob, "m.ini", other).identity_hash() != base);
  BOOST_TEST(parse_job_text(kMinimalJob, "other.ini").identity_hash() != base);  // the job file's name is in it
}

BOOST_AUTO_TEST_CASE(one_table_of_keys) {
  std::set<std::string> options, sections_done;
  std::string section;
  const std::string help = job_help();
  for (const JobKey& k : job_keys()) {
    BOOST_TEST(options.insert(k.option()).second, k.option() << " twice");
    if (k.section != section) {
      BOOST_TEST(sections_done.insert(k.section).second, "section " << k.section << " is not in one piece");
      section = k.section;
    }
    BOOST_TEST((k.presence == JobKey::Presence::required) == (k.option() == "model.path" || k.option() == "data.train"));
    BOOST_TEST(contains(help, k.option()), k.option() << " is not in the help");
  }
  BOOST_TEST(options.size() == 76u);
}

BOOST_AUTO_TEST_SUITE_END()

// The at::mm peak beside the achieved FLOP/s is measured in the dtype the matmuls run in.
BOOST_AUTO_TEST_CASE(matmul_dtype_follows_autocast_and_gathered_parameters) {
  JobConfig c;
  BOOST_TEST(matmul_dtype(c) == at::kFloat);
  c.param_dtype = Dtype::bf16;  // bf16 parameters, fp32 model.dtype: the matmuls run in bf16
  BOOST_TEST(matmul_dtype(c) == at::kBFloat16);
  c.param_dtype = Dtype::fp32;
  c.dtype = Dtype::bf16;
  BOOST_TEST(matmul_dtype(c) == at::kBFloat16);
}

// Data files: STS-B and SICK readers, and the jsonl / tsv readers of `angle prepare` (format A with
// weights, and format C).
#include "data/raw_dataset.h"
#include "data/sts_files.h"
#include "fuzz_target.h"

using namespace angle;

ANGLE_FUZZ_TARGET(sts_files) {
  const std::string path = fuzz::write_scratch("sts.csv", input);
  fuzz::expect_angle_errors([&] {
    const auto pairs = data::read_stsb(path);
    fuzz::require(pairs.text1.size() == pairs.text2.size() && pairs.text1.size() == pairs.score.size(),
                  "one score per pair");
  });
  fuzz::expect_angle_errors([&] { data::read_sick(path); });
}

ANGLE_FUZZ_TARGET(jsonl_tsv) {
  const std::string jsonl = fuzz::write_scratch("data.jsonl", input);
  const std::string tsv = fuzz::write_scratch("data.tsv", input);
  struct Reading {
    std::string format, path, columns;
  };
  for (const Reading& reading : {Reading{"jsonl", jsonl, "text1=a,text2=b,label=c,weight=w"},
                                 Reading{"jsonl", jsonl, "query=q,positive=p,negative=n"},
                                 Reading{"tsv", tsv, "text1=a,text2=b,label=c"}}) {
    fuzz::expect_angle_errors([&] {
      data::RawOptions options;
      options.format = reading.format, options.input = reading.path, options.columns = reading.columns;
      options.label_min = 0, options.label_max = 5;
      const auto raw = data::read_raw(options);
      for (const auto& column : raw.texts) fuzz::require(column.size() == raw.size(), "columns of equal length");
    });
  }
}

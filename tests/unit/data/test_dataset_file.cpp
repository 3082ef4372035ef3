// The HDF5 dataset schema: round trip of token ids, labels, weights and attributes; row reads in
// any order; and every kind of bad file.
#include <hdf5.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>

#include "data/dataset_file.h"
#include "tiny_model.h"

using namespace angle;
using angle::testing::error_of;

namespace {

text::Tokenizer tiny_tokenizer(bool lowercase = true) { return text::Tokenizer(testing::tiny_tokenizer_spec(lowercase)); }

data::RawDataset sample(const std::string& source) {
  return {"A", {"text1", "text2"}, {{"the cat", "hello world", "a mat"}, {"the mat", "hello", "un"}}, {5.f, 2.5f, 0.f},
          {0.9f, 1.f, 0.5f}, {source}, {{"annotator_model", "some-llm"}}};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dataset_file)

BOOST_AUTO_TEST_CASE(round_trip_of_ids_labels_weights_and_attributes) {
  testing::TempDir tmp;
  testing::write_text(tmp.file("source.tsv"), "x\n");
  auto tokenizer = tiny_tokenizer();
  auto raw = sample(tmp.file("source.tsv"));
  auto info = data::write_dataset(tmp.file("d.h5"), raw, tokenizer, "tiny", 8, true);
  BOOST_TEST(info.count == 3);
  BOOST_TEST(info.schema_version == data::kSchemaVersion);
  BOOST_TEST(info.tokenizer == tokenizer.fingerprint());
  data::DatasetFile file(tmp.file("d.h5"));
  auto rows = file.read({2, 0, 2, 1});  // any order, duplicates allowed
  const std::vector<uint64_t> order = {2, 0, 2, 1};
  for (size_t i = 0; i < rows.size(); ++i) {
    BOOST_TEST(rows[i].ids[0] == tokenizer.encode(raw.texts[0][order[i]], 8), boost::test_tools::per_element());
    BOOST_TEST(rows[i].ids[1] == tokenizer.encode(raw.texts[1][order[i]], 8), boost::test_tools::per_element());
    BOOST_TEST(rows[i].label == raw.labels[order[i]]);
    BOOST_TEST(rows[i].weight == raw.weights[order[i]]);
  }
  BOOST_TEST(!std::filesystem::exists(tmp.file("d.h5") + ".tmp-" + std::to_string(::getpid())));
}

BOOST_AUTO_TEST_CASE(bad_files_are_rejected_with_the_reason) {
  testing::TempDir tmp;
  testing::write_text(tmp.file("source.tsv"), "x\n");
  auto tokenizer = tiny_tokenizer();
  data::write_dataset(tmp.file("d.h5"), sample(tmp.file("source.tsv")), tokenizer, "tiny", 8, false);

  std::string bytes = testing::read_text(tmp.file("d.h5"));
  testing::write_text(tmp.file("truncated.h5"), bytes.substr(0, bytes.size() / 2));
  std::string message = error_of([&] { data::DatasetFile f(tmp.file("truncated.h5")); });
  BOOST_TEST((message.find("truncated") != std::string::npos), message);

  hid_t foreign = H5Fcreate(tmp.file("foreign.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(foreign);
  message = error_of([&] { data::DatasetFile f(tmp.file("foreign.h5")); });
  BOOST_TEST((message.find("not an AnglE-HPC dataset") != std::string::npos), message);

  std::filesystem::copy_file(tmp.file("d.h5"), tmp.file("future.h5"));
  hid_t file = H5Fopen(tmp.file("future.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t attribute = H5Aopen(file, "schema_version", H5P_DEFAULT);
  int64_t version = data::kSchemaVersion + 1;
  H5Awrite(attribute, H5T_NATIVE_INT64, &version);
  H5Aclose(attribute);
  H5Fclose(file);
  message = error_of([&] { data::DatasetFile f(tmp.file("future.h5")); });
  BOOST_TEST((message.find("schema version 2 is newer") != std::string::npos), message);

  data::DatasetFile good(tmp.file("d.h5"));
  message = error_of([&] { good.require_tokenizer(tiny_tokenizer(false), "other-model"); });
  BOOST_TEST((message.find(tokenizer.fingerprint()) != std::string::npos), message);
  BOOST_TEST((message.find(tiny_tokenizer(false).fingerprint()) != std::string::npos), message);
  BOOST_TEST((message.find("other-model") != std::string::npos), message);
  BOOST_TEST(error_of([&] { good.require_tokenizer(tokenizer, "tiny"); }).empty());
}

BOOST_AUTO_TEST_CASE(a_failed_write_leaves_no_file) {
  testing::TempDir tmp;
  // The source checksum fails (missing file) after tokenization started: nothing may remain.
  std::string message = error_of([&] {
    data::write_dataset(tmp.file("d.h5"), sample(tmp.file("missing.tsv")), tiny_tokenizer(), "tiny", 8, false);
  });
  BOOST_TEST((message.find("missing.tsv") != std::string::npos), message);
  BOOST_TEST(std::distance(std::filesystem::directory_iterator(tmp.path), std::filesystem::directory_iterator()) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

// The checkpoint manifest as untrusted input: a valid one reads back; a shard path of the
// manifest's choosing, ranks outside the world, ranges or layouts outside the parameters (also by
// integer overflow), a duplicate rank, and wrong types are one-line errors naming the field.
#include <boost/test/unit_test.hpp>

#include "ckpt/manifest.h"
#include "core/error.h"

using namespace angle;
using nlohmann::json;

namespace {

json valid() {
  return json::parse(R"({"format_version": 2, "world_size": 2, "numel": 10, "step": 3, "cursor": 24,
    "optimizer_steps": 3, "job": "[train]", "job_hash": "42", "best_dev": 80.5, "best_step": 2,
    "layout": [{"name": "w", "offset": 0, "shape": [2, 3]}, {"name": "b", "offset": 6, "shape": [4]}],
    "shards": [
      {"rank": 0, "file": "shard-0-of-2.safetensors", "ranges": [[0, 5]], "sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
      {"rank": 1, "file": "shard-1-of-2.safetensors", "ranges": [[5, 5]], "sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}]})");
}

void expect_error(json j, const std::string& fragment) {
  try {
    ckpt::parse_manifest(j, "m.json");
    BOOST_ERROR("no error for " << fragment);
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find(fragment) != std::string::npos, e.what() << " lacks " << fragment);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint_manifest)

BOOST_AUTO_TEST_CASE(a_valid_manifest_reads_back) {
  const ckpt::Manifest m = ckpt::parse_manifest(valid(), "m.json");
  BOOST_TEST(m.world_size == 2);
  BOOST_TEST(m.numel == 10);
  BOOST_TEST(m.shards.size() == 2u);
  BOOST_TEST(m.shards[1].ranges[0].first == 5);
  BOOST_TEST(m.layout[0].shape == std::vector<int64_t>({2, 3}), boost::test_tools::per_element());
  BOOST_TEST(m.best_dev == 80.5);
}

BOOST_AUTO_TEST_CASE(hostile_manifests_are_errors) {
  json j = valid();
  j["shards"][0]["file"] = "../../etc/passwd";
  expect_error(j, "shards[0]: file '../../etc/passwd' is not shard-0-of-2.safetensors");
  j = valid(), j["shards"][1]["rank"] = 2;
  expect_error(j, "rank 2 outside the world of 2");
  j = valid(), j["shards"][1]["rank"] = 0, j["shards"][1]["file"] = "shard-0-of-2.safetensors";
  expect_error(j, "rank 0 has two shards");
  j = valid(), j["shards"][0]["ranges"] = json::parse("[[9223372036854775000, 9223372036854775000]]");
  expect_error(j, "outside the 10 parameters");
  j = valid(), j["shards"][0]["ranges"] = json::parse("[[-1, 3]]");
  expect_error(j, "outside the 10 parameters");
  j = valid(), j["shards"][0]["ranges"] = json::parse("[[0, 2.5]]");
  expect_error(j, "is not [begin, size]");
  j = valid(), j["layout"][0]["shape"] = json::parse("[4294967296, 4294967296, 4294967296]");
  expect_error(j, "shape larger than the 10 parameters");
  j = valid(), j["layout"][1]["offset"] = 8;
  expect_error(j, "outside the 10 parameters");
  j = valid(), j["world_size"] = "two";
  expect_error(j, "field 'world_size' has the wrong type");
  j = valid(), j["numel"] = -5;
  expect_error(j, "numel is negative");
  j = valid(), j["shards"][0]["sha256"] = "xyz";
  expect_error(j, "sha256 is not 64 lower-case hex digits");
  j = valid(), j.erase("shards");
  expect_error(j, "missing field 'shards'");
}

BOOST_AUTO_TEST_CASE(a_newer_format_is_left_to_the_caller) {
  json j = json::parse(R"({"format_version": 9, "anything": true})");
  BOOST_TEST(ckpt::parse_manifest(j, "m.json").format_version == 9);
}

BOOST_AUTO_TEST_SUITE_END()

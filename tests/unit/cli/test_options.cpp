// The options every subcommand shares (cli/options.cpp): unknown options and missing required
// ones are errors that name the subcommand's help, --help returns no options, positional
// arguments, and the model options as model::EncoderOptions.
#include <boost/test/unit_test.hpp>

#include "cli/command.h"
#include "tiny_model.h"

using namespace angle;
namespace po = boost::program_options;

BOOST_AUTO_TEST_SUITE(cli_options)

BOOST_AUTO_TEST_CASE(model_options_become_encoder_options) {
  const auto vm = cli::parse("embed", "--model DIR", cli::model_options(),
                             {"--model", "m", "--pooling", "mean", "--max-length", "64", "--device", "cpu"});
  BOOST_TEST_REQUIRE(vm.has_value());
  const model::EncoderOptions o = cli::encoder_options(*vm);
  BOOST_TEST(*o.pooling == "mean");
  BOOST_TEST(*o.max_length == 64u);
  BOOST_TEST(o.dtype == "fp32");  // the default
  BOOST_TEST(!o.normalize.has_value());
}

BOOST_AUTO_TEST_CASE(unknown_and_missing_options_name_the_help) {
  const std::string unknown = testing::error_of([] {
    cli::parse("eval", "--model DIR", cli::model_options(), {"--model", "m", "--colour", "red"});
  });
  BOOST_TEST(unknown.find("colour") != std::string::npos);
  BOOST_TEST(unknown.find("(see 'angle eval --help')") != std::string::npos);
  const std::string missing = testing::error_of([] { cli::parse("eval", "--model DIR", cli::model_options(), {}); });
  BOOST_TEST(missing.find("model") != std::string::npos);
  BOOST_TEST(missing.find("angle eval --help") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(help_returns_nothing_and_positionals_fill_their_option) {
  BOOST_TEST(!cli::parse("eval", "--model DIR", cli::model_options(), {"--help"}).has_value());
  po::options_description dirs("report");
  dirs.add_options()("dir", po::value<std::vector<std::string>>()->multitoken(), "directories");
  po::positional_options_description positional;
  positional.add("dir", -1);
  const auto vm = cli::parse("report", "DIR...", dirs, {"a", "b"}, &positional);
  BOOST_TEST_REQUIRE(vm.has_value());
  BOOST_TEST((*vm)["dir"].as<std::vector<std::string>>() == std::vector<std::string>({"a", "b"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

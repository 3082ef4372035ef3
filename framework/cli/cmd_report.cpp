#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "core/atomic_output.h"
#include "core/error.h"
#include "report/plots.h"
#include "report/report.h"
#include "sweep/sweep.h"

namespace angle::cli {
namespace fs = std::filesystem;

int run_report(const std::vector<std::string>& args) {
  po::options_description o("report");
  o.add_options()
      ("dirs", po::value<std::vector<std::string>>()->required(), "sweep directories and run output directories")
      ("out", po::value<std::string>(), "where report.csv, report.json and plots/ go (default: the first "
                                        "directory when it is a sweep; otherwise only the table is printed)")
      ("no-plots", po::bool_switch(), "skip the pictures");
  po::positional_options_description positional;
  positional.add("dirs", -1);
  const auto parsed = parse("report",
                            "DIR... [--out DIR] [--no-plots]\n\n"
                            "One row per run (state, swept values, seed, best dev Spearman and its step, test Spearman,\n"
                            "pairs/s, wall time, angle version), sorted by dev score; per configuration the mean and\n"
                            "std over seeds. Writes report.csv, report.json and plots/*.png (gnuplot).",
                            o, args, &positional);
  if (!parsed) return 0;
  const po::variables_map& vm = *parsed;
  const auto dirs = vm["dirs"].as<std::vector<std::string>>();
  const report::Report report = report::build_report(dirs);
  std::cout << report::format_table(report);
  std::string out;
  if (vm.count("out")) out = vm["out"].as<std::string>();
  else if (fs::exists(fs::path(dirs[0]) / sweep::kManifestFile)) out = dirs[0];
  if (out.empty()) return 0;
  fs::create_directories(out);
  write_atomically((fs::path(out) / "report.csv").string(), report::format_csv(report));
  write_atomically((fs::path(out) / "report.json").string(), report::to_json(report).dump(2) + "\n");
  std::cout << "\nwrote " << (fs::path(out) / "report.csv").string() << ", " << (fs::path(out) / "report.json").string()
            << "\n";
  if (vm["no-plots"].as<bool>()) return 0;
  const report::Plots plots = report::write_plots(report, (fs::path(out) / "plots").string());
  for (const auto& picture : plots.pictures) std::cout << "wrote " << picture << "\n";
  if (!plots.problem.empty()) std::cerr << "angle report: " << plots.problem << "\n";
  return 0;
}

}  // namespace angle::cli

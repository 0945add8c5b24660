// Lets CLI11 read a JSON config file: {"listen": "0.0.0.0:9464", "max-series": 20000}.
// Keys are the long flag names; flags given on the command line win over the file.
#pragma once

#include <CLI/CLI.hpp>

namespace netwatch::cli {

class JsonConfig : public CLI::Config {
 public:
  // The file's keys are the flags of this subcommand. (CLI11 2.1 reads config files only for
  // the top-level app, so --config lives there and the subcommand falls through to it.)
  explicit JsonConfig(std::string subcommand = "") : subcommand_(std::move(subcommand)) {}

  std::string to_config(const CLI::App* app, bool default_also, bool write_description,
                        std::string prefix) const override;
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;

 private:
  std::string subcommand_;
};

}  // namespace netwatch::cli

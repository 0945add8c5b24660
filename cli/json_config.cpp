#include "cli/json_config.h"

#include <nlohmann/json.hpp>

namespace netwatch::cli {
namespace {

std::string scalar(const nlohmann::json& v, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number()) return v.dump();
  throw CLI::ConversionError("config key '" + key + "' must be a string, number, boolean or a list of them");
}

}  // namespace

std::string JsonConfig::to_config(const CLI::App* app, bool default_also, bool, std::string) const {
  nlohmann::json j = nlohmann::json::object();
  for (const CLI::Option* opt : app->get_options()) {
    if (opt->get_lnames().empty() || !opt->get_configurable()) continue;
    std::string name = opt->get_lnames().front();
    if (opt->count() > 0) j[name] = opt->results().size() == 1 ? nlohmann::json(opt->results()[0]) : nlohmann::json(opt->results());
    else if (default_also && !opt->get_default_str().empty()) j[name] = opt->get_default_str();
  }
  return j.dump(2) + "\n";
}

std::vector<CLI::ConfigItem> JsonConfig::from_config(std::istream& input) const {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(input);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for huge numbers
    throw CLI::ConversionError(std::string("config file is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw CLI::ConversionError("config file must hold a JSON object of flag names to values");
  std::vector<CLI::ConfigItem> items;
  for (const auto& [key, value] : j.items()) {
    CLI::ConfigItem item;
    if (!subcommand_.empty()) item.parents = {subcommand_};
    item.name = key;
    if (value.is_array()) {
      for (const auto& v : value) item.inputs.push_back(scalar(v, key));
    } else {
      item.inputs.push_back(scalar(value, key));
    }
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace netwatch::cli

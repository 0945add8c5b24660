#include "tests/support/bpf_objects.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

namespace nwtest {
namespace {

nlohmann::json bpftool_json(const std::string& what) {
  std::string cmd = "bpftool -j " + what + " show 2>/dev/null", out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen bpftool failed");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  if (pclose(pipe) != 0) throw std::runtime_error("`" + cmd + "` failed");
  return nlohmann::json::parse(out);
}

std::vector<std::string> dir_entries(const std::string& path) {
  std::vector<std::string> names;
  if (DIR* d = opendir(path.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    closedir(d);
  }
  return names;
}

void add_held_programs(const std::string& pid, std::set<uint32_t>& ids) {
  const std::string dir = "/proc/" + pid + "/fdinfo/";
  for (const std::string& fd : dir_entries(dir)) {
    std::ifstream info(dir + fd);  // a process may exit meanwhile: then nothing is read
    std::string line;
    while (std::getline(info, line))
      if (line.rfind("prog_id:", 0) == 0) ids.insert(static_cast<uint32_t>(std::stoul(line.substr(8))));
  }
}

}  // namespace

std::vector<BpfProgram> bpftool_programs() {
  std::vector<BpfProgram> out;
  for (const auto& p : bpftool_json("prog")) out.push_back({p.at("id").get<uint32_t>(), p.value("name", "")});
  return out;
}

std::vector<BpfLink> bpftool_links() {
  std::vector<BpfLink> out;
  for (const auto& l : bpftool_json("link")) out.push_back({l.at("id").get<uint32_t>(), l.value("prog_id", 0u)});
  return out;
}

bool is_netwatch_program(const std::string& name) {
  static const std::regex re("^(btf|tp)_(set_state|retransmit|probe)");
  return std::regex_search(name, re);
}

std::set<uint32_t> programs_held_by(pid_t pid) {
  std::set<uint32_t> ids;
  add_held_programs(std::to_string(pid), ids);
  return ids;
}

std::set<uint32_t> programs_held_by_any_process() {
  std::set<uint32_t> ids;
  for (const std::string& entry : dir_entries("/proc"))
    if (entry.find_first_not_of("0123456789") == std::string::npos) add_held_programs(entry, ids);
  return ids;
}

std::set<uint32_t> programs_of_pinned_links(const std::string& bpffs) {
  std::set<uint32_t> ids;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(bpffs, ec); !ec && it != decltype(it)();
       it.increment(ec)) {
    if (it->is_directory()) continue;
    int fd = bpf_obj_get(it->path().c_str());
    if (fd < 0) continue;
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.prog_id) ids.insert(info.prog_id);
    close(fd);
  }
  return ids;
}

}  // namespace nwtest

// The pod resolver's parsers: cgroup paths, pod log directory names, container log link names
// and /proc/mounts text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "k8s/pod_resolver.h"

using namespace netwatch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  k8s::parse_pod_cgroup_path(text);
  k8s::parse_pod_log_dir_name(text);
  k8s::parse_container_log_link_name(text);
  size_t split = text.find('\n');
  k8s::locate_cgroup2_mount(text, split == std::string_view::npos ? "/sys/fs/cgroup" : text.substr(0, split));
  return 0;
}

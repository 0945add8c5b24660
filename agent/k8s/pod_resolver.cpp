#include "k8s/pod_resolver.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <sstream>

#include "util/clock.h"

namespace netwatch::k8s {
namespace {

constexpr size_t kContainerIdLen = 64;
constexpr size_t kMinTruncatedIdLen = 12;  // 48 bits: no accidental match inside one pod
// legacyLogSymlink() cuts the name to 255 - len(".log") characters before adding ".log".
constexpr size_t kLegacyLinkMaxLen = 255;

bool is_lower_hex(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool is_container_id(std::string_view s) {
  return s.size() == kContainerIdLen && is_lower_hex(s);
}

// A pod UID as a cgroup or directory name carries it: a UUID with '-' (cgroupfs, log directories)
// or '_' (systemd slice names, where '-' means nesting), or the 32-hex hash of a static pod.
std::optional<std::string> canonical_uid(std::string_view s) {
  if (s.size() == 32) return is_lower_hex(s) ? std::optional<std::string>(s) : std::nullopt;
  if (s.size() != 36) return std::nullopt;
  std::string uid(s);
  for (size_t i = 0; i < uid.size(); ++i) {
    bool separator = i == 8 || i == 13 || i == 18 || i == 23;
    if (separator) {
      if (uid[i] != '-' && uid[i] != '_') return std::nullopt;
      uid[i] = '-';
    } else if (!is_lower_hex(uid.substr(i, 1))) {
      return std::nullopt;
    }
  }
  return uid;
}

bool strip_suffix(std::string_view& s, std::string_view suffix) {
  if (!s.ends_with(suffix)) return false;
  s.remove_suffix(suffix.size());
  return true;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// "kubepods-burstable-pod<uid_>.slice" (systemd) or "pod<uid>" (cgroupfs).
std::optional<std::string> pod_uid_of(std::string_view segment) {
  if (strip_suffix(segment, ".slice")) {
    size_t dash = segment.rfind('-');
    if (dash != std::string_view::npos) segment.remove_prefix(dash + 1);
  }
  if (!segment.starts_with("pod")) return std::nullopt;
  return canonical_uid(segment.substr(3));
}

// The cgroup just below the pod's: "<prefix><64 hex>[.scope]".
void parse_container_segment(std::string_view segment, CgroupPodRef& ref) {
  strip_suffix(segment, ".scope");
  size_t dash = segment.rfind('-');
  std::string_view id = dash == std::string_view::npos ? segment : segment.substr(dash + 1);
  std::string_view prefix = dash == std::string_view::npos ? std::string_view() : segment.substr(0, dash + 1);
  if (!is_container_id(id)) return;
  // CRI-O's monitor gets its own scope when conmon_cgroup is "system.slice"-like; it is no container.
  if (prefix == "crio-conmon-") return;
  ref.container_id = std::string(id);
  if (prefix == "cri-containerd-")
    ref.runtime = ContainerRuntime::containerd;
  else if (prefix == "crio-")
    ref.runtime = ContainerRuntime::crio;
  else if (prefix == "docker-")
    ref.runtime = ContainerRuntime::docker;
  else
    ref.runtime = ContainerRuntime::unknown;  // cgroupfs bare ID: containerd or docker
}

// Unescapes /proc/mounts' octal escapes (" " is "\040").
std::string unescape_mount_path(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
        s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string trim_trailing_slashes(std::string_view s) {
  while (s.size() > 1 && s.back() == '/') s.remove_suffix(1);
  return std::string(s);
}

std::string dirname_of(const std::string& path) {
  std::string p = trim_trailing_slashes(path);
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

bool is_directory(DIR* dir, const dirent* e) {
  if (e->d_type == DT_DIR) return true;
  if (e->d_type != DT_UNKNOWN) return false;
  struct stat st {};
  return fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

bool is_dot(const char* name) {
  return name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0));
}

std::optional<std::string> read_link(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf));
  if (n <= 0 || static_cast<size_t>(n) == sizeof(buf)) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

// Calls f(entry) for each entry but "." and ".."; false when the directory cannot be opened.
template <typename F>
bool for_each_entry(const std::string& path, F&& f) {
  DIR* dir = opendir(path.c_str());
  if (!dir) return false;
  while (dirent* e = readdir(dir)) {
    if (is_dot(e->d_name)) continue;
    if (!f(dir, e)) break;
  }
  closedir(dir);
  return true;
}

}  // namespace

std::string_view runtime_name(ContainerRuntime runtime) {
  switch (runtime) {
    case ContainerRuntime::containerd:
      return "containerd";
    case ContainerRuntime::crio:
      return "cri-o";
    case ContainerRuntime::docker:
      return "docker";
    case ContainerRuntime::unknown:
      break;
  }
  return "unknown";
}

std::optional<CgroupPodRef> parse_pod_cgroup_path(std::string_view path) {
  std::vector<std::string_view> segments;
  for (std::string_view s : split(path, '/'))
    if (!s.empty()) segments.push_back(s);
  // Only below the kubelet's root ("kubepods", possibly nested as "kubelet-kubepods"), so that a
  // host cgroup that happens to be named pod<hex> is not taken for a pod.
  bool in_kubepods = false;
  for (size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].find("kubepods") != std::string_view::npos) in_kubepods = true;
    if (!in_kubepods) continue;
    std::optional<std::string> uid = pod_uid_of(segments[i]);
    if (!uid) continue;
    CgroupPodRef ref;
    ref.pod_uid = std::move(*uid);
    if (i + 1 < segments.size()) parse_container_segment(segments[i + 1], ref);
    return ref;
  }
  return std::nullopt;
}

std::optional<PodLogDirName> parse_pod_log_dir_name(std::string_view name) {
  std::vector<std::string_view> parts = split(name, '_');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty()) return std::nullopt;
  std::optional<std::string> uid = canonical_uid(parts[2]);
  if (!uid) return std::nullopt;
  return PodLogDirName{std::string(parts[0]), std::string(parts[1]), std::move(*uid)};
}

std::optional<ContainerLogLinkName> parse_container_log_link_name(std::string_view name) {
  const size_t full_len = name.size();
  if (!strip_suffix(name, ".log")) return std::nullopt;
  std::vector<std::string_view> parts = split(name, '_');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty()) return std::nullopt;
  size_t dash = parts[2].rfind('-');
  if (dash == std::string_view::npos || dash == 0) return std::nullopt;
  std::string_view id = parts[2].substr(dash + 1);
  ContainerLogLinkName out{std::string(parts[0]), std::string(parts[1]), std::string(parts[2].substr(0, dash)),
                           std::string(id), false};
  if (is_container_id(id)) return out;
  // Cut inside the ID: only a name the kubelet shortened, and enough of the ID left to match.
  if (full_len == kLegacyLinkMaxLen && id.size() >= kMinTruncatedIdLen && id.size() < kContainerIdLen &&
      is_lower_hex(id)) {
    out.truncated = true;
    return out;
  }
  return std::nullopt;
}

std::optional<std::string> locate_cgroup2_mount(std::string_view proc_mounts, std::string_view cgroup_root) {
  const std::string root = trim_trailing_slashes(cgroup_root);
  std::optional<std::string> below;
  std::istringstream lines{std::string(proc_mounts)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string device, dir, type;
    if (!(fields >> device >> dir >> type) || type != "cgroup2") continue;
    dir = trim_trailing_slashes(unescape_mount_path(dir));
    if (dir == root) return dir;
    const std::string prefix = root == "/" ? "/" : root + "/";
    if (dir.starts_with(prefix) && (!below || dir.size() < below->size())) below = dir;
  }
  return below;
}

std::optional<std::string> find_cgroup2_mount(const std::string& cgroup_root) {
  std::ifstream mounts("/proc/self/mounts");
  std::stringstream text;
  text << mounts.rdbuf();
  return locate_cgroup2_mount(text.str(), cgroup_root);
}

PodResolver::PodResolver(PodResolverOptions options) : options_(std::move(options)) {
  options_.cgroup2_dir = trim_trailing_slashes(options_.cgroup2_dir);
  options_.pod_log_dir = trim_trailing_slashes(options_.pod_log_dir);
  if (options_.container_log_dir.empty()) options_.container_log_dir = dirname_of(options_.pod_log_dir) + "/containers";
  if (options_.cache_capacity == 0) options_.cache_capacity = 1;
}

uint64_t PodResolver::now() const {
  if (options_.clock) return options_.clock();
  return util::monotonic_ns();
}

bool PodResolver::due(std::optional<uint64_t>& last) {
  uint64_t t = now();
  if (last && t - *last < options_.rescan_interval_ns) return false;
  last = t;
  return true;
}

PodLabels PodResolver::resolve(uint64_t cgroup_id) {
  if (cgroup_id == 0) return {};  // the kernel side could not read it
  if (auto it = cache_.find(cgroup_id); it != cache_.end()) {
    const CacheEntry& entry = *it->second;
    if (entry.complete || now() < entry.expires_ns) {
      ++stats_.cache_hits;
      lru_.splice(lru_.begin(), lru_, it->second);
      return entry.labels;
    }
    lru_.erase(it->second);
    cache_.erase(it);
  }
  ++stats_.cache_misses;
  bool complete = true;
  PodLabels labels = lookup(cgroup_id, complete);
  remember(cgroup_id, labels, complete);
  return labels;
}

void PodResolver::remember(uint64_t cgroup_id, PodLabels labels, bool complete) {
  uint64_t expires = complete ? 0 : now() + options_.rescan_interval_ns;
  lru_.push_front(CacheEntry{cgroup_id, std::move(labels), complete, expires});
  cache_[cgroup_id] = lru_.begin();
  while (lru_.size() > options_.cache_capacity) {
    cache_.erase(lru_.back().cgroup_id);
    lru_.pop_back();
    ++stats_.cache_evictions;
  }
  stats_.cache_entries = lru_.size();
}

PodLabels PodResolver::lookup(uint64_t cgroup_id, bool& complete) {
  const std::optional<CgroupPodRef>* cgroup = find_cgroup(cgroup_id);
  if (!cgroup) {
    ++stats_.unknown_cgroups;
    complete = false;
    return {};
  }
  if (!*cgroup) return {};  // a host cgroup
  const CgroupPodRef& ref = **cgroup;
  const PodInfo* pod = find_pod(ref.pod_uid);
  if (!pod) {
    ++stats_.unnamed_pods;
    complete = false;
    return {};
  }
  PodLabels labels{pod->namespace_, pod->pod, ""};
  if (ref.container_id.empty()) return labels;  // the pod's own cgroup
  std::optional<std::string> container = find_container(ref, *pod);
  if (!container) {
    ++stats_.unnamed_containers;
    complete = false;
    return labels;
  }
  labels.container = std::move(*container);
  return labels;
}

const std::optional<CgroupPodRef>* PodResolver::find_cgroup(uint64_t cgroup_id) {
  auto it = cgroups_.find(cgroup_id);
  if (it == cgroups_.end() && due(last_walk_ns_)) {
    walk_cgroups();
    it = cgroups_.find(cgroup_id);
  }
  return it == cgroups_.end() ? nullptr : &it->second;
}

const PodResolver::PodInfo* PodResolver::find_pod(const std::string& uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end() && due(last_pod_scan_ns_)) {
    scan_pod_dirs();
    it = pods_.find(uid);
  }
  return it == pods_.end() ? nullptr : &it->second;
}

std::optional<std::string> PodResolver::find_container(const CgroupPodRef& ref, const PodInfo& pod) {
  auto from_links = [&]() -> std::optional<std::string> {
    if (auto it = containers_.find(ref.container_id); it != containers_.end()) {
      // Rule 1. The ID is unique; the names check that the link is of this pod, not a stale one.
      if (it->second.pod == pod.pod && it->second.namespace_ == pod.namespace_) return it->second.container;
    }
    for (const auto& [prefix, link] : truncated_)  // rule 2
      if (ref.container_id.starts_with(prefix) && link.pod_uid == ref.pod_uid) return link.container;
    return std::nullopt;
  };
  if (auto name = from_links()) return name;
  if (due(last_container_scan_ns_)) {
    scan_container_links();
    if (auto name = from_links()) return name;
  }
  return container_from_pod_dir(ref, pod);
}

std::optional<std::string> PodResolver::container_from_pod_dir(const CgroupPodRef& ref, const PodInfo& pod) const {
  const std::string pod_dir = options_.pod_log_dir + "/" + pod.dir;
  std::vector<std::string> containers;
  std::optional<std::string> found;
  const std::string docker_log = ref.container_id + "-json.log";
  for_each_entry(pod_dir, [&](DIR* dir, const dirent* e) {
    if (!is_directory(dir, e)) return true;
    containers.emplace_back(e->d_name);
    const std::string container_dir = pod_dir + "/" + e->d_name;
    for_each_entry(container_dir, [&](DIR*, const dirent* log) {  // rule 3
      if (log->d_type != DT_LNK && log->d_type != DT_UNKNOWN) return true;
      std::optional<std::string> target = read_link(container_dir + "/" + log->d_name);
      if (target && target->ends_with("/" + docker_log)) found = containers.back();
      return !found;
    });
    return !found;
  });
  if (found) return found;
  if (containers.size() == 1) return containers.front();  // rule 4
  return std::nullopt;
}

void PodResolver::walk_cgroups() {
  ++stats_.cgroup_walks;
  std::unordered_map<uint64_t, std::optional<CgroupPodRef>> index;
  bool truncated = false;
  struct stat root {};
  if (stat(options_.cgroup2_dir.c_str(), &root) == 0) index.emplace(root.st_ino, std::nullopt);
  std::vector<std::string> pending{""};  // paths relative to the mount, "" for its root
  while (!pending.empty() && !truncated) {
    std::string relative = std::move(pending.back());
    pending.pop_back();
    // A cgroup removed since its parent was read is simply gone.
    for_each_entry(options_.cgroup2_dir + relative, [&](DIR* dir, const dirent* e) {
      if (!is_directory(dir, e)) return true;
      if (index.size() >= options_.max_cgroups) {
        truncated = true;
        return false;
      }
      std::string child = relative + "/" + e->d_name;
      // d_ino is kernfs_ino(), the cgroup id, so no stat() per directory.
      index.emplace(e->d_ino, parse_pod_cgroup_path(child));
      pending.push_back(std::move(child));
      return true;
    });
  }
  if (truncated) ++stats_.cgroup_walks_truncated;
  stats_.cgroups_indexed = index.size();
  cgroups_ = std::move(index);
}

void PodResolver::scan_pod_dirs() {
  ++stats_.pod_dir_scans;
  std::unordered_map<std::string, PodInfo> pods;
  for_each_entry(options_.pod_log_dir, [&](DIR*, const dirent* e) {
    if (pods.size() >= options_.max_pods) return false;
    if (auto name = parse_pod_log_dir_name(e->d_name))
      pods.emplace(name->uid, PodInfo{name->namespace_, name->pod, e->d_name});
    return true;
  });
  pods_ = std::move(pods);
}

void PodResolver::scan_container_links() {
  ++stats_.container_dir_scans;
  std::unordered_map<std::string, ContainerLink> containers;
  std::vector<std::pair<std::string, ContainerLink>> truncated;
  for_each_entry(options_.container_log_dir, [&](DIR*, const dirent* e) {
    if (containers.size() + truncated.size() >= options_.max_containers) return false;
    std::optional<ContainerLogLinkName> name = parse_container_log_link_name(e->d_name);
    if (!name) return true;
    ContainerLink link{name->pod, name->namespace_, name->container, ""};
    if (!name->truncated) {
      containers.emplace(name->container_id, std::move(link));
      return true;
    }
    // The name lost part of the ID, maybe of the container name: the target has both in full,
    // ".../<ns>_<pod>_<uid>/<container>/<n>.log".
    std::optional<std::string> target = read_link(options_.container_log_dir + "/" + e->d_name);
    if (!target) return true;
    std::vector<std::string_view> parts = split(*target, '/');
    if (parts.size() < 3) return true;
    std::optional<PodLogDirName> pod_dir = parse_pod_log_dir_name(parts[parts.size() - 3]);
    if (!pod_dir || parts[parts.size() - 2].empty()) return true;
    link.pod_uid = pod_dir->uid;
    link.container = std::string(parts[parts.size() - 2]);
    truncated.emplace_back(name->container_id, std::move(link));
    return true;
  });
  containers_ = std::move(containers);
  truncated_ = std::move(truncated);
}

}  // namespace netwatch::k8s

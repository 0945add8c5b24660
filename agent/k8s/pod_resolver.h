// Pod labels for a socket's cgroup, without asking the API server: cgroup id -> cgroup v2 path ->
// pod UID and container ID -> namespace, pod and container names from the kubelet's log directories.
//
// cgroup id -> path: on 64-bit kernels a cgroup's id is its kernfs node id, which is also the inode
// number of its directory in the cgroup2 mount (kernfs_ino(), since v5.5, 67c0496e87d1). The cheap
// direction, path -> id, is free (readdir's d_ino); the reverse, open_by_handle_at(), needs
// CAP_DAC_READ_SEARCH, the capability the "shocker" container escape used. So the resolver walks the
// cgroup2 mount with readdir only (no stat per directory), indexes every directory's d_ino, and walks
// again only when an id is missing and the last walk is older than rescan_interval_ns. cgroup ids are
// never reused on 64-bit kernels, so a resolved id stays valid until it is evicted.
//
// Container name: the kubelet names a symlink for every container it starts
// `/var/log/containers/<pod>_<namespace>_<container>-<containerID>.log` (legacyLogSymlink() in
// pkg/kubelet/kuberuntime/legacy.go), cut to 251 characters + ".log"; its target is
// `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log`. Pod, namespace and container
// names cannot contain '_' (DNS names), container IDs cannot contain '-', so the name splits one way.
// The rules, in order; the first that answers wins and nothing is guessed:
//  1. a link whose name ends in the full container ID, for a pod with the same namespace and name;
//  2. a link cut short inside the ID: its target names the pod UID and the container, and the part of
//     the ID left (at least 12 hex digits) must be a prefix of the cgroup's container ID;
//  3. dockershim layout: `/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log` links to
//     `.../<containerID>/<containerID>-json.log`;
//  4. the pod's log directory holds exactly one container directory: the kubelet creates a
//     container's log directory before it creates the container, so a process in a container cgroup
//     of that pod can only belong to that container (the sandbox's pause process opens no sockets).
// Otherwise the container label stays empty.
//
// Not thread-safe: one owner (the aggregation thread) calls resolve().
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "k8s/pod_resolver_stats.h"
#include "k8s/workload_labels.h"

namespace netwatch::k8s {

// Workload labels of a connection (namespace, pod, container), all empty for host processes; the
// container is empty also when the pod is known but its container name is not.
using PodLabels = WorkloadLabels;

enum class ContainerRuntime { unknown, containerd, crio, docker };
std::string_view runtime_name(ContainerRuntime runtime);

// What a cgroup path says about its pod.
struct CgroupPodRef {
  std::string pod_uid;       // canonical: lowercase, dashes ('_' from systemd slice names undone)
  std::string container_id;  // 64 hex digits; empty for the pod's own cgroup or a runtime helper
  ContainerRuntime runtime = ContainerRuntime::unknown;  // unknown also for bare-ID cgroupfs names
  bool operator==(const CgroupPodRef&) const = default;
};

// Parses a path inside the cgroup2 hierarchy ("/kubepods.slice/.../cri-containerd-<id>.scope").
// nullopt when the path is not inside a pod. Handles systemd (kubepods-<qos>-pod<uid_with_>.slice)
// and cgroupfs (kubepods/<qos>/pod<uid>) drivers, guaranteed pods without a QoS level, nested
// kubelet roots (kind: kubelet.slice/kubelet-kubepods.slice/...), and containerd, CRI-O and docker
// container names; cgroups below the container's own (crun's "container" subgroup) belong to it.
std::optional<CgroupPodRef> parse_pod_cgroup_path(std::string_view path);

// "<ns>_<pod>_<uid>" -> its parts (uid canonical); nullopt when the name is not of that shape.
struct PodLogDirName {
  std::string namespace_;
  std::string pod;
  std::string uid;
};
std::optional<PodLogDirName> parse_pod_log_dir_name(std::string_view name);

// "<pod>_<ns>_<container>-<id>.log" (a /var/log/containers entry) -> its parts. container_id may be
// shorter than 64 hex digits when the kubelet cut the name at 255 characters (then truncated is set).
struct ContainerLogLinkName {
  std::string pod;
  std::string namespace_;
  std::string container;
  std::string container_id;
  bool truncated = false;
};
std::optional<ContainerLogLinkName> parse_container_log_link_name(std::string_view name);

// The cgroup2 mount to walk for --cgroup-root: the root itself when it is a cgroup2 mount, else the
// shallowest cgroup2 mount below it (hybrid layout: <root>/unified), else nullopt.
// proc_mounts is the text of /proc/mounts.
std::optional<std::string> locate_cgroup2_mount(std::string_view proc_mounts, std::string_view cgroup_root);
// Same, reading /proc/self/mounts.
std::optional<std::string> find_cgroup2_mount(const std::string& cgroup_root);

struct PodResolverOptions {
  std::string cgroup2_dir = "/sys/fs/cgroup";  // the cgroup2 mount itself (see find_cgroup2_mount)
  std::string pod_log_dir = "/var/log/pods";
  std::string container_log_dir;                // empty: "containers" beside pod_log_dir
  size_t cache_capacity = 8192;                 // cgroup id -> labels entries (LRU)
  size_t max_cgroups = 65536;                   // a walk indexes at most this many directories
  size_t max_pods = 4096;                       // pod log directories indexed
  size_t max_containers = 16384;                // container log links indexed
  uint64_t rescan_interval_ns = 1'000'000'000;  // each directory is read at most once per interval
  std::function<uint64_t()> clock;              // monotonic ns; empty: CLOCK_MONOTONIC
};

class PodResolver {
 public:
  explicit PodResolver(PodResolverOptions options);

  // Labels for a socket's cgroup id; empty for host processes and for ids not resolvable yet.
  // Complete answers are cached until evicted; incomplete ones are retried after rescan_interval_ns.
  PodLabels resolve(uint64_t cgroup_id);

  const PodResolverStats& stats() const { return stats_; }
  const PodResolverOptions& options() const { return options_; }

 private:
  struct CacheEntry {
    uint64_t cgroup_id;
    PodLabels labels;
    bool complete;        // kept until evicted
    uint64_t expires_ns;  // incomplete answers are retried from then on
  };
  struct PodInfo {
    std::string namespace_;
    std::string pod;
    std::string dir;  // directory name under pod_log_dir
  };
  struct ContainerLink {
    std::string pod;
    std::string namespace_;
    std::string container;
    std::string pod_uid;  // from the link's target; empty if it could not be read
  };

  uint64_t now() const;
  // True (and stamps last) when a directory was never read or was read rescan_interval_ns ago.
  bool due(std::optional<uint64_t>& last);
  PodLabels lookup(uint64_t cgroup_id, bool& complete);
  const std::optional<CgroupPodRef>* find_cgroup(uint64_t cgroup_id);
  const PodInfo* find_pod(const std::string& uid);
  std::optional<std::string> find_container(const CgroupPodRef& ref, const PodInfo& pod);
  std::optional<std::string> container_from_pod_dir(const CgroupPodRef& ref, const PodInfo& pod) const;
  void walk_cgroups();
  void scan_pod_dirs();
  void scan_container_links();
  void remember(uint64_t cgroup_id, PodLabels labels, bool complete);

  PodResolverOptions options_;
  PodResolverStats stats_;

  // id -> pod reference (nullopt: a host cgroup), from the last walk.
  std::unordered_map<uint64_t, std::optional<CgroupPodRef>> cgroups_;
  std::unordered_map<std::string, PodInfo> pods_;                 // uid -> names
  std::unordered_map<std::string, ContainerLink> containers_;     // full container id -> link
  std::vector<std::pair<std::string, ContainerLink>> truncated_;  // id prefix -> link
  std::optional<uint64_t> last_walk_ns_;
  std::optional<uint64_t> last_pod_scan_ns_;
  std::optional<uint64_t> last_container_scan_ns_;

  std::list<CacheEntry> lru_;  // most recently used first
  std::unordered_map<uint64_t, std::list<CacheEntry>::iterator> cache_;
};

}  // namespace netwatch::k8s

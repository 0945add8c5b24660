// The pod resolver's counters as plain data, for the snapshot and /metrics.
#pragma once

#include <cstdint>

namespace netwatch::k8s {

// Counters the agent exports as self-metrics.
struct PodResolverStats {
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
  uint64_t cache_evictions = 0;
  uint64_t cache_entries = 0;
  uint64_t cgroup_walks = 0;            // walks of the cgroup2 mount
  uint64_t cgroup_walks_truncated = 0;  // walks that stopped at max_cgroups
  uint64_t cgroups_indexed = 0;         // directories the last walk indexed
  uint64_t pod_dir_scans = 0;
  uint64_t container_dir_scans = 0;
  uint64_t unknown_cgroups = 0;     // ids no walk found (yet): labelled as host for now
  uint64_t unnamed_pods = 0;        // pod cgroups with no pod log directory (yet)
  uint64_t unnamed_containers = 0;  // container cgroups whose name no rule determined
};

}  // namespace netwatch::k8s

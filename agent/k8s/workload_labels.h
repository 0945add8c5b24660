// A connection's workload: namespace, pod and container, all empty for a process outside any pod.
#pragma once

#include <string>

namespace netwatch::k8s {

struct WorkloadLabels {
  std::string namespace_name;
  std::string pod;
  std::string container;

  bool operator==(const WorkloadLabels&) const = default;
  bool empty() const { return namespace_name.empty() && pod.empty() && container.empty(); }
};

}  // namespace netwatch::k8s

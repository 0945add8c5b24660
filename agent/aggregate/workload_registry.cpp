#include "aggregate/workload_registry.h"

#include <functional>

namespace netwatch::aggregate {

WorkloadRegistry::WorkloadRegistry(size_t cap) : cap_(cap) {
  by_id_.push_back({});
  by_id_.push_back({"other", "other", "other"});
}

size_t WorkloadRegistry::Hash::operator()(const k8s::WorkloadLabels& w) const noexcept {
  std::hash<std::string> h;
  return h(w.namespace_name) * 31 * 31 + h(w.pod) * 31 + h(w.container);
}

uint32_t WorkloadRegistry::intern(const k8s::WorkloadLabels& labels) {
  if (labels.empty()) return kHost;
  if (auto it = ids_.find(labels); it != ids_.end()) return it->second;
  if (by_id_.size() >= cap_ + 2) {
    ++overflows_;
    return kOther;
  }
  uint32_t id = static_cast<uint32_t>(by_id_.size());
  by_id_.push_back(labels);
  ids_.emplace(labels, id);
  return id;
}

}  // namespace netwatch::aggregate

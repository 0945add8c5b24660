// Interns workload labels (namespace, pod, container) so flow keys carry a small id instead
// of three strings. Bounded: past the cap every new workload shares one "other" id.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "k8s/workload_labels.h"

namespace netwatch::aggregate {

class WorkloadRegistry {
 public:
  static constexpr uint32_t kHost = 0;   // empty labels: a process outside any pod
  static constexpr uint32_t kOther = 1;  // the cap was reached

  explicit WorkloadRegistry(size_t cap = 4096);
  uint32_t intern(const k8s::WorkloadLabels& labels);
  const k8s::WorkloadLabels& labels(uint32_t id) const { return by_id_.at(id); }
  uint64_t overflows() const { return overflows_; }
  size_t size() const { return by_id_.size(); }

  // Plain data for a checkpoint (agent/persist/checkpoint.cpp).
  struct State {
    std::vector<k8s::WorkloadLabels> labels;  // by id
    uint64_t overflows = 0;
  };
  State save() const { return {by_id_, overflows_}; }
  // Adds a saved registry's overflows. Its labels are interned again where they are used, so
  // their ids here may differ from the saved ones.
  void restore(const State& saved) { overflows_ += saved.overflows; }

 private:
  struct Hash {
    size_t operator()(const k8s::WorkloadLabels& w) const noexcept;
  };
  size_t cap_;
  std::vector<k8s::WorkloadLabels> by_id_;
  std::unordered_map<k8s::WorkloadLabels, uint32_t, Hash> ids_;
  uint64_t overflows_ = 0;
};

}  // namespace netwatch::aggregate

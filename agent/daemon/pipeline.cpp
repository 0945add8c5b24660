#include "daemon/pipeline.h"

#include <optional>
#include <vector>

#include "kernel/pin_dir.h"
#include "util/log.h"

namespace netwatch::daemon {
namespace {

aggregate::WorkloadResolver resolver_of(k8s::PodResolver* pods) {
  if (!pods) return {};
  return [pods](uint64_t cgroup) { return pods->resolve(cgroup); };
}

}  // namespace

Pipeline::Pipeline(const PipelineOptions& options, std::unique_ptr<k8s::PodResolver> pods)
    : node_(options.node),
      drain_interval_ms_(options.reader.drain_interval_ms),
      pods_(std::move(pods)),
      probes_(kernel::ProbeSet::start(options.probes)),
      aggregator_(options.aggregation, resolver_of(pods_.get())) {
  // Logged once the probes are up: a failing start says one line, its error.
  if (options.checkpoint && pods_)
    util::log_info("pod labels from " + pods_->options().cgroup2_dir + " and " + pods_->options().pod_log_dir);
  if (options.checkpoint) continue_from_checkpoint();
  reader_ = std::make_unique<transport::EventReader>(*probes_, aggregator_, options.reader);
}

std::shared_ptr<aggregate::Snapshot> Pipeline::snapshot(size_t connection_limit) const {
  uint64_t now = util::monotonic_ns();
  std::shared_ptr<aggregate::Snapshot> s = aggregator_.snapshot(now, clock_.to_unix_ns(now), connection_limit);
  s->node = node_;
  aggregate::AgentHealth& h = s->health;
  h.kernel = probes_->counters();
  h.drains = reader_->drains();
  h.decode_errors = reader_->decode_errors();
  h.variant = kernel::variant_name(probes_->variant());
  h.transport = kernel::transport_name(probes_->transport());
  h.programs = probes_->program_stats();
  if (pods_) h.pods = pods_->stats();
  base_.add_to(h);
  return s;
}

// Continues from the previous agent's clean stop, if it left a checkpoint: the aggregation, and
// the bases for the counters this process restarts from zero.
void Pipeline::continue_from_checkpoint() {
  kernel::PinDir* pins = probes_->pins();
  if (!pins) return;
  std::optional<std::vector<uint8_t>> bytes = pins->take_checkpoint();
  std::optional<persist::Restored> restored = bytes ? persist::restore_checkpoint(*bytes, aggregator_) : std::nullopt;
  if (!restored) {
    if (probes_->adopted())
      util::log_warn(
          "the previous agent left no checkpoint (it did not stop cleanly): exported counters restart from zero");
    return;
  }
  base_ = restored->base;
  if (probes_->adopted()) {  // the kernel kept counting in the adopted maps and programs
    base_.kernel = {};
    base_.programs.clear();
  }
  util::log_info("continuing from the previous agent's checkpoint: " + std::to_string(restored->connections) +
                 " connections, " + std::to_string(restored->flows) + " flows");
}

void Pipeline::store_checkpoint() {
  kernel::PinDir* pins = probes_->pins();
  if (!pins) return;
  reader_->poll();  // what the ring holds now belongs to this agent's counts, not the next one's
  std::shared_ptr<aggregate::Snapshot> last = snapshot(0);
  std::vector<uint8_t> bytes = persist::save_checkpoint(aggregator_, last->health);
  if (pins->store_checkpoint(bytes))
    util::log_info("checkpoint stored in " + pins->path() + " (" + std::to_string(bytes.size()) + " bytes)");
  else
    util::log_error("storing the checkpoint in " + pins->path() +
                    " failed: the next agent's counters restart from zero");
}

}  // namespace netwatch::daemon

// What each event does to its connection and the connection's flow: a connect, an accept, a
// failed connect, a close, a retransmit, an RTT sample. Every event carrying the kernel's
// cumulative counters moves their growth since the previous event into the flow at once, so flow
// counters grow as things happen, never jump at close, and never go backwards.
//
// The slots themselves (lookup, reuse, recency, eviction, prefetching) are the ConnectionTable's;
// these rules decide what goes into them. Single-threaded: only the reader's thread applies events.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>

#include "aggregate/connection_table.h"
#include "event/event.h"
#include "event/event_record.h"
#include "aggregate/flow_table.h"

namespace netwatch::aggregate {

// Who a connection belongs to, from its socket's cgroup id (pod labels), interned.
using WorkloadOf = std::function<uint32_t(uint64_t cgroup_id)>;

class EventRules {
 public:
  EventRules(FlowTable& flows, ConnectionTable& connections, WorkloadOf workload_of);

  void apply(const event::EventRecord& record) { apply({&record, 1}); }
  // Each record in order; the table overlaps the batch's cache misses (ConnectionTable::visit).
  void apply(std::span<const event::EventRecord> records);

  // Records applied, by type: the agent's count of events received and decoded.
  const std::array<uint64_t, event::kEventTypeCount>& records_by_type() const { return by_type_; }
  // The previous agent's counts (agent/persist/checkpoint.cpp): added to this one's.
  void add_records_by_type(const std::array<uint64_t, event::kEventTypeCount>& counts);

 private:
  // Every record but an RTT sample of a live connection (c: its connection, nullptr if not live).
  void apply_other(const event::EventRecord& r, Connection* c);
  Connection& add(const event::EventRecord& r, bool from_start);  // r's cookie is not in the table
  FlowKey flow_key(const event::Event& e) const;

  FlowTable& flows_;
  ConnectionTable& connections_;
  WorkloadOf workload_of_;
  std::array<uint64_t, event::kEventTypeCount> by_type_{};
};

}  // namespace netwatch::aggregate

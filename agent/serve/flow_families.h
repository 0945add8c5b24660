// The flow and service families of /metrics: names, help and types, and each flow's and
// service's labels. One list that the text exposition (metrics_render.cpp) and the protobuf one
// (metrics_protobuf.cpp) both write: counters per flow, the latency histograms per service.
#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>

#include <vector>

#include "aggregate/snapshot.h"

namespace netwatch::serve {

struct FlowFamily {
  const char* name;
  const char* help;
  prometheus::MetricType type;
};
inline constexpr FlowFamily kConnects = {"netwatch_tcp_connects_total",
                                         "TCP connections by handshake result (inbound: accepted connections)",
                                         prometheus::MetricType::Counter};
inline constexpr FlowFamily kConnectDuration = {"netwatch_tcp_connect_duration_seconds",
                                                "Outbound connect latency, SYN sent to established",
                                                prometheus::MetricType::Histogram};
inline constexpr FlowFamily kRetransmits = {"netwatch_tcp_retransmits_total", "Retransmitted TCP segments",
                                            prometheus::MetricType::Counter};
inline constexpr FlowFamily kSegments = {"netwatch_tcp_segments_sent_total",
                                         "TCP segments sent, retransmissions included", prometheus::MetricType::Counter};
inline constexpr FlowFamily kRtt = {"netwatch_tcp_rtt_seconds", "Smoothed RTT, sampled per connection",
                                    prometheus::MetricType::Histogram};
inline constexpr FlowFamily kActive = {"netwatch_tcp_active_connections", "Live tracked connections",
                                       prometheus::MetricType::Gauge};
inline constexpr FlowFamily kBytesSent = {"netwatch_tcp_bytes_sent_total",
                                          "Payload bytes sent, retransmissions included",
                                          prometheus::MetricType::Counter};
inline constexpr FlowFamily kBytesReceived = {"netwatch_tcp_bytes_received_total", "Payload bytes received",
                                              prometheus::MetricType::Counter};

// direction, peer, port, namespace, pod, container (workload labels "other" once folded).
std::vector<prometheus::ClientMetric::Label> flow_labels(const aggregate::FlowView& f);
// The same without peer: a service's.
std::vector<prometheus::ClientMetric::Label> service_labels(const aggregate::ServiceView& v);

}  // namespace netwatch::serve

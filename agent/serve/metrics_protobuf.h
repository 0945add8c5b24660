// /metrics in Prometheus's protobuf exposition: length-delimited io.prometheus.client.MetricFamily
// messages (metrics.proto of Prometheus's client_model), which is how a Prometheus run with
// --enable-feature=native-histograms scrapes native histograms.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

#include "aggregate/snapshot.h"

namespace netwatch::serve {

// Every family of render_metrics_text(snapshot, extra), with the same names, help, types, labels
// and values, in the same order. The two latency histograms (per service) carry their native
// buckets (schema, zero bucket, spans and deltas) and their classic buckets (without +Inf's,
// which sample_count is). netwatch_series counts series as the text has them: it is the budget's.
std::string render_metrics_protobuf(const aggregate::Snapshot& snapshot,
                                    const std::vector<prometheus::MetricFamily>& extra = {});

}  // namespace netwatch::serve

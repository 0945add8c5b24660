// /metrics in Prometheus's protobuf exposition: length-delimited io.prometheus.client.MetricFamily
// messages (metrics.proto of Prometheus's client_model), which is how a Prometheus run with
// --enable-feature=native-histograms scrapes native histograms.
#pragma once

#include <string>

#include "aggregate/snapshot.h"
#include "serve/http_limits.h"

namespace netwatch::serve {

// Every family of the text exposition (render_metrics_text, then render_http_metrics_text), with
// the same names, help, types, labels and values, in the same order. The two latency histograms
// carry their native buckets (schema, zero bucket, spans and deltas) and their classic buckets
// (without +Inf's, which sample_count is).
std::string render_metrics_protobuf(const aggregate::Snapshot& snapshot, const HttpStats& stats,
                                    const HttpLimits& limits);

}  // namespace netwatch::serve

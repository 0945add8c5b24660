// /metrics: a snapshot turned into Prometheus families at scrape time (the pull model of
// prometheus-cpp's Collectable). The names and labels are a documented contract (README).
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

#include "aggregate/snapshot.h"
#include "serve/http_limits.h"

namespace netwatch::serve {

// The whole /metrics text: the flow and service families written straight to text, then the
// agent's own health families and `extra` (the HTTP server's) serialized by prometheus-cpp.
std::string render_metrics_text(const aggregate::Snapshot& snapshot,
                                const std::vector<prometheus::MetricFamily>& extra = {});
// Series of the flow and service families: counters per flow (one per connect result seen),
// histograms per service.
size_t flow_family_series(const aggregate::Snapshot& snapshot);
// The health families alone (netwatch_events_total, ...). netwatch_series counts them, itself
// and other_series (the flow families' and any others the exposition holds).
std::vector<prometheus::MetricFamily> render_health_families(const aggregate::Snapshot& snapshot,
                                                             size_t other_series = 0);
// The HTTP server's own families (netwatch_http_*), read live at each scrape.
std::vector<prometheus::MetricFamily> http_metric_families(const HttpStats& stats, const HttpLimits& limits);

}  // namespace netwatch::serve

// /metrics: a snapshot turned into Prometheus families at scrape time (the pull model of
// prometheus-cpp's Collectable). The names and labels are a documented contract (README).
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

#include "aggregate/snapshot.h"
#include "serve/http_limits.h"

namespace netwatch::serve {

// The whole /metrics text: the flow families (~49 series per flow) written straight to text,
// then the agent's own health families serialized by prometheus-cpp.
std::string render_metrics_text(const aggregate::Snapshot& snapshot);
// The health families alone (netwatch_events_total, ...).
std::vector<prometheus::MetricFamily> render_health_families(const aggregate::Snapshot& snapshot);
// The HTTP server's own families (netwatch_http_*), read live at each scrape.
std::vector<prometheus::MetricFamily> render_http_families(const HttpStats& stats, const HttpLimits& limits);
// The same as text.
std::string render_http_metrics_text(const HttpStats& stats, const HttpLimits& limits);

}  // namespace netwatch::serve

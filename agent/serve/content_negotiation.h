// Which exposition a /metrics request gets, from its Accept header (RFC 9110 12.5.1).
#pragma once

#include <string_view>

namespace netwatch::serve {

enum class MetricsFormat { text, protobuf };

inline constexpr const char* kTextContentType = "text/plain; version=0.0.4; charset=utf-8";
inline constexpr const char* kProtobufContentType =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

// Protobuf when the header names application/vnd.google.protobuf with
// proto=io.prometheus.client.MetricFamily and encoding=delimited at a q above 0 and at least the q
// text/plain gets (from its own entry, text/ *, or * / *); otherwise, and without a header, text.
// Names and parameters are case-insensitive, values may be quoted; a malformed entry is skipped.
MetricsFormat negotiate_metrics_format(std::string_view accept);

}  // namespace netwatch::serve

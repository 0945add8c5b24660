// /metrics content negotiation: the Accept headers Debian's Prometheus 2.42 really sends (captured
// from its scrapes) and the edges of the Accept grammar.
#include "serve/content_negotiation.h"

#include <gtest/gtest.h>

namespace netwatch::serve {
namespace {

// prometheus --enable-feature=native-histograms (2.42.0+ds-5+deb12u1), as captured on a socket.
constexpr const char* kPrometheusNativeAccept =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
    "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
// The same Prometheus without the feature.
constexpr const char* kPrometheusClassicAccept =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

TEST(ContentNegotiation, prometheus_with_native_histograms_gets_protobuf) {
  EXPECT_EQ(negotiate_metrics_format(kPrometheusNativeAccept), MetricsFormat::protobuf);
}

TEST(ContentNegotiation, prometheus_without_native_histograms_gets_text) {
  EXPECT_EQ(negotiate_metrics_format(kPrometheusClassicAccept), MetricsFormat::text);
}

TEST(ContentNegotiation, the_header_of_the_brief_with_q_values_gets_protobuf) {
  EXPECT_EQ(negotiate_metrics_format("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                                     "encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
            MetricsFormat::protobuf);
}

TEST(ContentNegotiation, no_header_curl_and_browsers_get_text) {
  EXPECT_EQ(negotiate_metrics_format(""), MetricsFormat::text);
  EXPECT_EQ(negotiate_metrics_format("*/*"), MetricsFormat::text);
  EXPECT_EQ(negotiate_metrics_format("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            MetricsFormat::text);
}

TEST(ContentNegotiation, q_zero_refuses_protobuf) {
  EXPECT_EQ(negotiate_metrics_format("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                                     "encoding=delimited;q=0,text/plain;q=0.1"),
            MetricsFormat::text);
  EXPECT_EQ(negotiate_metrics_format(
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.0"),
            MetricsFormat::text);
}

TEST(ContentNegotiation, text_preferred_by_q_wins) {
  EXPECT_EQ(negotiate_metrics_format("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                                     "encoding=delimited;q=0.4,text/plain;q=0.9"),
            MetricsFormat::text);
  // text/plain;q=0 refuses text: its own entry outranks */*.
  EXPECT_EQ(negotiate_metrics_format("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                                     "encoding=delimited;q=0.1,text/plain;q=0,*/*;q=1"),
            MetricsFormat::protobuf);
}

TEST(ContentNegotiation, protobuf_needs_the_proto_and_the_delimited_encoding) {
  EXPECT_EQ(negotiate_metrics_format("application/vnd.google.protobuf"), MetricsFormat::text);
  EXPECT_EQ(negotiate_metrics_format("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                                     "encoding=text"),
            MetricsFormat::text);
  EXPECT_EQ(negotiate_metrics_format("application/vnd.google.protobuf;proto=other.Message;encoding=delimited"),
            MetricsFormat::text);
}

TEST(ContentNegotiation, case_spaces_and_quotes_are_tolerated) {
  EXPECT_EQ(negotiate_metrics_format(" Application/Vnd.Google.Protobuf ; Proto=\"io.prometheus.client.MetricFamily\" ;"
                                     " Encoding=delimited ; Q=0.5 , text/plain ; q=0.2"),
            MetricsFormat::protobuf);
}

TEST(ContentNegotiation, a_malformed_entry_is_skipped_not_fatal) {
  EXPECT_EQ(negotiate_metrics_format("garbage,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                                     "encoding=delimited;q=abc,text/plain"),
            MetricsFormat::text);
  EXPECT_EQ(negotiate_metrics_format(",;,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                                     "encoding=delimited"),
            MetricsFormat::protobuf);
}

}  // namespace
}  // namespace netwatch::serve

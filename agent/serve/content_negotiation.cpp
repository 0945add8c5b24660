#include "serve/content_negotiation.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>
#include <vector>

namespace netwatch::serve {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Splits on `sep` outside double quotes.
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '"') quoted = !quoted;
    else if (s[i] == sep && !quoted) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

struct MediaRange {
  std::string type, subtype;
  std::string proto, encoding;  // the protobuf parameters, lower case
  double q = 1;
};

// "type/subtype;name=value;...;q=0.5"; false when malformed.
bool parse_range(std::string_view entry, MediaRange& r) {
  std::vector<std::string_view> parts = split(entry, ';');
  std::string_view media = trim(parts[0]);
  size_t slash = media.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == media.size()) return false;
  r.type = lower(trim(media.substr(0, slash)));
  r.subtype = lower(trim(media.substr(slash + 1)));
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string_view p = trim(parts[i]);
    size_t eq = p.find('=');
    if (eq == std::string_view::npos) return false;
    std::string name = lower(trim(p.substr(0, eq)));
    std::string_view value = trim(p.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (name == "q") {
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), r.q);
      if (ec != std::errc() || end != value.data() + value.size() || r.q < 0 || r.q > 1) return false;
    } else if (name == "proto") {
      r.proto = lower(value);
    } else if (name == "encoding") {
      r.encoding = lower(value);
    }
  }
  return true;
}

}  // namespace

MetricsFormat negotiate_metrics_format(std::string_view accept) {
  double protobuf_q = 0;
  // text/plain's q from its most specific range: 3 text/plain, 2 text/*, 1 */*.
  double text_q = 0;
  int text_specificity = 0;
  for (std::string_view entry : split(accept, ',')) {
    if (trim(entry).empty()) continue;
    MediaRange r;
    if (!parse_range(entry, r)) continue;
    if (r.type == "application" && r.subtype == "vnd.google.protobuf" && r.proto == "io.prometheus.client.metricfamily" &&
        r.encoding == "delimited") {
      protobuf_q = std::max(protobuf_q, r.q);
      continue;
    }
    int specificity = r.type == "text" && r.subtype == "plain" ? 3
                      : r.type == "text" && r.subtype == "*"   ? 2
                      : r.type == "*" && r.subtype == "*"      ? 1
                                                               : 0;
    if (specificity > text_specificity) {
      text_specificity = specificity;
      text_q = r.q;
    } else if (specificity && specificity == text_specificity) {
      text_q = std::max(text_q, r.q);
    }
  }
  return protobuf_q > 0 && protobuf_q >= text_q ? MetricsFormat::protobuf : MetricsFormat::text;
}

}  // namespace netwatch::serve

// Parsing what users type: durations, listen addresses, JSON config files.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "serve/http_server.h"
#include "util/log.h"
#include "cli/json_config.h"
#include "cli/probe_flags.h"

namespace netwatch {
namespace {

TEST(Duration, parses_units) {
  EXPECT_EQ(cli::parse_duration_ns("250ms"), 250'000'000u);
  EXPECT_EQ(cli::parse_duration_ns("1s"), 1'000'000'000u);
  EXPECT_EQ(cli::parse_duration_ns("2m"), 120'000'000'000u);
  EXPECT_EQ(cli::parse_duration_ns("500us"), 500'000u);
  EXPECT_FALSE(cli::parse_duration_ns("1"));
  EXPECT_FALSE(cli::parse_duration_ns("s"));
  EXPECT_FALSE(cli::parse_duration_ns("-1s"));
  EXPECT_FALSE(cli::parse_duration_ns("1.5s"));
  EXPECT_FALSE(cli::parse_duration_ns("99999999999999s"));
}

TEST(ListenAddress, accepts_ipv4_and_bracketed_ipv6) {
  auto a = util::parse_listen_address("127.0.0.1:9464");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9464);
  auto b = util::parse_listen_address("[::1]:0");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 0);
}

TEST(ListenAddress, rejects_malformed) {
  for (const char* bad : {"9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "::1:9464", "[::1]", "host:80",
                          "1.2.3.4:9x", "[::1]:123456", ":9464", "[1.2.3.4]:80"})
    EXPECT_FALSE(util::parse_listen_address(bad)) << bad;
}

TEST(ConnectionsLimit, bounds_the_query_parameter) {
  EXPECT_EQ(serve::parse_connections_limit("1"), 1u);
  EXPECT_EQ(serve::parse_connections_limit("100000"), 100000u);
  for (const char* bad : {"", "0", "100001", "999999", "-1", "1e3", " 5", "abc", "1234567"})
    EXPECT_FALSE(serve::parse_connections_limit(bad)) << bad;
}

TEST(ConnectionsQuery, limit_is_optional_single_and_bounded_and_other_parameters_are_ignored) {
  using Params = std::multimap<std::string, std::string>;
  EXPECT_EQ(serve::parse_connections_query(Params{})->limit, serve::kDefaultConnectionsLimit);
  EXPECT_EQ(serve::parse_connections_query(Params{{"limit", "7"}, {"sort", "rtt"}})->limit, 7u);
  EXPECT_EQ(serve::parse_connections_query(Params{{"sort", "rtt"}})->limit, serve::kDefaultConnectionsLimit);
  EXPECT_FALSE(serve::parse_connections_query(Params{{"limit", "0"}}));
  EXPECT_FALSE(serve::parse_connections_query(Params{{"limit", ""}}));
  EXPECT_FALSE(serve::parse_connections_query(Params{{"limit", "100001"}}));
  // Which of two values httplib would pick is an accident of its multimap: refuse both.
  EXPECT_FALSE(serve::parse_connections_query(Params{{"limit", "5"}, {"limit", "6"}}));
}

TEST(ProbeFlags, bad_values_are_usage_errors) {
  cli::ProbeFlags f;
  f.rtt_interval = "0ms";
  EXPECT_THROW(f.probe_options(), util::FatalError);
  f = {};
  f.ring_size_kib = 3000;
  EXPECT_THROW(f.probe_options(), util::FatalError);
  f = {};
  f.drain_interval = "1h";
  EXPECT_THROW(f.reader_options(), util::FatalError);
  f = {};
  f.retrans_interval = "1";
  EXPECT_THROW(f.probe_options(), util::FatalError);
  f = {};
  EXPECT_EQ(f.probe_options().ring_bytes, 4u << 20);
}

TEST(ProbeFlags, retrans_interval_takes_a_duration_or_zero) {
  cli::ProbeFlags f;
  EXPECT_EQ(f.probe_options().retrans_interval_ns, 1'000'000'000u);
  f.retrans_interval = "250ms";
  EXPECT_EQ(f.probe_options().retrans_interval_ns, 250'000'000u);
  f.retrans_interval = "0";
  EXPECT_EQ(f.probe_options().retrans_interval_ns, 0u);
  f.retrans_interval = "0s";
  EXPECT_EQ(f.probe_options().retrans_interval_ns, 0u);
}

// The shape main() uses: --config on the top-level app, the keys belong to the subcommand.
struct ConfiguredApp {
  CLI::App app;
  CLI::App* sub = app.add_subcommand("agent");
  ConfiguredApp() {
    app.config_formatter(std::make_shared<cli::JsonConfig>("agent"));
    app.set_config("--config");
    app.allow_config_extras(CLI::config_extras_mode::error);
    sub->fallthrough();
  }
};

TEST(JsonConfig, becomes_flag_values_and_the_command_line_wins) {
  ConfiguredApp c;
  std::string listen = "default";
  size_t flows = 0;
  std::vector<std::string> types;
  c.sub->add_option("--listen", listen);
  c.sub->add_option("--max-flows", flows);
  c.sub->add_option("--type", types);
  std::string path = ::testing::TempDir() + "/nw-config.json";
  std::ofstream(path) << R"({"listen": "0.0.0.0:1", "max-flows": 77, "type": ["rtt", "close"]})";
  c.app.parse(std::vector<std::string>{"[::1]:2", "--listen", path, "--config", "agent"});  // reversed argv
  EXPECT_EQ(listen, "[::1]:2");
  EXPECT_EQ(flows, 77u);
  EXPECT_EQ(types, (std::vector<std::string>{"rtt", "close"}));
}

TEST(JsonConfig, unknown_keys_and_bad_json_are_errors) {
  auto parse = [](const std::string& content) {
    ConfiguredApp c;
    std::string listen;
    c.sub->add_option("--listen", listen);
    std::string path = ::testing::TempDir() + "/nw-config-bad.json";
    std::ofstream(path) << content;
    c.app.parse(std::vector<std::string>{path, "--config", "agent"});
  };
  EXPECT_THROW(parse(R"({"lisen": "x"})"), CLI::ParseError);
  EXPECT_THROW(parse(R"({"listen": )"), CLI::ParseError);
  EXPECT_THROW(parse(R"([1, 2])"), CLI::ParseError);
  EXPECT_THROW(parse(R"({"listen": 8E0801000000})"), CLI::ParseError);  // number overflow, found by fuzzing
  EXPECT_NO_THROW(parse(R"({"listen": "127.0.0.1:1"})"));
}

}  // namespace
}  // namespace netwatch

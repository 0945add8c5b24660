// Pod labels through the whole agent: a process in a kubelet-shaped cgroup connects, and the
// agent's /metrics carry that pod's namespace, pod and container; the host's own connection
// carries none.
#include <gtest/gtest.h>

#include <thread>

#include "k8s/pod_resolver.h"
#include "tests/support/agent_process.h"
#include "tests/support/harness.h"
#include "tests/support/kubelet_pod.h"

namespace nwtest {
namespace {

TEST(AgentPodLabels, metrics_carry_the_pods_labels) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: makes cgroups and loads BPF";
  auto mount = netwatch::k8s::find_cgroup2_mount("/sys/fs/cgroup");
  ASSERT_TRUE(mount) << "no cgroup2 mount at or below /sys/fs/cgroup";
  KubeletPod pod(*mount, "shop", "web-7d9f8c6b5-x2x9q", "app");
  const uint16_t service = 62301;
  AgentProcess agent(62390, {"--publish-interval", "100ms", "--drain-interval", "20ms", "--cgroup-root",
                             "/sys/fs/cgroup", "--pod-log-dir", pod.pod_log_dir().string()});
  Fd listener = listen_on(AF_INET, service);
  ASSERT_EQ(pod.connect_from_pod(service), 0);
  { Fd host = connect_to(AF_INET, service); }

  std::map<std::string, std::string> in_pod = {{"direction", "outbound"}, {"port", std::to_string(service)},
                                               {"namespace", "shop"},      {"pod", "web-7d9f8c6b5-x2x9q"},
                                               {"container", "app"},       {"result", "ok"}};
  std::map<std::string, std::string> on_host = {{"direction", "outbound"}, {"port", std::to_string(service)},
                                                {"namespace", ""},         {"pod", ""},
                                                {"container", ""},         {"result", "ok"}};
  std::optional<double> pod_connects, host_connects;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto samples = agent.metrics();
    pod_connects = find_sample(samples, "netwatch_tcp_connects_total", in_pod);
    host_connects = find_sample(samples, "netwatch_tcp_connects_total", on_host);
    if (pod_connects && host_connects) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(pod_connects, 1.0) << agent.metrics_text();
  EXPECT_EQ(host_connects, 1.0);
  EXPECT_EQ(find_sample(agent.metrics(), "netwatch_unresolved_cgroups_total", {}), 0.0);
}

}  // namespace
}  // namespace nwtest

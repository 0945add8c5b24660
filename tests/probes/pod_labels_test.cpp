// Pod labels end to end, short of the agent: a real process in a real cgroup shaped like the
// kubelet's opens a real connection, the real probes report the socket's cgroup id, and the
// resolver turns that id into the pod's namespace, pod and container from a pod-log directory
// made like the kubelet's. Needs root (cgroup directories, BPF); fails without it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "transport/event_reader.h"
#include "kernel/kernel_features.h"
#include "k8s/pod_resolver.h"
#include "kernel/probe_set.h"
#include "tests/support/kubelet_pod.h"

namespace netwatch {
namespace {

namespace fs = std::filesystem;

// Records connect events by local port of the connecting socket's peer (the listener's port).
class ConnectRecorder : public event::EventSink {
 public:
  explicit ConnectRecorder(uint16_t port) : port_(port) {}
  void on_event(const event::Event& e) override {
    if (e.type == event::EventType::connect && e.dport == port_) connects.push_back(e);
  }
  std::vector<event::Event> connects;

 private:
  uint16_t port_;
};

int listen_loopback(uint16_t& port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 16) != 0) return -1;
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

bool connect_loopback(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

TEST(PodLabels, real_cgroup_and_real_probes_give_the_pods_labels) {
  ASSERT_EQ(geteuid(), 0u) << "needs root: makes cgroups and loads BPF";
  std::optional<std::string> mount = k8s::find_cgroup2_mount("/sys/fs/cgroup");
  ASSERT_TRUE(mount) << "no cgroup2 mount at or below /sys/fs/cgroup";

  nwtest::KubeletPod pod(*mount, "shop", "web-7d9f8c6b5-x2x9q", "app");
  const fs::path& container_cgroup = pod.container_cgroup();
  {
    uint16_t port = 0;
    int listener = listen_loopback(port);
    ASSERT_GE(listener, 0);
    auto probes = kernel::ProbeSet::start(kernel::ProbeOptions{});
    ConnectRecorder recorder(port);
    transport::EventReader reader(*probes, recorder);

    ASSERT_EQ(pod.connect_from_pod(port), 0);
    ASSERT_TRUE(connect_loopback(port));  // from this process: a host cgroup (or this test's own)
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (recorder.connects.size() < 2 && std::chrono::steady_clock::now() < deadline) reader.poll();
    close(listener);
    ASSERT_EQ(recorder.connects.size(), 2u);

    // The fact the resolver stands on: the socket's cgroup id is its directory's inode number.
    struct stat st {};
    ASSERT_EQ(stat(container_cgroup.c_str(), &st), 0);
    const event::Event& in_pod =
        recorder.connects[0].pid != static_cast<uint32_t>(getpid()) ? recorder.connects[0] : recorder.connects[1];
    const event::Event& on_host = &in_pod == &recorder.connects[0] ? recorder.connects[1] : recorder.connects[0];
    EXPECT_EQ(in_pod.cgroup_id, st.st_ino);

    k8s::PodResolverOptions options;
    options.cgroup2_dir = *mount;
    options.pod_log_dir = pod.pod_log_dir().string();
    k8s::PodResolver resolver(options);
    EXPECT_EQ(resolver.resolve(in_pod.cgroup_id), (k8s::PodLabels{"shop", "web-7d9f8c6b5-x2x9q", "app"}));
    std::ifstream self_cgroups("/proc/self/cgroup");
    std::string line, own_cgroup;
    while (std::getline(self_cgroups, line))
      if (line.starts_with("0::")) own_cgroup = line;        // the v2 line, also in the hybrid layout
    if (own_cgroup.find("kubepods") == std::string::npos) {  // when the test itself runs in no pod
      EXPECT_TRUE(resolver.resolve(on_host.cgroup_id).empty());
    }
    EXPECT_EQ(resolver.stats().unknown_cgroups, 0u);
  }
}

}  // namespace
}  // namespace netwatch

#include "tests/support/kubelet_pod.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <stdexcept>

namespace nwtest {

namespace fs = std::filesystem;

std::string random_hex(size_t n) {
  static std::mt19937_64 rng(std::random_device{}());
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += digits[rng() % 16];
  return s;
}

KubeletPod::KubeletPod(const std::string& cgroup2_mount, const std::string& namespace_name, const std::string& pod,
                       const std::string& container)
    : uid_(random_hex(8) + "-" + random_hex(4) + "-" + random_hex(4) + "-" + random_hex(4) + "-" + random_hex(12)),
      container_id_(random_hex(64)) {
  std::string uid_systemd = uid_;  // the systemd driver spells the UID with '_' in slice names
  for (char& c : uid_systemd)
    if (c == '-') c = '_';
  container_cgroup_ = fs::path(cgroup2_mount) / "kubepods.slice" / "kubepods-besteffort.slice" /
                      ("kubepods-besteffort-pod" + uid_systemd + ".slice") /
                      ("cri-containerd-" + container_id_ + ".scope");
  make_dir(container_cgroup_);

  char tmpl[] = "/tmp/nw-podlogs-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  logs_ = tmpl;
  const std::string pod_dir = namespace_name + "_" + pod + "_" + uid_;
  fs::create_directories(pod_log_dir() / pod_dir / container);
  fs::create_directories(pod_log_dir() / pod_dir / "istio-proxy");  // a second container: no shortcut
  fs::create_directories(container_log_dir());
  fs::create_symlink("/var/log/pods/" + pod_dir + "/" + container + "/0.log",
                     container_log_dir() / (pod + "_" + namespace_name + "_" + container + "-" + container_id_ + ".log"));
}

KubeletPod::~KubeletPod() {
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) rmdir(it->c_str());
  std::error_code ignored;
  fs::remove_all(logs_, ignored);
}

void KubeletPod::make_dir(const fs::path& path) {
  if (path.has_parent_path() && !fs::exists(path.parent_path())) make_dir(path.parent_path());
  if (mkdir(path.c_str(), 0755) == 0) made_.push_back(path);
  if (!fs::is_directory(path)) throw std::runtime_error("cannot make " + path.string());
}

int KubeletPod::connect_from_pod(uint16_t port) const {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open((container_cgroup_ / "cgroup.procs").c_str(), O_WRONLY);
    bool moved = fd >= 0 && write(fd, "0", 1) == 1;  // "0" moves the writer itself
    if (!moved) _exit(2);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    bool ok = s >= 0 && connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    _exit(ok ? 0 : 3);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

}  // namespace nwtest

// A pod as the kubelet lays it out on a node, made for real: a cgroup v2 directory shaped like
// the systemd driver's with containerd (kubepods.slice/.../cri-containerd-<id>.scope), a pod log
// directory (/var/log/pods/<ns>_<pod>_<uid>/<container>/) and the container log link. Everything
// made is removed on destruction, deepest first.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace nwtest {

class KubeletPod {
 public:
  // cgroup2_mount: where cgroup v2 is mounted (find_cgroup2_mount()). Throws on failure.
  KubeletPod(const std::string& cgroup2_mount, const std::string& namespace_name, const std::string& pod,
             const std::string& container);
  ~KubeletPod();
  KubeletPod(const KubeletPod&) = delete;
  KubeletPod& operator=(const KubeletPod&) = delete;

  const std::filesystem::path& container_cgroup() const { return container_cgroup_; }
  std::filesystem::path pod_log_dir() const { return logs_ / "pods"; }
  std::filesystem::path container_log_dir() const { return logs_ / "containers"; }
  const std::string& uid() const { return uid_; }
  const std::string& container_id() const { return container_id_; }

  // Forks a child that moves itself into the container's cgroup and connects to 127.0.0.1:port,
  // like a process inside the pod. Returns its exit status (0: connected).
  int connect_from_pod(uint16_t port) const;

 private:
  void make_dir(const std::filesystem::path& path);

  std::string uid_, container_id_;
  std::filesystem::path container_cgroup_, logs_;
  std::vector<std::filesystem::path> made_;  // cgroup directories, in creation order
};

std::string random_hex(size_t n);

}  // namespace nwtest

// Pod labels from cgroup paths and the kubelet's log directories: the path shapes of each runtime
// and cgroup driver, and the resolver on a directory tree made like a node's. Directory inode numbers
// play the cgroup ids: in a cgroup2 mount they are the same number (tests/kernel checks that part).
#include "k8s/pod_resolver.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace netwatch::k8s {
namespace {

namespace fs = std::filesystem;

const std::string kId = "3b1f6c0e9d2a4b5c8e7f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5";
const std::string kId2 = "9a8b7c6d5e4f30211203a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const std::string kUid = "0f2ec6a3-6bb5-4b0b-9f6a-2b7c1c2d3e4f";
const std::string kUidSystemd = "0f2ec6a3_6bb5_4b0b_9f6a_2b7c1c2d3e4f";
const std::string kStaticUid = "33d556edd3ae8ef21980288cef77ae8b";

// ---- cgroup path shapes -------------------------------------------------------------------------

struct PathCase {
  const char* name;
  std::string path;
  CgroupPodRef want;
};

class CgroupPathShapes : public ::testing::TestWithParam<PathCase> {};

TEST_P(CgroupPathShapes, parses_pod_uid_container_id_and_runtime) {
  const PathCase& c = GetParam();
  std::optional<CgroupPodRef> got = parse_pod_cgroup_path(c.path);
  ASSERT_TRUE(got) << c.path;
  EXPECT_EQ(got->pod_uid, c.want.pod_uid);
  EXPECT_EQ(got->container_id, c.want.container_id);
  EXPECT_EQ(runtime_name(got->runtime), runtime_name(c.want.runtime));
}

const std::string kSd = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + kUidSystemd + ".slice";
const std::string kSdBurstable =
    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidSystemd + ".slice";
const std::string kSdGuaranteed = "/kubepods.slice/kubepods-pod" + kUidSystemd + ".slice";

INSTANTIATE_TEST_SUITE_P(
    RuntimeByDriver, CgroupPathShapes,
    ::testing::Values(
        PathCase{"containerd_systemd_besteffort",
                 kSd + "/cri-containerd-" + kId + ".scope",
                 {kUid, kId, ContainerRuntime::containerd}},
        PathCase{"containerd_systemd_burstable",
                 kSdBurstable + "/cri-containerd-" + kId + ".scope",
                 {kUid, kId, ContainerRuntime::containerd}},
        PathCase{"containerd_systemd_guaranteed",
                 kSdGuaranteed + "/cri-containerd-" + kId + ".scope",
                 {kUid, kId, ContainerRuntime::containerd}},
        PathCase{"containerd_cgroupfs_burstable",
                 "/kubepods/burstable/pod" + kUid + "/" + kId,
                 {kUid, kId, ContainerRuntime::unknown}},
        PathCase{"containerd_cgroupfs_guaranteed",
                 "/kubepods/pod" + kUid + "/" + kId,
                 {kUid, kId, ContainerRuntime::unknown}},
        PathCase{"crio_systemd", kSdBurstable + "/crio-" + kId + ".scope", {kUid, kId, ContainerRuntime::crio}},
        PathCase{"crio_systemd_crun_subgroup",
                 kSd + "/crio-" + kId + ".scope/container",
                 {kUid, kId, ContainerRuntime::crio}},
        PathCase{
            "crio_cgroupfs", "/kubepods/besteffort/pod" + kUid + "/crio-" + kId, {kUid, kId, ContainerRuntime::crio}},
        PathCase{"crio_conmon_is_no_container",
                 kSd + "/crio-conmon-" + kId + ".scope",
                 {kUid, "", ContainerRuntime::unknown}},
        PathCase{"docker_systemd", kSdGuaranteed + "/docker-" + kId + ".scope", {kUid, kId, ContainerRuntime::docker}},
        PathCase{
            "docker_cgroupfs", "/kubepods/besteffort/pod" + kUid + "/" + kId, {kUid, kId, ContainerRuntime::unknown}},
        PathCase{"kind_nested_kubelet_root",
                 "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
                 "kubelet-kubepods-besteffort-pod" +
                     kUidSystemd + ".slice/cri-containerd-" + kId + ".scope",
                 {kUid, kId, ContainerRuntime::containerd}},
        PathCase{"pod_level_cgroup", kSd, {kUid, "", ContainerRuntime::unknown}},
        PathCase{"static_pod_hash_uid",
                 "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kStaticUid +
                     ".slice/cri-containerd-" + kId + ".scope",
                 {kStaticUid, kId, ContainerRuntime::containerd}},
        PathCase{"short_id_is_no_container",
                 kSd + "/cri-containerd-" + kId.substr(1) + ".scope",
                 {kUid, "", ContainerRuntime::unknown}},
        PathCase{"trailing_slash",
                 "/kubepods/burstable/pod" + kUid + "/" + kId + "/",
                 {kUid, kId, ContainerRuntime::unknown}}),
    [](const ::testing::TestParamInfo<PathCase>& info) { return std::string(info.param.name); });

TEST(CgroupPath, systemd_underscores_and_cgroupfs_dashes_give_the_same_uid) {
  auto systemd = parse_pod_cgroup_path(kSd);
  auto cgroupfs = parse_pod_cgroup_path("/kubepods/besteffort/pod" + kUid);
  ASSERT_TRUE(systemd && cgroupfs);
  EXPECT_EQ(systemd->pod_uid, kUid);
  EXPECT_EQ(cgroupfs->pod_uid, kUid);
}

TEST(CgroupPath, host_paths_are_no_pod) {
  for (const std::string& path :
       {std::string("/"), std::string(""), std::string("/system.slice/containerd.service"),
        std::string("/user.slice/user-0.slice/session-3.scope"), std::string("/kubepods.slice"),
        std::string("/kubepods.slice/kubepods-besteffort.slice"), std::string("/kubepods/burstable"),
        std::string("/docker/" + kId),            // plain docker, no kubelet
        std::string("/system.slice/pod" + kUid),  // pod-shaped but outside the kubelet's root
        std::string("/system.slice/docker-" + kId + ".scope")})
    EXPECT_FALSE(parse_pod_cgroup_path(path)) << path;
}

TEST(CgroupPath, rejects_malformed_uids) {
  EXPECT_FALSE(parse_pod_cgroup_path("/kubepods/burstable/pod0F2EC6A3-6BB5-4B0B-9F6A-2B7C1C2D3E4F"));
  EXPECT_FALSE(parse_pod_cgroup_path("/kubepods/burstable/pod0f2ec6a3-6bb5-4b0b-9f6a-2b7c1c2d3e4"));
  EXPECT_FALSE(parse_pod_cgroup_path("/kubepods/burstable/pod0f2ec6a3.6bb5.4b0b.9f6a.2b7c1c2d3e4f"));
  EXPECT_FALSE(parse_pod_cgroup_path("/kubepods/burstable/podzz2ec6a3-6bb5-4b0b-9f6a-2b7c1c2d3e4f"));
}

// ---- log directory names ------------------------------------------------------------------------

TEST(PodLogDirName, splits_namespace_pod_and_uid) {
  auto name = parse_pod_log_dir_name("shop_web-7d9f8c6b5-x2x9q_" + kUid);
  ASSERT_TRUE(name);
  EXPECT_EQ(name->namespace_, "shop");
  EXPECT_EQ(name->pod, "web-7d9f8c6b5-x2x9q");
  EXPECT_EQ(name->uid, kUid);
  auto static_pod = parse_pod_log_dir_name("kube-system_kube-apiserver-cp_" + kStaticUid);
  ASSERT_TRUE(static_pod);
  EXPECT_EQ(static_pod->uid, kStaticUid);
}

TEST(PodLogDirName, rejects_other_shapes) {
  EXPECT_FALSE(parse_pod_log_dir_name("shop_web"));
  EXPECT_FALSE(parse_pod_log_dir_name("shop_web_x_" + kUid));
  EXPECT_FALSE(parse_pod_log_dir_name("shop_web_not-a-uid"));
  EXPECT_FALSE(parse_pod_log_dir_name("_web_" + kUid));
}

TEST(ContainerLogLinkName, splits_pod_namespace_container_and_id) {
  auto link = parse_container_log_link_name("web-7d9f8c6b5-x2x9q_shop_istio-proxy-" + kId + ".log");
  ASSERT_TRUE(link);
  EXPECT_EQ(link->pod, "web-7d9f8c6b5-x2x9q");
  EXPECT_EQ(link->namespace_, "shop");
  EXPECT_EQ(link->container, "istio-proxy");  // dashes in the container name stay
  EXPECT_EQ(link->container_id, kId);
  EXPECT_FALSE(link->truncated);
}

TEST(ContainerLogLinkName, accepts_an_id_cut_at_255_characters_only) {
  // The kubelet cuts "<pod>_<ns>_<container>-<id>" to 251 characters before adding ".log".
  std::string pod(200, 'p');
  std::string stem = pod + "_shop_app-" + kId;
  std::string cut = stem.substr(0, 251) + ".log";
  ASSERT_EQ(cut.size(), 255u);
  auto link = parse_container_log_link_name(cut);
  ASSERT_TRUE(link);
  EXPECT_TRUE(link->truncated);
  EXPECT_EQ(link->container, "app");
  EXPECT_TRUE(kId.starts_with(link->container_id));
  EXPECT_LT(link->container_id.size(), 64u);

  // A short ID in a name that was not cut is malformed, not truncated.
  EXPECT_FALSE(parse_container_log_link_name("web_shop_app-" + kId.substr(0, 20) + ".log"));
  // Too little of the ID left to tell containers apart.
  std::string tiny = (std::string(240, 'p') + "_shop_app-" + kId).substr(0, 251) + ".log";
  EXPECT_FALSE(parse_container_log_link_name(tiny));
  EXPECT_FALSE(parse_container_log_link_name("web_shop_app-" + kId + ".txt"));
  EXPECT_FALSE(parse_container_log_link_name("web_shop_" + kId + ".log"));
}

// ---- locating the cgroup2 mount -----------------------------------------------------------------

TEST(Cgroup2Mount, unified_layout) {
  const char* mounts = "proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
  EXPECT_EQ(locate_cgroup2_mount(mounts, "/sys/fs/cgroup"), "/sys/fs/cgroup");
  EXPECT_EQ(locate_cgroup2_mount(mounts, "/sys/fs/cgroup/"), "/sys/fs/cgroup");
}

TEST(Cgroup2Mount, hybrid_layout_finds_unified_below_the_root) {
  const char* mounts =
      "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
      "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
      "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
      "cgroup /sys/fs/cgroup/systemd cgroup rw,name=systemd 0 0\n";
  EXPECT_EQ(locate_cgroup2_mount(mounts, "/sys/fs/cgroup"), "/sys/fs/cgroup/unified");
}

TEST(Cgroup2Mount, host_mount_in_a_container_and_escapes) {
  const char* mounts =
      "cgroup2 /sys/fs/cgroup cgroup2 ro 0 0\n"
      "cgroup2 /host/sys/fs/cgroup cgroup2 ro 0 0\n"
      "cgroup2 /host\\040dir/cg cgroup2 ro 0 0\n";
  EXPECT_EQ(locate_cgroup2_mount(mounts, "/host/sys/fs/cgroup"), "/host/sys/fs/cgroup");
  EXPECT_EQ(locate_cgroup2_mount(mounts, "/host dir"), "/host dir/cg");
  EXPECT_FALSE(locate_cgroup2_mount(mounts, "/elsewhere"));
  EXPECT_FALSE(locate_cgroup2_mount("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n", "/sys/fs/cgroup"));
}

// ---- the resolver on a node-shaped directory tree -----------------------------------------------

class FakeNode : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "nw-pods-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "cgroup");
    fs::create_directories(root_ / "log/pods");
    fs::create_directories(root_ / "log/containers");
  }
  void TearDown() override { fs::remove_all(root_); }

  PodResolverOptions options() {
    PodResolverOptions o;
    o.cgroup2_dir = (root_ / "cgroup").string();
    o.pod_log_dir = (root_ / "log/pods").string();
    o.rescan_interval_ns = 1000;
    o.clock = [this] { return now_; };
    return o;
  }

  // Makes the cgroup directory; its inode number stands for the cgroup id.
  uint64_t cgroup(const std::string& path) {
    fs::path dir = root_ / "cgroup" / path.substr(1);
    fs::create_directories(dir);
    struct stat st {};
    EXPECT_EQ(stat(dir.c_str(), &st), 0);
    return st.st_ino;
  }

  void pod(const std::string& ns, const std::string& name, const std::string& uid,
           const std::vector<std::string>& containers) {
    fs::path dir = root_ / "log/pods" / (ns + "_" + name + "_" + uid);
    fs::create_directories(dir);
    for (const std::string& c : containers) {
      fs::create_directories(dir / c);
      std::ofstream(dir / c / "0.log") << "log\n";
    }
  }

  // The kubelet's /var/log/containers link; its target is a host path that need not exist here.
  void link(const std::string& link_name, const std::string& target) {
    fs::create_symlink(target, root_ / "log/containers" / link_name);
  }
  void link(const std::string& ns, const std::string& name, const std::string& uid, const std::string& container,
            const std::string& id) {
    link(name + "_" + ns + "_" + container + "-" + id + ".log",
         "/var/log/pods/" + ns + "_" + name + "_" + uid + "/" + container + "/0.log");
  }

  fs::path root_;
  uint64_t now_ = 1'000'000;
};

TEST_F(FakeNode, resolves_each_runtime_and_driver) {
  const std::vector<std::string> paths = {
      kSd + "/cri-containerd-" + kId + ".scope",          "/kubepods/burstable/pod" + kUid + "/" + kId,
      kSdBurstable + "/crio-" + kId + ".scope/container", "/kubepods/besteffort/pod" + kUid + "/crio-" + kId,
      kSdGuaranteed + "/docker-" + kId + ".scope",        "/kubepods/pod" + kUid + "/" + kId,
  };
  pod("shop", "web-0", kUid, {"app", "sidecar"});
  link("shop", "web-0", kUid, "app", kId);
  for (const std::string& path : paths) {
    PodResolver resolver(options());
    uint64_t id = cgroup(path);
    EXPECT_EQ(resolver.resolve(id), (PodLabels{"shop", "web-0", "app"})) << path;
  }
}

TEST_F(FakeNode, host_cgroups_get_empty_labels_and_are_cached) {
  uint64_t host = cgroup("/system.slice/sshd.service");
  uint64_t root_id = cgroup("/");
  PodResolver resolver(options());
  EXPECT_TRUE(resolver.resolve(host).empty());
  EXPECT_TRUE(resolver.resolve(root_id).empty());
  EXPECT_TRUE(resolver.resolve(host).empty());
  EXPECT_EQ(resolver.stats().cache_misses, 2u);
  EXPECT_EQ(resolver.stats().cache_hits, 1u);
  EXPECT_EQ(resolver.stats().cgroup_walks, 1u);
  EXPECT_EQ(resolver.stats().unknown_cgroups, 0u);
}

TEST_F(FakeNode, zero_id_is_unknown_and_touches_nothing) {
  PodResolver resolver(options());
  EXPECT_TRUE(resolver.resolve(0).empty());
  EXPECT_EQ(resolver.stats().cache_misses, 0u);
  EXPECT_EQ(resolver.stats().cgroup_walks, 0u);
}

TEST_F(FakeNode, pod_level_cgroup_has_an_empty_container) {
  uint64_t id = cgroup(kSd);
  pod("shop", "web-0", kUid, {"app", "sidecar"});
  PodResolver resolver(options());
  EXPECT_EQ(resolver.resolve(id), (PodLabels{"shop", "web-0", ""}));
  EXPECT_EQ(resolver.stats().unnamed_containers, 0u);
}

TEST_F(FakeNode, new_cgroup_is_found_by_a_walk_after_the_interval) {
  uint64_t early = cgroup("/system.slice/a.service");
  PodResolver resolver(options());
  EXPECT_TRUE(resolver.resolve(early).empty());  // first walk
  pod("shop", "web-0", kUid, {"app"});
  link("shop", "web-0", kUid, "app", kId);
  uint64_t id = cgroup(kSd + "/cri-containerd-" + kId + ".scope");

  EXPECT_TRUE(resolver.resolve(id).empty());  // not in the last walk, and too early for another
  EXPECT_EQ(resolver.stats().unknown_cgroups, 1u);
  EXPECT_EQ(resolver.stats().cgroup_walks, 1u);
  EXPECT_TRUE(resolver.resolve(id).empty());  // the incomplete answer is cached until the interval
  EXPECT_EQ(resolver.stats().cgroup_walks, 1u);

  now_ += 1000;
  EXPECT_EQ(resolver.resolve(id), (PodLabels{"shop", "web-0", "app"}));
  EXPECT_EQ(resolver.stats().cgroup_walks, 2u);
}

TEST_F(FakeNode, walks_are_rate_limited_under_a_burst_of_unknown_ids) {
  PodResolver resolver(options());
  for (uint64_t id = 1'000'000'000; id < 1'000'000'100; ++id) EXPECT_TRUE(resolver.resolve(id).empty());
  EXPECT_EQ(resolver.stats().cgroup_walks, 1u);
  EXPECT_EQ(resolver.stats().unknown_cgroups, 100u);
}

TEST_F(FakeNode, pod_without_log_directory_is_retried) {
  uint64_t id = cgroup(kSd + "/cri-containerd-" + kId + ".scope");
  PodResolver resolver(options());
  EXPECT_TRUE(resolver.resolve(id).empty());
  EXPECT_EQ(resolver.stats().unnamed_pods, 1u);
  pod("shop", "web-0", kUid, {"app"});
  now_ += 1000;
  EXPECT_EQ(resolver.resolve(id), (PodLabels{"shop", "web-0", "app"}));
  EXPECT_EQ(resolver.stats().pod_dir_scans, 2u);
}

TEST_F(FakeNode, container_name_stays_empty_rather_than_guessed) {
  uint64_t id = cgroup(kSd + "/cri-containerd-" + kId + ".scope");
  pod("shop", "web-0", kUid, {"app", "sidecar"});
  link("shop", "web-0", kUid, "sidecar", kId2);  // another container's link
  PodResolver resolver(options());
  EXPECT_EQ(resolver.resolve(id), (PodLabels{"shop", "web-0", ""}));
  EXPECT_EQ(resolver.stats().unnamed_containers, 1u);

  link("shop", "web-0", kUid, "app", kId);  // the kubelet gets to it
  now_ += 1000;
  EXPECT_EQ(resolver.resolve(id), (PodLabels{"shop", "web-0", "app"}));
}

TEST_F(FakeNode, link_of_another_pod_with_the_same_id_is_not_trusted) {
  uint64_t id = cgroup(kSd + "/cri-containerd-" + kId + ".scope");
  pod("shop", "web-0", kUid, {"app", "sidecar"});
  link("shop", "web-1", "11111111-2222-3333-4444-555555555555", "app", kId);
  PodResolver resolver(options());
  EXPECT_EQ(resolver.resolve(id).container, "");
}

TEST_F(FakeNode, single_container_directory_names_the_container) {
  uint64_t id = cgroup("/kubepods/besteffort/pod" + kUid + "/crio-" + kId);
  pod("jobs", "backup-28", kUid, {"backup"});
  PodResolver resolver(options());
  EXPECT_EQ(resolver.resolve(id), (PodLabels{"jobs", "backup-28", "backup"}));
}

TEST_F(FakeNode, dockershim_json_log_link_names_the_container) {
  uint64_t id = cgroup(kSd + "/docker-" + kId + ".scope");
  pod("shop", "web-0", kUid, {"sidecar"});
  fs::path dir = root_ / "log/pods" / ("shop_web-0_" + kUid) / "app";
  fs::create_directories(dir);
  fs::create_symlink("/var/lib/docker/containers/" + kId + "/" + kId + "-json.log", dir / "0.log");
  PodResolver resolver(options());
  EXPECT_EQ(resolver.resolve(id), (PodLabels{"shop", "web-0", "app"}));
}

TEST_F(FakeNode, truncated_link_matches_by_id_prefix_and_pod_uid) {
  std::string name(200, 'w');
  uint64_t id = cgroup(kSd + "/cri-containerd-" + kId + ".scope");
  pod("shop", name, kUid, {"app", "sidecar"});
  std::string stem = (name + "_shop_app-" + kId).substr(0, 251);
  link(stem + ".log", "/var/log/pods/shop_" + name + "_" + kUid + "/app/0.log");
  PodResolver resolver(options());
  EXPECT_EQ(resolver.resolve(id), (PodLabels{"shop", name, "app"}));
}

TEST_F(FakeNode, truncated_link_of_another_pod_uid_is_ignored) {
  std::string name(200, 'w');
  uint64_t id = cgroup(kSd + "/cri-containerd-" + kId + ".scope");
  pod("shop", name, kUid, {"app", "sidecar"});
  std::string stem = (name + "_shop_app-" + kId).substr(0, 251);
  link(stem + ".log", "/var/log/pods/shop_" + name + "_11111111-2222-3333-4444-555555555555/app/0.log");
  PodResolver resolver(options());
  EXPECT_EQ(resolver.resolve(id).container, "");
}

TEST_F(FakeNode, cache_is_bounded_and_evicts_the_least_recently_used) {
  PodResolverOptions o = options();
  o.cache_capacity = 2;
  uint64_t a = cgroup("/a"), b = cgroup("/b"), c = cgroup("/c");
  PodResolver resolver(o);
  resolver.resolve(a);
  resolver.resolve(b);
  resolver.resolve(a);  // a is now the most recent
  resolver.resolve(c);  // evicts b
  EXPECT_EQ(resolver.stats().cache_entries, 2u);
  EXPECT_EQ(resolver.stats().cache_evictions, 1u);
  EXPECT_EQ(resolver.stats().cache_hits, 1u);
  resolver.resolve(a);
  EXPECT_EQ(resolver.stats().cache_hits, 2u);
  resolver.resolve(b);
  EXPECT_EQ(resolver.stats().cache_misses, 4u);
  EXPECT_EQ(resolver.stats().cache_evictions, 2u);
  EXPECT_EQ(resolver.stats().cache_entries, 2u);
}

TEST_F(FakeNode, walk_stops_at_max_cgroups) {
  PodResolverOptions o = options();
  o.max_cgroups = 4;  // the root and three more
  for (int i = 0; i < 10; ++i) cgroup("/s" + std::to_string(i));
  PodResolver resolver(o);
  resolver.resolve(12345);
  EXPECT_EQ(resolver.stats().cgroups_indexed, 4u);
  EXPECT_EQ(resolver.stats().cgroup_walks_truncated, 1u);
}

TEST_F(FakeNode, pod_and_container_indexes_are_bounded) {
  PodResolverOptions o = options();
  o.max_pods = 2;
  o.max_containers = 1;
  std::vector<uint64_t> ids;
  for (int i = 0; i < 5; ++i) {
    std::string uid = "0000000" + std::to_string(i) + "-6bb5-4b0b-9f6a-2b7c1c2d3e4f";
    std::string id = kId.substr(0, 63) + std::to_string(i);
    pod("shop", "web-" + std::to_string(i), uid, {"app", "sidecar"});
    link("shop", "web-" + std::to_string(i), uid, "app", id);
    ids.push_back(cgroup("/kubepods/burstable/pod" + uid + "/" + id));
  }
  PodResolver resolver(o);
  int named_pods = 0, named_containers = 0;
  for (uint64_t id : ids) {
    PodLabels labels = resolver.resolve(id);
    named_pods += !labels.pod.empty();
    named_containers += !labels.container.empty();
  }
  EXPECT_EQ(named_pods, 2);  // the scan kept two pods and one link, whichever readdir gave first
  EXPECT_LE(named_containers, 1);
  EXPECT_EQ(resolver.stats().unnamed_pods, 3u);
  EXPECT_EQ(resolver.stats().pod_dir_scans, 1u);
}

TEST(PodResolverOptions, container_log_dir_defaults_to_the_sibling_of_the_pod_log_dir) {
  PodResolverOptions o;
  o.pod_log_dir = "/host/var/log/pods/";
  PodResolver resolver(o);
  EXPECT_EQ(resolver.options().pod_log_dir, "/host/var/log/pods");
  EXPECT_EQ(resolver.options().container_log_dir, "/host/var/log/containers");
}

}  // namespace
}  // namespace netwatch::k8s

// The agent's directory on bpffs (default /sys/fs/bpf/netwatch). What is pinned there outlives
// the agent process, so that a restart or an upgrade loses nothing:
//   maps/<name>   the object's maps: the ring buffer keeps filling while no agent reads it,
//                 per-socket state and the kernel's counters carry on;
//   links/<prog>  the attached programs: they keep running between two agents;
//   meta          which build and configuration pinned the above (PinMeta);
//   checkpoint    the agent's own counters, written at a clean stop for the next agent.
// One agent per directory: the directory is locked (flock) for the agent's lifetime.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace netwatch::kernel {

// Identifies the pinned programs and maps: a new agent adopts them only when its own object
// and configuration hash to the same fingerprint.
struct PinMeta {
  uint64_t fingerprint = 0;
  uint32_t variant = 0;    // AttachVariant
  uint32_t transport = 0;  // Transport
};

class PinDir {
 public:
  static constexpr const char* kDefault = "/sys/fs/bpf/netwatch";

  // Mounts bpffs at /sys/fs/bpf if nothing is mounted there, creates the directory and takes
  // its lock. Throws FatalError with what to do (another agent holds it; bpffs unavailable).
  explicit PinDir(std::string path);
  ~PinDir();
  PinDir(const PinDir&) = delete;
  PinDir& operator=(const PinDir&) = delete;

  const std::string& path() const { return path_; }
  std::string map_path(const std::string& name) const { return path_ + "/maps/" + name; }
  std::string link_path(const std::string& prog) const { return path_ + "/links/" + prog; }
  std::vector<std::string> pinned_links() const;  // program names under links/

  // Nullopt when absent or unreadable (then whatever is pinned is from an unknown build).
  std::optional<PinMeta> read_meta() const;
  // Written last, once every map and link is pinned: a start that failed halfway leaves no meta.
  void write_meta(const PinMeta& meta);
  // Unpins links (their programs detach), maps and meta; keeps the checkpoint.
  void clear_probes();
  // Removes everything and the directory itself (`netwatch cleanup`).
  void remove_all();

  // The checkpoint: the agent's counters at its last clean stop. The map that holds it is
  // created at start (creating maps needs capabilities the running agent has dropped) and
  // takes kernel memory only while a checkpoint is stored. take_checkpoint() returns and
  // empties it; store_checkpoint() fails (returns false) beyond kMaxCheckpointBytes.
  std::optional<std::vector<uint8_t>> take_checkpoint();
  bool store_checkpoint(const std::vector<uint8_t>& bytes);
  static constexpr uint32_t kCheckpointChunkBytes = 64 * 1024;
  static constexpr uint32_t kCheckpointChunks = 4096;  // 256 MiB: far above 1M connections

 private:
  std::string path_;
  int lock_fd_ = -1;
  int checkpoint_fd_ = -1;
};

}  // namespace netwatch::kernel

#include "kernel/pin_dir.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernel/kernel_features.h"
#include "util/log.h"

namespace netwatch::kernel {
namespace {

constexpr char kMetaMagic[8] = {'n', 'e', 't', 'w', 'a', 't', 'c', 'h'};
constexpr uint64_t kCheckpointMagic = 0x31707463776e;  // "nwctp1"

struct MetaRecord {
  char magic[8];
  PinMeta meta;
};

struct CheckpointHeader {
  uint64_t magic;
  uint64_t length;
};

std::string errstr() {
  return std::strerror(errno);
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    closedir(d);
  }
  return names;
}

bool make_dir(const std::string& path) {
  return mkdir(path.c_str(), 0700) == 0 || errno == EEXIST;
}

// The checkpoint map: chunk index -> 64 KiB. A hash map without preallocation, so an empty one
// costs next to nothing; chunk 0 starts with a CheckpointHeader.
int open_checkpoint_map(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd >= 0) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == BPF_MAP_TYPE_HASH && info.key_size == 4 &&
        info.value_size == PinDir::kCheckpointChunkBytes && info.max_entries == PinDir::kCheckpointChunks)
      return fd;
    close(fd);
    unlink(path.c_str());  // another layout: not ours to read
  }
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
  fd = bpf_map_create(BPF_MAP_TYPE_HASH, "nw_checkpoint", 4, PinDir::kCheckpointChunkBytes, PinDir::kCheckpointChunks,
                      &opts);
  if (fd < 0) throw util::FatalError("creating the checkpoint map failed: " + errstr());
  if (bpf_obj_pin(fd, path.c_str()) != 0) {
    int err = errno;
    close(fd);
    throw util::FatalError("pinning " + path + " failed: " + std::strerror(err));
  }
  return fd;
}

}  // namespace

PinDir::PinDir(std::string path) : path_(std::move(path)) {
  if (path_.empty() || path_[0] != '/')
    throw util::FatalError("--pin-dir '" + path_ + "' is not an absolute path", util::kExitUsage);
  while (path_.size() > 1 && path_.back() == '/') path_.pop_back();
  if (path_.rfind("/sys/fs/bpf/", 0) == 0)
    if (auto err = ensure_bpffs()) throw util::FatalError(*err, util::kExitUsage);
  if (!on_bpffs(path_))
    throw util::FatalError(
        "--pin-dir " + path_ +
            " is not on a bpffs mount; use a directory under /sys/fs/bpf, or --pin-dir '' to pin nothing",
        util::kExitUsage);
  if (!make_dir(path_) || !make_dir(path_ + "/maps") || !make_dir(path_ + "/links"))
    throw util::FatalError("creating " + path_ + " failed: " + errstr() + "; is bpffs writable here?",
                           util::kExitUsage);
  lock_fd_ = open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock_fd_ < 0) throw util::FatalError("opening " + path_ + " failed: " + errstr());
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    close(lock_fd_);
    throw util::FatalError("another netwatch agent is using " + path_ + "; stop it, or give this one its own --pin-dir",
                           util::kExitUsage);
  }
  try {
    checkpoint_fd_ = open_checkpoint_map(path_ + "/checkpoint");
  } catch (...) {
    close(lock_fd_);
    throw;
  }
}

PinDir::~PinDir() {
  if (checkpoint_fd_ >= 0) close(checkpoint_fd_);
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the lock
}

std::vector<std::string> PinDir::pinned_links() const {
  return entries(path_ + "/links");
}

std::optional<PinMeta> PinDir::read_meta() const {
  int fd = bpf_obj_get((path_ + "/meta").c_str());
  if (fd < 0) return std::nullopt;
  MetaRecord record{};
  uint32_t key = 0;
  bool ok = bpf_map_lookup_elem(fd, &key, &record) == 0 && std::memcmp(record.magic, kMetaMagic, 8) == 0;
  close(fd);
  return ok ? std::optional(record.meta) : std::nullopt;
}

void PinDir::write_meta(const PinMeta& meta) {
  std::string path = path_ + "/meta";
  unlink(path.c_str());
  int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "nw_meta", 4, sizeof(MetaRecord), 1, nullptr);
  if (fd < 0) throw util::FatalError("creating the pin meta map failed: " + errstr());
  MetaRecord record{};
  std::memcpy(record.magic, kMetaMagic, 8);
  record.meta = meta;
  uint32_t key = 0;
  bool ok = bpf_map_update_elem(fd, &key, &record, BPF_ANY) == 0 && bpf_obj_pin(fd, path.c_str()) == 0;
  int err = errno;
  close(fd);
  if (!ok) throw util::FatalError("writing " + path + " failed: " + std::strerror(err));
}

void PinDir::clear_probes() {
  unlink((path_ + "/meta").c_str());  // first: what remains is no longer a complete set
  for (const std::string& name : entries(path_ + "/links")) unlink((path_ + "/links/" + name).c_str());
  for (const std::string& name : entries(path_ + "/maps")) unlink((path_ + "/maps/" + name).c_str());
}

void PinDir::remove_all() {
  clear_probes();
  if (checkpoint_fd_ >= 0) close(checkpoint_fd_);
  checkpoint_fd_ = -1;
  unlink((path_ + "/checkpoint").c_str());
  rmdir((path_ + "/links").c_str());
  rmdir((path_ + "/maps").c_str());
  for (const std::string& name : entries(path_)) util::log_warn("left in " + path_ + ": " + name + " (not netwatch's)");
  rmdir(path_.c_str());
}

std::optional<std::vector<uint8_t>> PinDir::take_checkpoint() {
  std::vector<uint8_t> chunk(kCheckpointChunkBytes);
  uint32_t key = 0;
  if (bpf_map_lookup_elem(checkpoint_fd_, &key, chunk.data()) != 0) return std::nullopt;
  CheckpointHeader header;
  std::memcpy(&header, chunk.data(), sizeof(header));
  std::optional<std::vector<uint8_t>> bytes;
  uint64_t capacity = uint64_t(kCheckpointChunks) * kCheckpointChunkBytes - sizeof(header);
  if (header.magic == kCheckpointMagic && header.length <= capacity) {
    bytes.emplace();
    bytes->reserve(header.length);
    uint64_t from_chunk = std::min<uint64_t>(header.length, kCheckpointChunkBytes - sizeof(header));
    bytes->insert(bytes->end(), chunk.begin() + sizeof(header), chunk.begin() + sizeof(header) + from_chunk);
    for (key = 1; bytes && bytes->size() < header.length; ++key) {
      if (bpf_map_lookup_elem(checkpoint_fd_, &key, chunk.data()) != 0) {
        bytes.reset();  // a chunk is missing: a torn checkpoint is no checkpoint
        break;
      }
      uint64_t n = std::min<uint64_t>(header.length - bytes->size(), kCheckpointChunkBytes);
      bytes->insert(bytes->end(), chunk.begin(), chunk.begin() + n);
    }
  }
  for (key = 0; key < kCheckpointChunks; ++key)
    if (bpf_map_delete_elem(checkpoint_fd_, &key) != 0 && key > 0) break;
  return bytes;
}

bool PinDir::store_checkpoint(const std::vector<uint8_t>& bytes) {
  CheckpointHeader header{kCheckpointMagic, bytes.size()};
  if (bytes.size() > uint64_t(kCheckpointChunks) * kCheckpointChunkBytes - sizeof(header)) return false;
  std::vector<uint8_t> chunk(kCheckpointChunkBytes);
  // Chunk 0 (the header) goes last: a stop interrupted halfway leaves no readable checkpoint.
  size_t first = std::min<size_t>(bytes.size(), kCheckpointChunkBytes - sizeof(header));
  uint32_t key = 1;
  for (size_t at = first; at < bytes.size(); at += kCheckpointChunkBytes, ++key) {
    size_t n = std::min<size_t>(bytes.size() - at, kCheckpointChunkBytes);
    std::memcpy(chunk.data(), bytes.data() + at, n);
    if (bpf_map_update_elem(checkpoint_fd_, &key, chunk.data(), BPF_ANY) != 0) return false;
  }
  std::fill(chunk.begin(), chunk.end(), 0);
  std::memcpy(chunk.data(), &header, sizeof(header));
  std::memcpy(chunk.data() + sizeof(header), bytes.data(), first);
  key = 0;
  return bpf_map_update_elem(checkpoint_fd_, &key, chunk.data(), BPF_ANY) == 0;
}

}  // namespace netwatch::kernel

#include "transport/mapped_ring.h"

#include <bpf/bpf.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "util/log.h"

namespace netwatch::transport {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw util::FatalError("mapping the ring buffer failed: " + what + ": " + std::strerror(errno));
}

}  // namespace

MappedRing::MappedRing(int map_fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(map_fd, &info, &len) != 0) fail("reading the map's info");
  if (info.type != BPF_MAP_TYPE_RINGBUF || info.max_entries == 0 || (info.max_entries & (info.max_entries - 1))) {
    errno = EINVAL;
    fail("not a ring buffer of a power-of-two size");
  }
  page_size_ = static_cast<size_t>(getpagesize());
  // The kernel lays the map out as the consumer page, the producer page, then the data
  // (ringbuf_map_mmap_kern): only the consumer page may be mapped writable.
  consumer_page_ = mmap(nullptr, page_size_, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
  if (consumer_page_ == MAP_FAILED) {
    consumer_page_ = nullptr;
    fail("the consumer page");
  }
  // The destructor does not run when the constructor throws: undo what is done so far.
  auto fail_undoing = [this](const std::string& what) {
    int saved = errno;
    unmap();
    errno = saved;
    fail(what);
  };
  // The data is mapped twice in a row past the producer page, so a record that wraps is read
  // as one piece (bpf_ringbuf_area_alloc). size_t: 2 * max_entries overflows 32 bits at 2 GiB.
  producer_bytes_ = page_size_ + 2 * static_cast<size_t>(info.max_entries);
  producer_area_ = mmap(nullptr, producer_bytes_, PROT_READ, MAP_SHARED, map_fd, static_cast<off_t>(page_size_));
  if (producer_area_ == MAP_FAILED) {
    producer_area_ = nullptr;
    fail_undoing("the producer page and data");
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (epoll_fd_ < 0 || epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, map_fd, &ev) != 0) fail_undoing("waiting on the map");
  layout_.consumer_pos = static_cast<unsigned long*>(consumer_page_);
  layout_.producer_pos = static_cast<const unsigned long*>(producer_area_);
  layout_.data = static_cast<const uint8_t*>(producer_area_) + page_size_;
  layout_.mask = info.max_entries - 1;
}

MappedRing::~MappedRing() { unmap(); }

void MappedRing::unmap() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (producer_area_) munmap(producer_area_, producer_bytes_);
  if (consumer_page_) munmap(consumer_page_, page_size_);
  epoll_fd_ = -1;
  producer_area_ = consumer_page_ = nullptr;
}

int MappedRing::wait(int timeout_ms) {
  epoll_event ev;
  if (epoll_wait(epoll_fd_, &ev, 1, timeout_ms) < 0) return -errno;
  return 0;
}

}  // namespace netwatch::transport

#include "transport/memory_ring.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "util/log.h"

namespace netwatch::transport {

MemoryRing::MemoryRing(size_t data_bytes) {
  page_ = static_cast<size_t>(getpagesize());
  if (data_bytes == 0 || (data_bytes & (data_bytes - 1)) || data_bytes % page_)
    throw util::FatalError("a ring's data must be a power of two and whole pages");
  // One file holds the two position pages and the data; the data is mapped a second time right
  // after itself, as the kernel maps a ring buffer's pages (bpf_ringbuf_area_alloc).
  int fd = memfd_create("netwatch-memory-ring", MFD_CLOEXEC);
  if (fd < 0) throw util::FatalError(std::string("memfd_create: ") + std::strerror(errno));
  bytes_ = 2 * page_ + 2 * data_bytes;
  void* base = MAP_FAILED;
  if (ftruncate(fd, static_cast<off_t>(2 * page_ + data_bytes)) == 0)
    base = mmap(nullptr, bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);  // the address range
  bool mapped =
      base != MAP_FAILED &&
      mmap(base, 2 * page_ + data_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED &&
      mmap(static_cast<uint8_t*>(base) + 2 * page_ + data_bytes, data_bytes, PROT_READ | PROT_WRITE,
           MAP_SHARED | MAP_FIXED, fd, static_cast<off_t>(2 * page_)) != MAP_FAILED;
  int saved = errno;
  close(fd);  // the mappings keep the file
  if (!mapped) {
    if (base != MAP_FAILED) munmap(base, bytes_);
    throw util::FatalError(std::string("mapping a memory ring: ") + std::strerror(saved));
  }
  base_ = static_cast<uint8_t*>(base);
  layout_.consumer_pos = reinterpret_cast<unsigned long*>(base_);
  layout_.producer_pos = reinterpret_cast<const unsigned long*>(base_ + page_);
  layout_.data = base_ + 2 * page_;
  layout_.mask = data_bytes - 1;
}

MemoryRing::~MemoryRing() { munmap(base_, bytes_); }

void* MemoryRing::reserve(uint32_t size) {
  unsigned long prod = *layout_.producer_pos;
  unsigned long next = prod + ring_record_bytes(size);
  if (size > BPF_RINGBUF_DISCARD_BIT - 1 || next - consumer_pos() > layout_.mask) return nullptr;
  uint8_t* header = base_ + 2 * page_ + (prod & layout_.mask);
  reinterpret_cast<uint32_t*>(header)[0] = size | BPF_RINGBUF_BUSY_BIT;
  reinterpret_cast<uint32_t*>(header)[1] = 0;  // the kernel's page offset: not read by consumers
  __atomic_store_n(const_cast<unsigned long*>(layout_.producer_pos), next, __ATOMIC_RELEASE);
  return header + BPF_RINGBUF_HDR_SZ;
}

void MemoryRing::commit(void* record, bool discard) {
  auto* len = reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(record) - BPF_RINGBUF_HDR_SZ);
  uint32_t committed = (*len & ~BPF_RINGBUF_BUSY_BIT) | (discard ? uint32_t{BPF_RINGBUF_DISCARD_BIT} : 0u);
  __atomic_store_n(len, committed, __ATOMIC_RELEASE);  // the record's bytes first
}

bool MemoryRing::write(const void* data, uint32_t size) {
  void* record = reserve(size);
  if (!record) return false;
  std::memcpy(record, data, size);
  commit(record);
  return true;
}

}  // namespace netwatch::transport

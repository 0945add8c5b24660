// Socket cookie -> slot number, for the connection table's lookups on every event. Open
// addressing with linear probing in one flat array of 16-byte entries: a lookup reads one cache
// line where a node-based map reads two or three, and nothing is allocated per entry. Erasing
// shifts the entries that follow back into the hole, so there are no tombstones.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace netwatch::aggregate {

class CookieIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  CookieIndex() { rehash(16); }
  uint32_t find(uint64_t cookie) const {
    for (size_t i = home(cookie);; i = (i + 1) & mask_) {
      const Entry& e = entries_[i];
      if (e.slot == kNone || e.cookie == cookie) return e.slot;
    }
  }
  void prefetch(uint64_t cookie) const { __builtin_prefetch(&entries_[home(cookie)]); }
  // Maps cookie to slot, replacing an earlier mapping.
  void insert(uint64_t cookie, uint32_t slot);
  void erase(uint64_t cookie);
  // Room for n entries without growing (for an index whose bound is known).
  void reserve(size_t n) {
    if (n * 2 > entries_.size()) rehash(std::bit_ceil(n * 2));
  }
  size_t size() const { return size_; }

 private:
  struct Entry {
    uint64_t cookie = 0;
    uint32_t slot = kNone;  // kNone: empty
  };
  // Fibonacci hashing: cookies are consecutive numbers, and the multiply spreads them evenly.
  size_t home(uint64_t cookie) const { return (cookie * 0x9e3779b97f4a7c15ULL) >> shift_; }
  void rehash(size_t capacity);  // a power of two

  std::vector<Entry> entries_;
  size_t mask_ = 0;
  unsigned shift_ = 0;
  size_t size_ = 0;
};

}  // namespace netwatch::aggregate

#include "aggregate/cookie_index.h"

namespace netwatch::aggregate {

void CookieIndex::insert(uint64_t cookie, uint32_t slot) {
  if ((size_ + 1) * 2 > entries_.size()) rehash(entries_.size() * 2);  // at most half full
  size_t i = home(cookie);
  while (entries_[i].slot != kNone && entries_[i].cookie != cookie) i = (i + 1) & mask_;
  if (entries_[i].slot == kNone) ++size_;
  entries_[i] = {cookie, slot};
}

void CookieIndex::erase(uint64_t cookie) {
  size_t hole = home(cookie);
  while (entries_[hole].cookie != cookie) {
    if (entries_[hole].slot == kNone) return;  // absent
    hole = (hole + 1) & mask_;
  }
  if (entries_[hole].slot == kNone) return;
  // Backward shift: an entry further along may move into the hole if the hole lies between its
  // home and where it sits (cyclically); otherwise a lookup starting at its home would stop at the
  // hole before reaching it.
  for (size_t i = (hole + 1) & mask_; entries_[i].slot != kNone; i = (i + 1) & mask_) {
    size_t from_home = (i - home(entries_[i].cookie)) & mask_;
    if (from_home >= ((i - hole) & mask_)) {
      entries_[hole] = entries_[i];
      hole = i;
    }
  }
  entries_[hole] = Entry{};
  --size_;
}

void CookieIndex::rehash(size_t capacity) {
  std::vector<Entry> old;
  old.swap(entries_);
  entries_.assign(capacity, Entry{});
  mask_ = capacity - 1;
  shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
  size_ = 0;
  for (const Entry& e : old)
    if (e.slot != kNone) insert(e.cookie, e.slot);
}

}  // namespace netwatch::aggregate

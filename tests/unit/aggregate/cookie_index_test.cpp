// The connection table's cookie index against std::unordered_map, through growth and the
// backward-shift erase that leaves no tombstones.
#include "aggregate/cookie_index.h"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

namespace netwatch::aggregate {
namespace {

TEST(CookieIndex, agrees_with_a_map_through_inserts_erases_and_growth) {
  CookieIndex index;
  std::unordered_map<uint64_t, uint32_t> reference;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    // Consecutive cookies like the kernel's, plus some far apart; keys collide at the same home.
    uint64_t cookie = rng() % 4 ? rng() % 5000 : rng();
    if (rng() % 3) {
      uint32_t slot = static_cast<uint32_t>(rng() % 1000000);
      index.insert(cookie, slot);
      reference[cookie] = slot;
    } else {
      index.erase(cookie);
      reference.erase(cookie);
    }
    if (i % 1000 == 0) {
      ASSERT_EQ(index.size(), reference.size());
      for (const auto& [c, slot] : reference) ASSERT_EQ(index.find(c), slot) << c;
    }
  }
  for (uint64_t c = 0; c < 5000; ++c)
    EXPECT_EQ(index.find(c), reference.count(c) ? reference[c] : CookieIndex::kNone) << c;
}

TEST(CookieIndex, cookie_zero_is_a_key_like_any_other) {
  CookieIndex index;
  EXPECT_EQ(index.find(0), CookieIndex::kNone);
  index.insert(0, 5);
  EXPECT_EQ(index.find(0), 5u);
  index.erase(0);
  EXPECT_EQ(index.find(0), CookieIndex::kNone);
  EXPECT_EQ(index.size(), 0u);
}

}  // namespace
}  // namespace netwatch::aggregate

#include "core/slot_ledger.hpp"

#include <gtest/gtest.h>

#include <cstdint>

using config_guard::core::SlotLedger;

TEST(SlotLedger, NestedBuildsReleaseInnermostFirst) {
  SlotLedger ledger;
  ASSERT_TRUE(ledger.Push(10, 1));  // get() of a tenant
  ASSERT_TRUE(ledger.Push(20, 2));  // its builder's get() of a shared document
  std::uintptr_t slot = 0;
  ASSERT_TRUE(ledger.Pop(&slot));
  EXPECT_EQ(slot, 20u);
  ASSERT_TRUE(ledger.Pop(&slot));
  EXPECT_EQ(slot, 10u);
  EXPECT_FALSE(ledger.Pop(&slot));
}

TEST(SlotLedger, SubtransactionAbortReturnsExactlyItsSlots) {
  SlotLedger ledger;
  ASSERT_TRUE(ledger.Push(10, 1));
  ASSERT_TRUE(ledger.Push(20, 3));
  ASSERT_TRUE(ledger.Push(30, 4));
  std::uintptr_t out[SlotLedger::kCapacity];
  // subtransaction 3 aborts: the slots of 3 and of 4 (started inside it) go
  ASSERT_EQ(ledger.ReleaseFrom(3, out), 2u);
  EXPECT_EQ(out[0], 30u);
  EXPECT_EQ(out[1], 20u);
  EXPECT_EQ(ledger.size(), 1u);
  // an abort of a later subtransaction that took none returns nothing
  EXPECT_EQ(ledger.ReleaseFrom(7, out), 0u);
  EXPECT_EQ(ledger.ReleaseAll(out), 1u);
  EXPECT_EQ(out[0], 10u);
  EXPECT_EQ(ledger.size(), 0u);
}

TEST(SlotLedger, RefusesBeyondCapacity) {
  SlotLedger ledger;
  for (std::size_t i = 0; i < SlotLedger::kCapacity; ++i) ASSERT_TRUE(ledger.Push(i + 1, 1));
  EXPECT_FALSE(ledger.Push(999, 1));
  std::uintptr_t out[SlotLedger::kCapacity];
  EXPECT_EQ(ledger.ReleaseAll(out), SlotLedger::kCapacity);
}

TEST(SlotLedger, HoldsTellsANestedBuildOfTheSameKind) {
  SlotLedger ledger;
  EXPECT_FALSE(ledger.Holds(10));
  ASSERT_TRUE(ledger.Push(10, 1));
  EXPECT_TRUE(ledger.Holds(10));
  EXPECT_FALSE(ledger.Holds(20));
  std::uintptr_t out[SlotLedger::kCapacity];
  ledger.ReleaseAll(out);
  EXPECT_FALSE(ledger.Holds(10));
}

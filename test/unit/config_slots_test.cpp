#include "core/config_slots.hpp"

#include <gtest/gtest.h>

using config_guard::core::MarkReading;
using config_guard::core::PickSlot;
using config_guard::core::ReadMarks;
using config_guard::core::SlotView;

TEST(ConfigSlots, FreeSlotFirst) {
  const SlotView slots[] = {{true, false, true}, {false, false, false}, {true, false, false}};
  EXPECT_EQ(PickSlot(slots, 3, true), 1);
}

TEST(ConfigSlots, ReclaimsOnlyIdleSlotsOfGoneConfigs) {
  const SlotView slots[] = {{true, false, false},  // live config
                            {true, true, true},    // gone, but a builder still runs
                            {true, false, true}};  // gone and idle
  EXPECT_EQ(PickSlot(slots, 3, true), 2);
}

TEST(ConfigSlots, FullOfLiveOrBusyConfigsSharesTheOverflow) {
  const SlotView slots[] = {{true, false, false}, {true, true, true}};
  EXPECT_EQ(PickSlot(slots, 2, true), -1);
  EXPECT_EQ(PickSlot(slots, 0, true), -1);
}

TEST(ConfigSlots, NoSlotWhileBuildersRunOnTheOverflow) {
  const SlotView slots[] = {{false, false, false}, {true, false, true}};
  EXPECT_EQ(PickSlot(slots, 2, false), -1);
  EXPECT_EQ(PickSlot(slots, 2, true), 0);
}

TEST(ConfigSlots, OwnMarksOnlyWhenNotWatchingTheOverflow) {
  const MarkReading r = ReadMarks(0, 7, false, 3, 100);
  EXPECT_TRUE(r.quiet);
  EXPECT_EQ(r.epoch, 7u);
}

TEST(ConfigSlots, WatchingTheOverflowNeedsBothQuiet) {
  EXPECT_FALSE(ReadMarks(0, 7, true, 1, 100).quiet);
  EXPECT_FALSE(ReadMarks(1, 7, true, 0, 100).quiet);
  EXPECT_TRUE(ReadMarks(0, 7, true, 0, 100).quiet);
}

TEST(ConfigSlots, AWriterEndingOnEitherEntryChangesTheEpoch) {
  const MarkReading before = ReadMarks(0, 7, true, 0, 100);
  EXPECT_NE(ReadMarks(0, 8, true, 0, 100).epoch, before.epoch);
  EXPECT_NE(ReadMarks(0, 7, true, 0, 101).epoch, before.epoch);
}

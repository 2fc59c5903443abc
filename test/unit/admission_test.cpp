#include "core/admission.hpp"

#include <gtest/gtest.h>

using namespace config_guard::core;

TEST(Admission, RunsWhileSlotsAreFreeAndNobodyWaits) {
  EXPECT_EQ(AdmitNewcomer(0, 4, 0, 10), Admission::kRun);
  EXPECT_EQ(AdmitNewcomer(3, 4, 0, 10), Admission::kRun);
  EXPECT_EQ(AdmitNewcomer(4, 4, 0, 10), Admission::kQueue);
}

TEST(Admission, NewcomersDoNotOvertakeTheQueue) {
  // A slot is free, but someone is already waiting for it: FIFO.
  EXPECT_EQ(AdmitNewcomer(3, 4, 1, 10), Admission::kQueue);
}

TEST(Admission, FullQueueRefuses) {
  EXPECT_EQ(AdmitNewcomer(4, 4, 10, 10), Admission::kRefuse);
  EXPECT_EQ(AdmitNewcomer(4, 4, 0, 0), Admission::kRefuse);
  EXPECT_EQ(AdmitNewcomer(0, 0, 0, 5), Admission::kQueue);  // a limit of 0 holds everything
}

TEST(Admission, OnlyTheOldestWaiterLeavesWhenASlotFrees) {
  EXPECT_TRUE(MayLeaveQueue(3, 4, true));
  EXPECT_FALSE(MayLeaveQueue(3, 4, false));
  EXPECT_FALSE(MayLeaveQueue(4, 4, true));
}

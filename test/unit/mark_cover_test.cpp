#include "core/mark_cover.hpp"

#include <gtest/gtest.h>

using namespace config_guard::core;

TEST(MarkCover, NothingIsCoveredAtFirst) {
  CoverBucket b;
  EXPECT_FALSE(MaySkip(b, 7, 0));
}

TEST(MarkCover, ACommittedMarkCoversItsKeyOnly) {
  CoverBucket b;
  EXPECT_TRUE(CoverAtCommit(&b, 7, b.seq, 3, 3, 0));
  EXPECT_TRUE(MaySkip(b, 7, 3));
  EXPECT_FALSE(MaySkip(b, 8, 3));  // another tenant of the bucket
  EXPECT_FALSE(MaySkip(b, 7, 4));  // a prune or compaction since
}

TEST(MarkCover, ABuildEndsCovering) {
  CoverBucket b;
  ASSERT_TRUE(CoverAtCommit(&b, 7, b.seq, 0, 0, 0));
  StartBuild(&b);
  EXPECT_FALSE(MaySkip(b, 7, 0));
  EndBuild(&b);
  EXPECT_FALSE(MaySkip(b, 7, 0));
}

TEST(MarkCover, AMarkWrittenBeforeABuildDoesNotCoverAtItsCommit) {
  // The build may have seen it committed and folded it.
  CoverBucket b;
  const auto seq = b.seq;
  StartBuild(&b);
  EndBuild(&b);
  EXPECT_FALSE(CoverAtCommit(&b, 7, seq, 0, 0, 0));
  EXPECT_FALSE(MaySkip(b, 7, 0));
}

TEST(MarkCover, NoCoveringWhileABuildRuns) {
  // A mark written after the build's start may still be in its snapshot.
  CoverBucket b;
  StartBuild(&b);
  const auto seq = b.seq;
  EXPECT_FALSE(CoverAtCommit(&b, 7, seq, 0, 0, 0));
  EndBuild(&b);
  EXPECT_FALSE(CoverAtCommit(&b, 7, seq, 0, 0, 0));  // and not after it either
}

TEST(MarkCover, NoCoveringAcrossOrDuringABulkDeletion) {
  CoverBucket b;
  EXPECT_FALSE(CoverAtCommit(&b, 7, b.seq, 1, 2, 0));
  EXPECT_FALSE(CoverAtCommit(&b, 7, b.seq, 2, 2, 1));
  EXPECT_FALSE(MaySkip(b, 7, 2));
  EXPECT_TRUE(CoverAtCommit(&b, 7, b.seq, 2, 2, 0));
}

TEST(MarkCover, BuildsOfOneBucketNest) {
  CoverBucket b;
  StartBuild(&b);
  StartBuild(&b);
  EndBuild(&b);
  EXPECT_FALSE(CoverAtCommit(&b, 7, b.seq, 0, 0, 0));  // one still runs
  EndBuild(&b);
  EXPECT_TRUE(CoverAtCommit(&b, 7, b.seq, 0, 0, 0));
}

TEST(MarkCover, TenantsSharingABucketAreCoveredTogether) {
  CoverBucket b;
  for (std::uint64_t key = 1; key <= CoverBucket::kKeys; ++key) ASSERT_TRUE(CoverAtCommit(&b, key, b.seq, 0, 0, 0));
  for (std::uint64_t key = 1; key <= CoverBucket::kKeys; ++key) EXPECT_TRUE(MaySkip(b, key, 0));
  // One more replaces the oldest.
  ASSERT_TRUE(CoverAtCommit(&b, 99, b.seq, 0, 0, 0));
  EXPECT_TRUE(MaySkip(b, 99, 0));
  EXPECT_FALSE(MaySkip(b, 1, 0));
  EXPECT_TRUE(MaySkip(b, 2, 0));
  // Covering a key again keeps one slot for it.
  ASSERT_TRUE(CoverAtCommit(&b, 2, b.seq, 0, 0, 0));
  EXPECT_TRUE(MaySkip(b, 3, 0));
}

#include "core/mark_cover.hpp"

#include <gtest/gtest.h>

using namespace config_guard::core;

namespace {

CoverKey Key(std::uint64_t n, std::int32_t config = 1, std::uint32_t database = 5) {
  CoverKey k;
  k.database = database;
  k.config = config;
  k.digest[0] = n;
  k.digest[1] = ~n;
  return k;
}

bool Skip(CoverBucket* b, std::uint64_t n, std::uint64_t epoch) { return TrySkip(b, Key(n), epoch); }

}  // namespace

TEST(MarkCover, NothingIsCoveredAtFirst) {
  CoverBucket b;
  EXPECT_FALSE(Skip(&b, 7, 0));
}

TEST(MarkCover, ACommittedMarkCoversItsKeyOnly) {
  CoverBucket b;
  EXPECT_TRUE(CoverAtCommit(&b, Key(7), b.seq, 3, 3, 0));
  EXPECT_TRUE(Skip(&b, 7, 3));
  EXPECT_FALSE(Skip(&b, 8, 3));                // another tenant of the bucket
  EXPECT_FALSE(TrySkip(&b, Key(7, 2), 3));     // another config
  EXPECT_FALSE(TrySkip(&b, Key(7, 1, 6), 3));  // another database
  EXPECT_FALSE(Skip(&b, 7, 4));                // a prune or compaction since
  CoverKey half = Key(7);
  half.digest[1] = 0;
  EXPECT_FALSE(TrySkip(&b, half, 3));  // the whole digest is compared
}

TEST(MarkCover, SkippersAreCountedPerKey) {
  CoverBucket b;
  ASSERT_TRUE(CoverAtCommit(&b, Key(7), b.seq, 0, 0, 0));
  ASSERT_TRUE(CoverAtCommit(&b, Key(8), b.seq, 0, 0, 0));
  ASSERT_TRUE(Skip(&b, 7, 0));
  ASSERT_TRUE(Skip(&b, 7, 0));
  ASSERT_TRUE(Skip(&b, 8, 0));
  EXPECT_EQ(SkippersOf(b, Key(7)), 2u);
  EXPECT_EQ(SkippersOf(b, Key(8)), 1u);
  EXPECT_EQ(SkippersOf(b, Key(9)), 0u);
  EndSkip(&b, Key(7));
  EXPECT_EQ(SkippersOf(b, Key(7)), 1u);
}

TEST(MarkCover, NoSkipWithoutRoomToCountIt) {
  CoverBucket b;
  for (std::uint64_t n = 1; n <= CoverBucket::kKeys; ++n) {
    ASSERT_TRUE(CoverAtCommit(&b, Key(n), b.seq, 0, 0, 0));
    ASSERT_TRUE(Skip(&b, n, 0));
  }
  ASSERT_TRUE(CoverAtCommit(&b, Key(99), b.seq, 0, 0, 0));
  EXPECT_FALSE(Skip(&b, 99, 0));  // every skipper slot holds another key
  EndSkip(&b, Key(2));
  EXPECT_TRUE(Skip(&b, 99, 0));
}

TEST(MarkCover, ABuildEndsCovering) {
  CoverBucket b;
  ASSERT_TRUE(CoverAtCommit(&b, Key(7), b.seq, 0, 0, 0));
  StartBuild(&b);
  EXPECT_FALSE(Skip(&b, 7, 0));
  EndBuild(&b);
  EXPECT_FALSE(Skip(&b, 7, 0));
}

TEST(MarkCover, AMarkWrittenBeforeABuildDoesNotCoverAtItsCommit) {
  // The build may have seen it committed and folded it.
  CoverBucket b;
  const auto seq = b.seq;
  StartBuild(&b);
  EndBuild(&b);
  EXPECT_FALSE(CoverAtCommit(&b, Key(7), seq, 0, 0, 0));
  EXPECT_FALSE(Skip(&b, 7, 0));
}

TEST(MarkCover, NoCoveringWhileABuildRuns) {
  // A mark written after the build's start may still be in its snapshot.
  CoverBucket b;
  StartBuild(&b);
  const auto seq = b.seq;
  EXPECT_FALSE(CoverAtCommit(&b, Key(7), seq, 0, 0, 0));
  EndBuild(&b);
  EXPECT_FALSE(CoverAtCommit(&b, Key(7), seq, 0, 0, 0));  // and not after it either
}

TEST(MarkCover, NoCoveringAcrossOrDuringABulkDeletion) {
  CoverBucket b;
  EXPECT_FALSE(CoverAtCommit(&b, Key(7), b.seq, 1, 2, 0));
  EXPECT_FALSE(CoverAtCommit(&b, Key(7), b.seq, 2, 2, 1));
  EXPECT_FALSE(Skip(&b, 7, 2));
  EXPECT_TRUE(CoverAtCommit(&b, Key(7), b.seq, 2, 2, 0));
}

TEST(MarkCover, BuildsOfOneBucketNest) {
  CoverBucket b;
  StartBuild(&b);
  StartBuild(&b);
  EndBuild(&b);
  EXPECT_FALSE(CoverAtCommit(&b, Key(7), b.seq, 0, 0, 0));  // one still runs
  EndBuild(&b);
  EXPECT_TRUE(CoverAtCommit(&b, Key(7), b.seq, 0, 0, 0));
}

TEST(MarkCover, TenantsSharingABucketAreCoveredTogether) {
  CoverBucket b;
  for (std::uint64_t n = 1; n <= CoverBucket::kKeys; ++n) ASSERT_TRUE(CoverAtCommit(&b, Key(n), b.seq, 0, 0, 0));
  for (std::uint64_t n = 1; n <= CoverBucket::kKeys; ++n) {
    EXPECT_TRUE(Skip(&b, n, 0));
    EndSkip(&b, Key(n));
  }
  // One more replaces the oldest.
  ASSERT_TRUE(CoverAtCommit(&b, Key(99), b.seq, 0, 0, 0));
  EXPECT_TRUE(Skip(&b, 99, 0));
  EXPECT_FALSE(Skip(&b, 1, 0));
  EXPECT_TRUE(Skip(&b, 2, 0));
}

TEST(MarkCover, TheLastSkippersAreRemembered) {
  CoverBucket b;
  for (std::uint64_t xid = 100; xid < 100 + CoverBucket::kRecent; ++xid) RememberSkip(&b, Key(1), xid);
  EXPECT_EQ(b.older_skips_below, 0u);
  RememberSkip(&b, Key(2), 500);  // pushes out the oldest, 100
  EXPECT_EQ(b.older_skips_below, 100u);
  bool found = false;
  for (const CoverBucket::Skip& s : b.recent_skips) found |= s.xid == 500 && s.key_word == Key(2).digest[0];
  EXPECT_TRUE(found);
  RememberSkip(&b, Key(1), 501);  // pushes out 101
  EXPECT_EQ(b.older_skips_below, 101u);
}

TEST(MarkCover, AKeyIsOfOneMarksTable) {
  CoverBucket b;
  ASSERT_TRUE(CoverAtCommit(&b, Key(7), b.seq, 0, 0, 0));
  CoverKey other = Key(7);
  other.marks_table = 42;  // the extension dropped and created again
  EXPECT_FALSE(TrySkip(&b, other, 0));
}

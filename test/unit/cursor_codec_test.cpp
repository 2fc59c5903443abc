#include "core/cursor_codec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace config_guard::core;

namespace {

CursorFields Sample() {
  CursorFields f;
  f.config_id = 7;
  f.tenant_hash = 0x0123456789ABCDEFULL;
  f.generation = 42;
  f.source_index = 2;
  f.nkeys = 2;
  f.keys[0] = {"1001", 4};
  f.keys[1] = {"b0a9c2e4-7f0a-4c1e-9b2a-0d3f5e6a7b8c", 36};
  return f;
}

std::string Encode(const CursorFields& f) {
  std::vector<unsigned char> bin(CursorBinarySize(f));
  std::string text(CursorTextSize(f), '\0');
  EncodeCursor(f, bin.data(), text.data());
  return text;
}

CursorError Decode(const std::string& text, CursorFields* out, std::vector<unsigned char>* scratch) {
  scratch->assign(CursorScratchSize(text.size()), 0);
  return DecodeCursor(text.data(), text.size(), scratch->data(), out);
}

}  // namespace

TEST(CursorCodec, RoundTripKeepsEveryField) {
  const CursorFields in = Sample();
  const std::string text = Encode(in);
  CursorFields out;
  std::vector<unsigned char> scratch;
  ASSERT_EQ(Decode(text, &out, &scratch), CursorError::kNone);
  EXPECT_EQ(out.config_id, 7u);
  EXPECT_EQ(out.tenant_hash, in.tenant_hash);
  EXPECT_EQ(out.generation, 42u);
  EXPECT_EQ(out.source_index, 2);
  ASSERT_EQ(out.nkeys, 2);
  EXPECT_EQ(std::string(out.keys[0].data, out.keys[0].len), "1001");
  EXPECT_EQ(std::string(out.keys[1].data, out.keys[1].len), "b0a9c2e4-7f0a-4c1e-9b2a-0d3f5e6a7b8c");
}

TEST(CursorCodec, TextIsUrlSafe) {
  const std::string text = Encode(Sample());
  EXPECT_EQ(text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
}

TEST(CursorCodec, ZeroKeysAndEmptyKeyRoundTrip) {
  CursorFields f;
  f.config_id = 1;
  f.nkeys = 1;
  f.keys[0] = {"", 0};
  CursorFields out;
  std::vector<unsigned char> scratch;
  ASSERT_EQ(Decode(Encode(f), &out, &scratch), CursorError::kNone);
  ASSERT_EQ(out.nkeys, 1);
  EXPECT_EQ(out.keys[0].len, 0u);

  f.nkeys = 0;
  ASSERT_EQ(Decode(Encode(f), &out, &scratch), CursorError::kNone);
  EXPECT_EQ(out.nkeys, 0);
}

TEST(CursorCodec, EveryTruncationIsRejected) {
  const std::string text = Encode(Sample());
  for (std::size_t len = 0; len < text.size(); ++len) {
    CursorFields out;
    std::vector<unsigned char> scratch;
    EXPECT_NE(Decode(text.substr(0, len), &out, &scratch), CursorError::kNone) << "length " << len;
  }
}

TEST(CursorCodec, EverySingleCharacterChangeIsRejected) {
  const std::string text = Encode(Sample());
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (std::size_t i = 0; i < text.size(); ++i) {
    for (char c : alphabet) {
      if (c == text[i]) continue;
      std::string altered = text;
      altered[i] = c;
      CursorFields out;
      std::vector<unsigned char> scratch;
      ASSERT_NE(Decode(altered, &out, &scratch), CursorError::kNone) << "position " << i << " char " << c;
    }
  }
}

TEST(CursorCodec, SpecificErrors) {
  CursorFields out;
  std::vector<unsigned char> scratch;
  EXPECT_EQ(Decode("", &out, &scratch), CursorError::kEmpty);
  EXPECT_EQ(Decode("abc!", &out, &scratch), CursorError::kBadCharacter);
  EXPECT_EQ(Decode("abcde", &out, &scratch), CursorError::kBadLength);
  EXPECT_EQ(Decode("AAAA", &out, &scratch), CursorError::kTooShort);
  EXPECT_EQ(Decode(std::string(kMaxCursorTextLength + 4, 'A'), &out, &scratch), CursorError::kTooLong);

  std::string text = Encode(Sample());
  text += "AAAA";  // three zero bytes appended: checksum no longer matches
  EXPECT_EQ(Decode(text, &out, &scratch), CursorError::kChecksumMismatch);
}

TEST(CursorCodec, UnknownVersionIsReported) {
  std::string text = Encode(Sample());
  // The first character carries the top six bits of the version byte.
  text[0] = 'B';
  CursorFields out;
  std::vector<unsigned char> scratch;
  EXPECT_EQ(Decode(text, &out, &scratch), CursorError::kUnknownVersion);
}

TEST(CursorCodec, MessagesAreLowerCaseWithoutPeriod) {
  for (auto e : {CursorError::kEmpty, CursorError::kTooLong, CursorError::kBadCharacter, CursorError::kBadLength,
                 CursorError::kTooShort, CursorError::kUnknownVersion, CursorError::kChecksumMismatch,
                 CursorError::kMalformed}) {
    const std::string m = CursorErrorMessage(e);
    ASSERT_FALSE(m.empty());
    EXPECT_TRUE(m[0] >= 'a' && m[0] <= 'z') << m;
    EXPECT_NE(m.back(), '.') << m;
  }
}

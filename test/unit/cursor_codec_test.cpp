#include "core/cursor_codec.hpp"

#include <gtest/gtest.h>

#include "core/hash.hpp"

#include <string>
#include <vector>

using namespace config_guard::core;

namespace {

constexpr std::uint8_t kKey[kSipKeySize] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
constexpr std::uint8_t kOtherKey[kSipKeySize] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17};
constexpr char kBinding[] = "database 5, definition 1";
constexpr CursorAuth kAuth = {&kKey, kBinding, sizeof kBinding};

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

std::string Encode(const CursorFields& f, const CursorAuth& auth = kAuth) {
  std::vector<unsigned char> bin(CursorBinarySize(f));
  std::string text(CursorTextSize(f), '\0');
  EncodeCursor(f, auth, bin.data(), text.data());
  return text;
}

CursorError Decode(const std::string& text, CursorFields* out, std::vector<unsigned char>* scratch,
                   const CursorAuth& auth = kAuth) {
  scratch->assign(CursorScratchSize(text.size()), 0);
  return DecodeCursor(text.data(), text.size(), auth, scratch->data(), out);
}

std::string Base64Url(const std::vector<unsigned char>& bin) {
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : bin) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += alphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += alphabet[(acc << (6 - bits)) & 63];
  return out;
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
  text += "AAAA";  // three zero bytes appended: the MAC no longer matches
  EXPECT_EQ(Decode(text, &out, &scratch), CursorError::kMalformed);
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
  for (auto e :
       {CursorError::kEmpty, CursorError::kTooLong, CursorError::kBadCharacter, CursorError::kBadLength,
        CursorError::kTooShort, CursorError::kUnknownVersion, CursorError::kNotAuthentic, CursorError::kMalformed}) {
    const std::string m = CursorErrorMessage(e);
    ASSERT_FALSE(m.empty());
    EXPECT_TRUE(m[0] >= 'a' && m[0] <= 'z') << m;
    EXPECT_NE(m.back(), '.') << m;
  }
}

// Without the server's key a cursor cannot be made: the same fields under
// another key, or bound to another database or definition, are refused, and
// the untrusted fields are still reported so that the caller can explain.
TEST(CursorCodec, AnotherKeyOrBindingIsNotAuthentic) {
  const CursorFields in = Sample();
  CursorFields out;
  std::vector<unsigned char> scratch;
  const CursorAuth other_key = {&kOtherKey, kBinding, sizeof kBinding};
  EXPECT_EQ(Decode(Encode(in, other_key), &out, &scratch), CursorError::kNotAuthentic);
  EXPECT_EQ(out.config_id, in.config_id);
  EXPECT_EQ(out.tenant_hash, in.tenant_hash);

  constexpr char kOtherBinding[] = "database 6, definition 1";
  const CursorAuth other_binding = {&kKey, kOtherBinding, sizeof kOtherBinding};
  EXPECT_EQ(Decode(Encode(in, other_binding), &out, &scratch), CursorError::kNotAuthentic);
  EXPECT_EQ(Decode(Encode(in), &out, &scratch, other_binding), CursorError::kNotAuthentic);
  EXPECT_EQ(Decode(Encode(in), &out, &scratch), CursorError::kNone);
}

// The attack the MAC closes: rewrite a field (skip ahead, reset the change
// check) and fix up an unkeyed checksum. Every such cursor is refused.
TEST(CursorCodec, ForgedFieldsAreRefused) {
  CursorFields forged = Sample();
  forged.generation = 0;
  forged.keys[0] = {"999999", 6};
  const CursorAuth guessed = {&kOtherKey, kBinding, sizeof kBinding};
  CursorFields out;
  std::vector<unsigned char> scratch;
  EXPECT_EQ(Decode(Encode(forged, guessed), &out, &scratch), CursorError::kNotAuthentic);
}

// A cursor of the first format (unkeyed checksum) is refused by its version.
TEST(CursorCodec, FirstFormatIsRefused) {
  std::vector<unsigned char> bin = {1, 7, 0, 0, 0};
  for (int i = 0; i < 8 + 8 + 2 + 2; ++i) bin.push_back(0);
  const std::uint64_t checksum = Hash64(bin.data(), bin.size(), 0x636F6E6669675F67ULL);
  for (int i = 0; i < 8; ++i) bin.push_back(static_cast<unsigned char>(checksum >> (8 * i)));
  CursorFields out;
  std::vector<unsigned char> scratch;
  EXPECT_EQ(Decode(Base64Url(bin), &out, &scratch), CursorError::kUnknownVersion);
}

#include "core/cursor_codec.hpp"

#include <cstring>

namespace config_guard::core {
namespace {

constexpr std::size_t kHeaderSize = 1 + 4 + 8 + 8 + 2 + 2;
constexpr std::size_t kMacSize = 8;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int AlphabetIndex(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::uint64_t Mac(const CursorAuth& auth, const unsigned char* body, std::size_t len) {
  SipHash24 mac(*auth.key);
  mac.Update(body, len);
  mac.Update(auth.binding, auth.binding_len);
  return mac.Final();
}

std::size_t Base64Length(std::size_t bytes) { return bytes / 3 * 4 + (bytes % 3 == 0 ? 0 : bytes % 3 + 1); }

class Writer {
 public:
  explicit Writer(unsigned char* p) : p_(p) {}
  void Put(std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) *p_++ = static_cast<unsigned char>(v >> (8 * i));
  }
  void PutBytes(const char* data, std::size_t len) {
    if (len > 0) std::memcpy(p_, data, len);
    p_ += len;
  }
  unsigned char* pos() const { return p_; }

 private:
  unsigned char* p_;
};

class Reader {
 public:
  Reader(const unsigned char* p, std::size_t len) : p_(p), end_(p + len) {}
  bool Get(int bytes, std::uint64_t* v) {
    if (static_cast<std::size_t>(end_ - p_) < static_cast<std::size_t>(bytes)) return false;
    std::uint64_t r = 0;
    for (int i = 0; i < bytes; ++i) r |= static_cast<std::uint64_t>(*p_++) << (8 * i);
    *v = r;
    return true;
  }
  bool Skip(std::size_t len, const unsigned char** start) {
    if (static_cast<std::size_t>(end_ - p_) < len) return false;
    *start = p_;
    p_ += len;
    return true;
  }
  bool AtEnd() const { return p_ == end_; }

 private:
  const unsigned char* p_;
  const unsigned char* end_;
};

}  // namespace

const char* CursorErrorMessage(CursorError error) {
  switch (error) {
    case CursorError::kNone:
      return "no error";
    case CursorError::kEmpty:
      return "the cursor is empty";
    case CursorError::kTooLong:
      return "the cursor is longer than any cursor this extension produces";
    case CursorError::kBadCharacter:
      return "the cursor contains a character outside its alphabet";
    case CursorError::kBadLength:
      return "the cursor has been truncated or extended";
    case CursorError::kTooShort:
      return "the cursor is too short";
    case CursorError::kUnknownVersion:
      return "the cursor has an unknown format version";
    case CursorError::kNotAuthentic:
      return "the cursor was altered, or was not issued for this config definition and database";
    case CursorError::kMalformed:
      return "the cursor's contents are malformed";
  }
  return "unknown cursor error";
}

std::size_t CursorBinarySize(const CursorFields& fields) {
  std::size_t size = kHeaderSize + kMacSize;
  for (std::size_t i = 0; i < fields.nkeys; ++i) size += 4 + fields.keys[i].len;
  return size;
}

std::size_t CursorTextSize(const CursorFields& fields) { return Base64Length(CursorBinarySize(fields)); }

void EncodeCursor(const CursorFields& fields, const CursorAuth& auth, unsigned char* scratch, char* out) {
  Writer w(scratch);
  w.Put(kCursorVersion, 1);
  w.Put(fields.config_id, 4);
  w.Put(fields.tenant_hash, 8);
  w.Put(fields.generation, 8);
  w.Put(fields.source_index, 2);
  w.Put(fields.nkeys, 2);
  for (std::size_t i = 0; i < fields.nkeys; ++i) {
    w.Put(fields.keys[i].len, 4);
    w.PutBytes(fields.keys[i].data, fields.keys[i].len);
  }
  const std::size_t body = static_cast<std::size_t>(w.pos() - scratch);
  w.Put(Mac(auth, scratch, body), 8);
  const std::size_t n = body + kMacSize;

  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v = (scratch[i] << 16) | (scratch[i + 1] << 8) | scratch[i + 2];
    *out++ = kAlphabet[(v >> 18) & 63];
    *out++ = kAlphabet[(v >> 12) & 63];
    *out++ = kAlphabet[(v >> 6) & 63];
    *out++ = kAlphabet[v & 63];
  }
  if (n - i == 1) {
    const std::uint32_t v = scratch[i] << 16;
    *out++ = kAlphabet[(v >> 18) & 63];
    *out++ = kAlphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    const std::uint32_t v = (scratch[i] << 16) | (scratch[i + 1] << 8);
    *out++ = kAlphabet[(v >> 18) & 63];
    *out++ = kAlphabet[(v >> 12) & 63];
    *out++ = kAlphabet[(v >> 6) & 63];
  }
}

std::size_t CursorScratchSize(std::size_t text_len) { return text_len / 4 * 3 + 3; }

CursorError DecodeCursor(const char* text, std::size_t text_len, const CursorAuth& auth, unsigned char* scratch,
                         CursorFields* out) {
  if (text_len == 0) return CursorError::kEmpty;
  if (text_len > kMaxCursorTextLength) return CursorError::kTooLong;
  if (text_len % 4 == 1) return CursorError::kBadLength;

  std::size_t n = 0;
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < text_len; ++i) {
    const int v = AlphabetIndex(text[i]);
    if (v < 0) return CursorError::kBadCharacter;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      scratch[n++] = static_cast<unsigned char>(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  // Only the canonical text is accepted: leftover bits must be zero.
  if (acc != 0) return CursorError::kBadLength;

  if (n < kHeaderSize + kMacSize) return CursorError::kTooShort;
  if (scratch[0] != kCursorVersion) return CursorError::kUnknownVersion;

  const std::size_t body = n - kMacSize;
  std::uint64_t stored = 0;
  for (int i = 0; i < 8; ++i) stored |= static_cast<std::uint64_t>(scratch[body + i]) << (8 * i);

  Reader r(scratch + 1, body - 1);
  std::uint64_t v = 0;
  CursorFields f;
  r.Get(4, &v);
  f.config_id = static_cast<std::uint32_t>(v);
  r.Get(8, &f.tenant_hash);
  r.Get(8, &f.generation);
  r.Get(2, &v);
  f.source_index = static_cast<std::uint16_t>(v);
  r.Get(2, &v);
  if (v > kMaxCursorKeys) return CursorError::kMalformed;
  f.nkeys = static_cast<std::uint16_t>(v);
  for (std::size_t i = 0; i < f.nkeys; ++i) {
    const unsigned char* start = nullptr;
    if (!r.Get(4, &v) || !r.Skip(v, &start)) return CursorError::kMalformed;
    f.keys[i].data = reinterpret_cast<const char*>(start);
    f.keys[i].len = static_cast<std::uint32_t>(v);
  }
  if (!r.AtEnd()) return CursorError::kMalformed;
  *out = f;
  // Compared in full either way; the key is what makes a match meaningful.
  return stored == Mac(auth, scratch, body) ? CursorError::kNone : CursorError::kNotAuthentic;
}

}  // namespace config_guard::core

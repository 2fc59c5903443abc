// libFuzzer target: DecodeCursor must never read out of bounds, and anything
// it accepts must re-encode to exactly the same text.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/cursor_codec.hpp"

using namespace config_guard::core;

namespace {
constexpr std::uint8_t kKey[kSipKeySize] = {};
constexpr CursorAuth kAuth = {&kKey, "", 0};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  std::vector<unsigned char> scratch(CursorScratchSize(size));
  CursorFields fields;
  if (DecodeCursor(text, size, kAuth, scratch.data(), &fields) != CursorError::kNone) return 0;

  std::vector<unsigned char> bin(CursorBinarySize(fields));
  std::vector<char> again(CursorTextSize(fields));
  EncodeCursor(fields, kAuth, bin.data(), again.data());
  if (again.size() != size || std::memcmp(again.data(), text, size) != 0) std::abort();
  return 0;
}

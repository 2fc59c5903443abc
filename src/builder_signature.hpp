// Keeps config_guard.configs.builder_signature current through renames
// (see builder_signature.cpp).
#pragma once

#include "pg.hpp"

namespace config_guard {

void InitBuilderSignatures();

}  // namespace config_guard

// config_guard.* settings.
#pragma once

namespace config_guard {

// Largest page_size export_page accepts (PGC_SUSET: a DBA's cap, not a hint).
extern int max_page_size;

}  // namespace config_guard

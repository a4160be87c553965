// The file sink's record format: one feature write as one JSON line,
//   {"key":"...","fields":{"name":"value",...},"valid_from":<ms>,"ttl_seconds":<s>}
// with the fields in the order the Redis sink writes them and every value
// exactly the string the Redis sink would HSET. valid_from is the write's
// order (FeatureWrite::order): the window end for windowed features, the
// session end for session features, epoch milliseconds.
//
// Keys, names and values are bytes, not text (a user id may hold anything).
// JSON strings must be Unicode, so: `"` and `\` are escaped, control
// characters (U+0000..U+001F) become \b \f \n \r \t or \u00XX, valid UTF-8
// is copied as is, and every byte that is not part of a valid UTF-8
// sequence becomes \u00XX of that byte (read as Latin-1). That last rule is
// lossy on purpose: the line stays valid JSON, and such a byte decodes to
// U+00XX, indistinguishable from that character written validly.
#pragma once

#include <string>
#include <string_view>

#include "worker/window/feature_write.h"

namespace slipstream {

// Appends `feature` as one JSON object and a '\n' to `out`.
void AppendFeatureJsonLine(const FeatureWrite& feature, std::string* out);

// Appends `bytes` as a JSON string literal (quotes included), escaped as the
// header says.
void AppendJsonString(std::string_view bytes, std::string* out);

}  // namespace slipstream

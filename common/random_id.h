// Random identifiers: job ids, worker id suffixes, savepoint directory names,
// savepoint request ids. Thread-safe.
#pragma once

#include <string>

namespace slipstream {

// `digits` lowercase hexadecimal digits from a generator seeded once per
// process from std::random_device.
std::string RandomHex(int digits);

}  // namespace slipstream

// SHA-256 (FIPS 180-4) of a file, to check engine files against the hashes in manifest.json.
#pragma once

#include <string>

#include "status.h"

namespace nbp::rt {

// Lower-case hex digest of the file at `path`; an error names the file when it cannot be read.
Status sha256_file(const std::string& path, std::string* hex_digest);

// Digest of an in-memory string (used by the self-test of the hash).
std::string sha256_hex(const std::string& data);

}  // namespace nbp::rt

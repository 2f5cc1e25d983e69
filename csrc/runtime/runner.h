// What run_engine does once its options are parsed: load the manifest, pick a backend, build the
// prefixes (class ids, or the codes of a context video), generate the videos in batches, decode
// them and write Y4M (and PNG) files, printing a progress line per video.
#pragma once

#include "config.h"
#include "status.h"

namespace nbp::rt {

Status run(const RunConfig& cfg);

}  // namespace nbp::rt

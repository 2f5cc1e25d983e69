// Error handling for run_engine: functions return a Status (ok, or a message naming the file or
// option at fault) instead of throwing; main turns a failed Status into a message and an exit code.
#pragma once

#include <sstream>
#include <string>
#include <utility>

namespace nbp::rt {

// Exit codes of run_engine, stable so that scripts and tests can tell failures apart.
enum class ExitCode : int {
  kOk = 0,
  kUsage = 2,       // bad command-line option
  kManifest = 3,    // manifest.json missing, unreadable, malformed or inconsistent
  kEngine = 4,      // an engine/ONNX file missing, corrupt, or not matching the manifest
  kInput = 5,       // a context video that cannot be read or does not fit
  kRuntime = 6,     // a failure while running (backend error, non-finite logits)
  kOutput = 7,      // the output cannot be written
};

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(ExitCode code, std::string message) { return Status(code, std::move(message)); }

  bool ok() const { return code_ == ExitCode::kOk; }
  ExitCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Status(ExitCode code, std::string message) : code_(code), message_(std::move(message)) {}
  ExitCode code_ = ExitCode::kOk;
  std::string message_;
};

// Builds a message from any streamable parts: Err(ExitCode::kManifest, path, ": missing key ", k).
template <typename... Parts>
Status Err(ExitCode code, const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return Status::Error(code, os.str());
}

}  // namespace nbp::rt

#define NBP_RT_TRY(expr)                  \
  do {                                    \
    ::nbp::rt::Status _st = (expr);       \
    if (!_st.ok()) return _st;            \
  } while (0)

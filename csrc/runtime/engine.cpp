#include "engine.h"

#include <sstream>

namespace nbp::rt {
namespace {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << (shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  os << ")";
  return os.str();
}

Status check_list(const Engine& e, const char* kind, const std::vector<TensorSpec>& have, const std::vector<TensorSpec>& want) {
  if (have.size() != want.size()) {
    return Err(ExitCode::kEngine, e.path(), ": has ", have.size(), " ", kind, "s but the manifest lists ", want.size(),
               " (engine and manifest come from different exports?)");
  }
  for (const TensorSpec& w : want) {
    const TensorSpec* h = nullptr;
    for (const TensorSpec& x : have) if (x.name == w.name) h = &x;
    if (!h) return Err(ExitCode::kEngine, e.path(), ": no ", kind, " named '", w.name, "' as the manifest lists");
    if (h->type != w.type) {
      return Err(ExitCode::kEngine, e.path(), ": ", kind, " '", w.name, "' is ", elem_type_name(h->type), ", the manifest says ",
                 elem_type_name(w.type));
    }
    bool same = h->shape.size() == w.shape.size();
    for (size_t i = 0; same && i < w.shape.size(); ++i) {
      // Sizes both state must agree; a dynamic size on either side takes the bound shape.
      if (w.shape[i] >= 0 && h->shape[i] >= 0 && h->shape[i] != w.shape[i]) same = false;
    }
    if (!same) {
      return Err(ExitCode::kEngine, e.path(), ": ", kind, " '", w.name, "' has shape ", shape_str(h->shape),
                 ", the manifest says ", shape_str(w.shape));
    }
  }
  return Status::Ok();
}

}  // namespace

Status check_engine_io(const Engine& engine, const GraphSpec& spec) {
  NBP_RT_TRY(check_list(engine, "input", engine.inputs(), spec.inputs));
  return check_list(engine, "output", engine.outputs(), spec.outputs);
}

}  // namespace nbp::rt

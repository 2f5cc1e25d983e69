#include "manifest.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "json.h"
#include "sha256.h"

namespace nbp::rt {

const char* elem_type_name(ElemType t) {
  switch (t) {
    case ElemType::kFloat32: return "float32";
    case ElemType::kFloat16: return "float16";
    case ElemType::kBFloat16: return "bfloat16";
    case ElemType::kInt64: return "int64";
    case ElemType::kInt32: return "int32";
    case ElemType::kUnknown: break;
  }
  return "unknown";
}

size_t elem_size(ElemType t) {
  switch (t) {
    case ElemType::kFloat32: case ElemType::kInt32: return 4;
    case ElemType::kFloat16: case ElemType::kBFloat16: return 2;
    case ElemType::kInt64: return 8;
    case ElemType::kUnknown: break;
  }
  return 0;
}

namespace {

// Typed access to the manifest's JSON with messages of the form "<file>: key a.b.c: expected ...".
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  Status object(const json::Value& parent, const std::string& key, const std::string& where, const json::Value** out) {
    return get(parent, key, where, json::Value::Type::kObject, out);
  }

  Status integer(const json::Value& parent, const std::string& key, const std::string& where, int64_t lo, int64_t* out) {
    const json::Value* v;
    NBP_RT_TRY(get(parent, key, where, json::Value::Type::kNumber, &v));
    if (!v->is_integer() || v->as_int() < lo) return bad(where + key, "an integer >= " + std::to_string(lo));
    *out = v->as_int();
    return Status::Ok();
  }

  // A finite number in [lo, hi] (lo excluded when lo_open).
  Status number(const json::Value& parent, const std::string& key, const std::string& where, double* out,
                double lo = -HUGE_VAL, double hi = HUGE_VAL, bool lo_open = false) {
    const json::Value* v;
    NBP_RT_TRY(get(parent, key, where, json::Value::Type::kNumber, &v));
    const double x = v->as_number();
    const bool low_ok = lo_open ? x > lo : x >= lo;
    if (!std::isfinite(x) || !low_ok || x > hi) {
      std::ostringstream range;
      range << "a finite number";
      if (lo != -HUGE_VAL) range << (lo_open ? " > " : " >= ") << lo;
      if (hi != HUGE_VAL) range << " and <= " << hi;
      return bad(where + key, range.str());
    }
    *out = x;
    return Status::Ok();
  }

  Status string(const json::Value& parent, const std::string& key, const std::string& where, std::string* out) {
    const json::Value* v;
    NBP_RT_TRY(get(parent, key, where, json::Value::Type::kString, &v));
    *out = v->as_string();
    return Status::Ok();
  }

  Status boolean(const json::Value& parent, const std::string& key, const std::string& where, bool* out) {
    const json::Value* v;
    NBP_RT_TRY(get(parent, key, where, json::Value::Type::kBool, &v));
    *out = v->as_bool();
    return Status::Ok();
  }

  Status triple(const json::Value& parent, const std::string& key, const std::string& where, int64_t out[3]) {
    const json::Value* v;
    NBP_RT_TRY(get(parent, key, where, json::Value::Type::kArray, &v));
    if (v->items().size() != 3) return bad(where + key, "an array of 3 positive integers");
    for (int i = 0; i < 3; ++i) {
      const json::Value& x = v->items()[i];
      if (!x.is_integer() || x.as_int() < 1) return bad(where + key, "an array of 3 positive integers");
      out[i] = x.as_int();
    }
    return Status::Ok();
  }

  Status tensors(const json::Value& parent, const std::string& key, const std::string& where, std::vector<TensorSpec>* out) {
    const json::Value* list;
    NBP_RT_TRY(get(parent, key, where, json::Value::Type::kArray, &list));
    for (size_t i = 0; i < list->items().size(); ++i) {
      const json::Value& t = list->items()[i];
      const std::string at = where + key + "[" + std::to_string(i) + "].";
      if (!t.is_object()) return bad(where + key + "[" + std::to_string(i) + "]", "an object");
      TensorSpec spec;
      std::string dtype;
      NBP_RT_TRY(string(t, "name", at, &spec.name));
      NBP_RT_TRY(string(t, "dtype", at, &dtype));
      spec.type = dtype == "float32"   ? ElemType::kFloat32
                  : dtype == "float16" ? ElemType::kFloat16
                  : dtype == "bfloat16" ? ElemType::kBFloat16
                  : dtype == "int64"   ? ElemType::kInt64
                  : dtype == "int32"   ? ElemType::kInt32
                                       : ElemType::kUnknown;
      if (spec.type == ElemType::kUnknown) return bad(at + "dtype", "one of float32, float16, bfloat16, int64, int32");
      const json::Value* shape;
      NBP_RT_TRY(get(t, "shape", at, json::Value::Type::kArray, &shape));
      for (const json::Value& d : shape->items()) {
        if (d.is_string()) spec.shape.push_back(-1);
        else if (d.is_integer() && d.as_int() >= 1) spec.shape.push_back(d.as_int());
        else return bad(at + "shape", "positive integers or names of dynamic dimensions");
      }
      out->push_back(std::move(spec));
    }
    return Status::Ok();
  }

  Status graph(const json::Value& graphs, const std::string& key, bool required, GraphSpec* out) {
    const json::Value* g = graphs.find(key);
    if (!g) {
      if (required) return missing("graphs." + key);
      return Status::Ok();
    }
    const std::string at = "graphs." + key + ".";
    if (!g->is_object()) return bad("graphs." + key, "an object");
    NBP_RT_TRY(string(*g, "onnx", at, &out->onnx));
    if (const json::Value* e = g->find("engine"); e && !e->is_null()) {
      if (!e->is_string()) return bad(at + "engine", "a file name or null");
      out->engine = e->as_string();
    }
    NBP_RT_TRY(tensors(*g, "inputs", at, &out->inputs));
    NBP_RT_TRY(tensors(*g, "outputs", at, &out->outputs));
    return Status::Ok();
  }

  Status bad(const std::string& key, const std::string& expected) const {
    return Err(ExitCode::kManifest, file_, ": key '", key, "': expected ", expected);
  }
  Status missing(const std::string& key) const { return Err(ExitCode::kManifest, file_, ": missing key '", key, "'"); }

 private:
  Status get(const json::Value& parent, const std::string& key, const std::string& where, json::Value::Type type,
             const json::Value** out) {
    const json::Value* v = parent.find(key);
    if (!v) return missing(where + key);
    if (v->type() != type) return bad(where + key, json::Value::type_name(type));
    *out = v;
    return Status::Ok();
  }

  std::string file_;
};

Status check_consistency(const Reader& r, const Manifest& m) {
  const ModelSpec& s = m.model;
  const int64_t L = s.block_shape[0] * s.block_shape[1] * s.block_shape[2];
  if (L != s.block_len) return r.bad("model.block_len", "the product of model.block_shape (" + std::to_string(L) + ")");
  for (int i = 0; i < 3; ++i) {
    if (s.grid[i] % s.block_shape[i] != 0) return r.bad("model.block_shape", "sizes dividing model.latent_grid");
  }
  const int64_t blocks = (s.grid[0] / s.block_shape[0]) * (s.grid[1] / s.block_shape[1]) * (s.grid[2] / s.block_shape[2]);
  int64_t expected_blocks = blocks;
  if (s.prefix_kind == PrefixKind::kFrames) {
    if (s.context_frames >= s.grid[0] || s.context_frames % s.block_shape[0] != 0) {
      return r.bad("model.prefix.context_frames", "a multiple of block_shape[0] below latent_grid[0]");
    }
    expected_blocks = blocks - blocks * s.context_frames / s.grid[0];
  }
  if (s.num_blocks != expected_blocks) return r.bad("model.num_blocks", std::to_string(expected_blocks) + " for this grid and prefix");
  if (s.max_cache_len < s.first_block_position + (s.num_blocks - 1) * s.block_len) {
    return r.bad("model.max_cache_len", "at least first_block_position + (num_blocks - 1) * block_len");
  }
  if (s.graph_batch != s.max_batch * (s.unconditional_stream ? 2 : 1)) return r.bad("model.graph_batch", "max_batch times the number of streams");
  if (s.prefix_kind == PrefixKind::kClass && (s.null_class < 0 && s.unconditional_stream)) {
    return r.bad("model.prefix.null_class", "a class id >= 0 when the graphs carry the unconditional stream");
  }
  if (s.prefix_kind != PrefixKind::kClass && s.unconditional_stream) {
    return r.bad("model.unconditional_stream", "false: only a class prefix has the null class that guidance needs");
  }
  if (s.prefix_kind != PrefixKind::kNone && s.prefix_len < 1) return r.bad("model.prefix.length", "an integer >= 1");
  return Status::Ok();
}

}  // namespace

Status load_manifest(const std::string& dir, Manifest* out) {
  Manifest m;
  m.dir = dir.empty() ? "." : dir;
  m.path = m.dir + "/manifest.json";
  std::ifstream in(m.path, std::ios::binary);
  if (!in) return Err(ExitCode::kManifest, m.path, ": cannot open (is --engines the folder written by export/to_trt.py?)");
  std::stringstream text;
  text << in.rdbuf();
  json::Value root;
  std::string error;
  if (!json::parse(text.str(), &root, &error)) return Err(ExitCode::kManifest, m.path, ": not valid JSON: ", error);
  if (!root.is_object()) return Err(ExitCode::kManifest, m.path, ": expected a JSON object at the top level");

  Reader r(m.path);
  std::string format;
  int64_t version;
  NBP_RT_TRY(r.string(root, "format", "", &format));
  if (format != "nbp-engines") return r.bad("format", "\"nbp-engines\"");
  NBP_RT_TRY(r.integer(root, "format_version", "", 1, &version));
  if (version != kManifestFormatVersion) {
    return r.bad("format_version", std::to_string(kManifestFormatVersion) + " (re-export with this version of export/to_trt.py)");
  }
  NBP_RT_TRY(r.string(root, "precision", "", &m.precision));

  const json::Value *model, *prefix, *video, *sampling, *graphs, *files;
  NBP_RT_TRY(r.object(root, "model", "", &model));
  ModelSpec& s = m.model;
  NBP_RT_TRY(r.integer(*model, "vocab_size", "model.", 2, &s.vocab_size));
  NBP_RT_TRY(r.integer(*model, "num_layers", "model.", 1, &s.num_layers));
  NBP_RT_TRY(r.integer(*model, "kv_heads", "model.", 1, &s.kv_heads));
  NBP_RT_TRY(r.integer(*model, "head_dim", "model.", 1, &s.head_dim));
  NBP_RT_TRY(r.triple(*model, "latent_grid", "model.", s.grid));
  NBP_RT_TRY(r.triple(*model, "block_shape", "model.", s.block_shape));
  NBP_RT_TRY(r.integer(*model, "block_len", "model.", 1, &s.block_len));
  NBP_RT_TRY(r.integer(*model, "num_blocks", "model.", 1, &s.num_blocks));
  NBP_RT_TRY(r.integer(*model, "max_cache_len", "model.", 1, &s.max_cache_len));
  NBP_RT_TRY(r.integer(*model, "first_block_position", "model.", 1, &s.first_block_position));
  NBP_RT_TRY(r.integer(*model, "graph_batch", "model.", 1, &s.graph_batch));
  NBP_RT_TRY(r.integer(*model, "max_batch", "model.", 1, &s.max_batch));
  NBP_RT_TRY(r.boolean(*model, "unconditional_stream", "model.", &s.unconditional_stream));
  std::string start;
  NBP_RT_TRY(r.string(*model, "start", "model.", &start));
  if (start != "learned" && start != "hybrid") return r.bad("model.start", "\"learned\" or \"hybrid\"");
  s.hybrid_start = start == "hybrid";

  NBP_RT_TRY(r.object(*model, "prefix", "model.", &prefix));
  std::string kind;
  NBP_RT_TRY(r.string(*prefix, "kind", "model.prefix.", &kind));
  NBP_RT_TRY(r.integer(*prefix, "length", "model.prefix.", 0, &s.prefix_len));
  if (kind == "class") {
    s.prefix_kind = PrefixKind::kClass;
    NBP_RT_TRY(r.integer(*prefix, "num_classes", "model.prefix.", 1, &s.num_classes));
    NBP_RT_TRY(r.integer(*prefix, "null_class", "model.prefix.", -1, &s.null_class));
  } else if (kind == "frames") {
    s.prefix_kind = PrefixKind::kFrames;
    NBP_RT_TRY(r.integer(*prefix, "context_frames", "model.prefix.", 1, &s.context_frames));
  } else if (kind == "none") {
    s.prefix_kind = PrefixKind::kNone;
    if (s.prefix_len != 0) return r.bad("model.prefix.length", "0 for an unconditional model (kind \"none\")");
  } else {
    return r.bad("model.prefix.kind", "\"class\", \"frames\" or \"none\"");
  }

  NBP_RT_TRY(r.object(root, "video", "", &video));
  NBP_RT_TRY(r.integer(*video, "frames", "video.", 1, &m.video.frames));
  NBP_RT_TRY(r.integer(*video, "height", "video.", 1, &m.video.height));
  NBP_RT_TRY(r.integer(*video, "width", "video.", 1, &m.video.width));
  NBP_RT_TRY(r.integer(*video, "fps", "video.", 1, &m.video.fps));

  NBP_RT_TRY(r.object(root, "sampling", "", &sampling));
  NBP_RT_TRY(r.number(*sampling, "temperature", "sampling.", &m.sampling.temperature, 0.0));
  NBP_RT_TRY(r.integer(*sampling, "top_k", "sampling.", 0, &m.sampling.top_k));
  NBP_RT_TRY(r.number(*sampling, "top_p", "sampling.", &m.sampling.top_p, 0.0, 1.0, true));
  NBP_RT_TRY(r.number(*sampling, "guidance_scale", "sampling.", &m.sampling.guidance_scale));

  NBP_RT_TRY(r.object(root, "graphs", "", &graphs));
  NBP_RT_TRY(r.graph(*graphs, "prefill", true, &m.prefill));
  NBP_RT_TRY(r.graph(*graphs, "step", true, &m.step));
  NBP_RT_TRY(r.graph(*graphs, "decoder", true, &m.decoder));
  NBP_RT_TRY(r.graph(*graphs, "encoder", s.prefix_kind == PrefixKind::kFrames, &m.encoder));
  NBP_RT_TRY(r.graph(*graphs, "token_step", s.hybrid_start, &m.token_step));

  NBP_RT_TRY(r.object(root, "files", "", &files));
  for (const auto& [name, digest] : files->members()) {
    if (!digest.is_string() || digest.as_string().size() != 64) return r.bad("files." + name, "a SHA-256 hex digest");
    m.sha256[name] = digest.as_string();
  }
  for (const GraphSpec* g : {&m.prefill, &m.step, &m.decoder, &m.encoder, &m.token_step}) {
    for (const std::string* f : {&g->onnx, &g->engine}) {
      if (!f->empty() && !m.sha256.count(*f)) return r.missing("files." + *f);
    }
  }
  bool has_engines = false;
  for (const GraphSpec* g : {&m.prefill, &m.step, &m.decoder, &m.encoder, &m.token_step}) has_engines |= !g->engine.empty();
  if (const json::Value* v = root.find("tensorrt_version"); v && !v->is_null()) {
    if (!v->is_string() || v->as_string().empty()) return r.bad("tensorrt_version", "a version string or null");
    m.tensorrt_version = v->as_string();
  }
  if (has_engines && m.tensorrt_version.empty()) {
    return r.bad("tensorrt_version", "the TensorRT version that built the engines (re-export with this version of "
                 "export/to_trt.py)");
  }
  NBP_RT_TRY(check_consistency(r, m));
  *out = std::move(m);
  return Status::Ok();
}

Status verify_file(const Manifest& m, const std::string& name) {
  auto it = m.sha256.find(name);
  if (it == m.sha256.end()) return Err(ExitCode::kManifest, m.path, ": no SHA-256 for '", name, "' under 'files'");
  std::string digest;
  NBP_RT_TRY(sha256_file(m.file(name), &digest));
  if (digest != it->second) {
    return Err(ExitCode::kEngine, m.file(name), ": SHA-256 ", digest, " does not match the manifest (", it->second,
               "): the file is corrupt or from another export");
  }
  return Status::Ok();
}

}  // namespace nbp::rt

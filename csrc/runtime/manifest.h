// manifest.json of an export folder (written by export/to_trt.py): what the graphs are, their
// inputs and outputs, the block layout and the sampling defaults. load_manifest() checks every field
// it reads and that the numbers agree with each other; it does not open the graph files.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "status.h"

namespace nbp::rt {

constexpr int kManifestFormatVersion = 1;

enum class ElemType { kFloat32, kFloat16, kBFloat16, kInt64, kInt32, kUnknown };
const char* elem_type_name(ElemType t);
size_t elem_size(ElemType t);

// One input or output. A dimension of -1 is dynamic (a named symbol in the manifest).
struct TensorSpec {
  std::string name;
  ElemType type = ElemType::kUnknown;
  std::vector<int64_t> shape;
};

struct GraphSpec {
  std::string onnx;    // file name inside the folder
  std::string engine;  // TensorRT plan, empty when none was built
  std::vector<TensorSpec> inputs, outputs;
};

// Where the condition tokens come from (kNone: an unconditional model, no prefix, P = 0).
enum class PrefixKind { kClass, kFrames, kNone };

struct ModelSpec {
  int64_t vocab_size = 0;
  int64_t num_layers = 0, kv_heads = 0, head_dim = 0;
  int64_t grid[3] = {0, 0, 0};         // latent (T', H', W')
  int64_t block_shape[3] = {0, 0, 0};  // (bt, bh, bw)
  int64_t block_len = 0;               // L
  int64_t num_blocks = 0;              // video blocks per clip
  int64_t max_cache_len = 0;           // positions held by the step graph's caches
  int64_t first_block_position = 0;    // absolute position of the input block of step 1
  // Hybrid start: the prefill covers the prefix and one start token, and block 0 is drawn token by
  // token through the token-step graph (its tokens at P + 1 .. P + L - 1); else a learned start
  // block of L positions.
  bool hybrid_start = false;
  int64_t start_len() const { return hybrid_start ? 1 : block_len; }

  PrefixKind prefix_kind = PrefixKind::kClass;
  int64_t prefix_len = 0;     // P
  int64_t num_classes = 0;    // class prefix: ids 0..num_classes-1
  int64_t null_class = -1;    // class prefix: id of the unconditional stream
  int64_t context_frames = 0; // frames prefix: latent frames given as context

  int64_t graph_batch = 0;    // rows of every graph (max_batch * streams)
  int64_t max_batch = 0;      // videos per run of the graphs
  bool unconditional_stream = false;  // graphs carry a second (unconditional) stream of max_batch rows
};

struct VideoSpec {
  int64_t frames = 0, height = 0, width = 0;
  int64_t fps = 8;
};

struct SamplingDefaults {
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  double guidance_scale = 1.0;
};

struct Manifest {
  std::string dir;   // the folder holding manifest.json
  std::string path;  // manifest.json itself
  std::string precision;
  std::string tensorrt_version;  // TensorRT that built the engines ("11.4.0"); empty when there are none
  ModelSpec model;
  VideoSpec video;
  SamplingDefaults sampling;
  GraphSpec prefill, step, decoder, encoder;  // encoder: onnx empty unless the prefix is frames
  GraphSpec token_step;                       // onnx empty unless the start is hybrid
  std::map<std::string, std::string> sha256;  // file name -> hex digest

  std::string file(const std::string& name) const { return dir + "/" + name; }
};

// Reads and checks `dir`/manifest.json. Errors name the file and the key (ExitCode::kManifest).
Status load_manifest(const std::string& dir, Manifest* out);

// Checks the SHA-256 of `name` against the manifest (ExitCode::kEngine on mismatch).
Status verify_file(const Manifest& m, const std::string& name);

}  // namespace nbp::rt

// checkpoint.h — the file a training run leaves behind and resumes from (notes/design.md "Files
// users keep").
//
// A checkpoint is a generic container: an ordered list of key -> value strings ("meta": the model
// configuration, the step, RNG and data-cursor state, a tokenizer fingerprint, ...) and an ordered
// list of named tensors (parameters, AdamW moments, ...). This file does not know what a model is;
// the trainer decides the names and checks what it reads back. Keeping the container dumb means
// adding a field to the trainer never changes the file format.
//
// The byte layout is documented field by field in notes/checkpoint-format.md. In short:
//   "MOECKPT\0" | u32 version | meta entries | tensors | u64 FNV-1a hash | "MOEEND\0\0"
// all integers little-endian. The end magic tells a truncated file (an interrupted copy) from a
// complete one, and the hash tells a complete file whose bytes changed afterwards ("corrupt").
//
// Guarantees:
//   - save_checkpoint is atomic: it writes `path.tmp`, flushes and fsyncs it, then renames it over
//     `path`. Whatever fails (disk full, a crash, a kill -9), `path` holds either the old complete
//     file or the new complete file, never a mix (notes/design.md: bad input never corrupts a
// checkpoint).
//   - load_checkpoint never trusts a length it reads: every length is checked against the bytes
//     left in the file before anything is allocated, so a corrupt file gives an error, not a
//     crash or a 100 GB allocation. Every error message names the file.
//
// Left out on purpose: compression, memory-mapping, partial loads of one tensor, and big-endian
// hosts (the tensor bytes are written as they sit in memory; both checks refuse a big-endian host
// with a clear message instead of writing a file no one else can read).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace moe {

// The one format version this build writes and reads. Bump it when the byte layout changes, and
// keep the reader for the old version, so checkpoints from older builds stay loadable.
constexpr uint32_t kCheckpointFormatVersion = 1;

struct Checkpoint {
  // Ordered key -> value strings. Values are arbitrary bytes (may hold '\0' or newlines); numbers
  // are stored as text the trainer formats and parses itself (std::to_string, "%.17g" ...).
  std::vector<std::pair<std::string, std::string>> meta;
  // Ordered named tensors, any dtype. After load_checkpoint they are contiguous CPU tensors that
  // do not require grad; save_checkpoint accepts any device and any view.
  std::vector<std::pair<std::string, Tensor>> tensors;
  // The file this came from (set by load_checkpoint), so that lookups can name it in errors.
  // Empty for a checkpoint built in memory.
  std::string path;

  bool has_meta(const std::string& key) const;
  // CHECK-fails, naming the key and the file, when the key is absent.
  const std::string& get_meta(const std::string& key) const;
  // Replaces the value of an existing key in place (keeping its position), else appends.
  void set_meta(const std::string& key, const std::string& value);

  bool has_tensor(const std::string& name) const;
  // CHECK-fails, naming the tensor, the file and a few of the names it does hold.
  const Tensor& get_tensor(const std::string& name) const;
  // CHECK-fails on an empty name, a name already present, or an undefined tensor. The tensor is
  // kept as given (shared, not copied): save_checkpoint reads it when it writes.
  void add_tensor(const std::string& name, const Tensor& t);
};

// Write `ck` to `path` atomically (see above). Creates the parent directory if it is missing.
// Device tensors are copied to the CPU one at a time, and views are written as their logical
// (packed, row-major) values. CHECK-fails, naming the file, on duplicate or empty names, undefined
// tensors, or any I/O error; in every failing case `path` is left as it was and `path.tmp` is
// removed.
void save_checkpoint(const std::string& path, const Checkpoint& ck);

// Read and validate a checkpoint: the file exists, starts with the magic, has a version this
// build reads, ends with the footer (else "truncated"), every length fits in the file, and the
// content hash matches (else "corrupt"). The result's `path` is set to `path`.
Checkpoint load_checkpoint(const std::string& path);

// For resuming: CHECK that, for every (key, value) in `expected`, the checkpoint has the key with
// exactly that value. Keys of the checkpoint that are not in `expected` are ignored. On failure
// one message lists every mismatching key, one per line, as
//   "key: checkpoint has X, this run has Y (--flag)"
// followed by a HINT on how to resume or start afresh. `path` is only used in the message.
// `flag_of` (optional) names the program flag that sets a key ("n-layer" -> "--n-layer", or a
// phrase such as "the tokenizer: --bpe-dir, --vocab-size, --data"); the container itself knows no
// flags. When a key's flag is a single "--name", the HINT spells out the checkpoint's values.
void check_meta_matches(const Checkpoint& ck, const std::string& path,
                        const std::vector<std::pair<std::string, std::string>>& expected,
                        const std::function<std::string(const std::string&)>& flag_of = nullptr);

}  // namespace moe

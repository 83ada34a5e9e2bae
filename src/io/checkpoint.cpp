// checkpoint.cpp — writing and reading the checkpoint container of checkpoint.h.
//
// The byte layout is in notes/checkpoint-format.md; this file follows it top to bottom.
// Two design points worth reading before the code:
//   - Streaming, not buffering. A 125M-parameter model with its two AdamW moments is ~1.5 GB, so
//     neither side builds the whole file in memory: the writer streams each tensor (copied to the
//     CPU one at a time) and the reader reads each tensor's bytes straight into its new storage.
//     Both feed every byte through the FNV-1a hash as it passes, so the hash costs no second pass.
//   - Validate before allocating. The reader first checks the start magic, the version and the
//     end magic (so a truncated file is reported as truncated, with the hint to use the previous
//     checkpoint, instead of as a confusing length error), then parses the body against a hard
//     end: a length larger than the bytes left before the footer is an error *before* any memory
//     is allocated for it. With the footer present the file is complete, so a bad length there
//     means the bytes changed: those errors say "corrupt".
#include "io/checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>

#include <fcntl.h>   // open (to fsync the directory)
#include <unistd.h>  // fsync, fileno, close

namespace moe {

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// format constants (notes/checkpoint-format.md)

constexpr char kMagic[8] = {'M', 'O', 'E', 'C', 'K', 'P', 'T', '\0'};
constexpr char kEndMagic[8] = {'M', 'O', 'E', 'E', 'N', 'D', '\0', '\0'};
constexpr uint64_t kFooterBytes = 16;  // u64 hash + end magic
// The smallest valid file: magic, version, meta count 0, tensor count 0, footer.
constexpr uint64_t kMinFileBytes = 8 + 4 + 4 + 4 + kFooterBytes;

constexpr uint64_t kFnvOffsetBasis = 0xCBF29CE484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001B3ull;

// FNV-1a 64: for each byte, h = (h XOR byte) * prime. Not cryptographic; it only has to notice
// accidental changes (a flipped bit, a block of zeros), and it is simple enough to re-implement
// in a few lines of any language that wants to verify our files.
uint64_t fnv1a_update(uint64_t h, const void* data, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * kFnvPrime;
  return h;
}

// Tensor bytes are written as they sit in memory, which is little-endian on every host we build
// for (x86-64, aarch64). Refuse the exotic case instead of writing a file that reads back wrong.
void check_little_endian_host(const std::string& path) {
  const uint32_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  CHECK(first == 1, "checkpoint '", path, "': this host is big-endian; the checkpoint format is ",
        "little-endian and this build does not convert");
}

// Disk codes of the dtypes, spelled out rather than cast from the enum so that reordering or
// extending DType can never silently change what old files mean.
uint8_t dtype_code(DType dt) {
  switch (dt) {
    case DType::F32: return 0;
    case DType::F64: return 1;
    case DType::I32: return 2;
  }
  ASSERT_INTERNAL(false, "dtype without a checkpoint code");
  return 0;
}

bool dtype_from_code(uint8_t code, DType* dt) {
  if (code == 0) *dt = DType::F32;
  else if (code == 1) *dt = DType::F64;
  else if (code == 2) *dt = DType::I32;
  else return false;
  return true;
}

std::string errno_text() { return std::strerror(errno); }

// ---------------------------------------------------------------------------------------------
// writing

// Appends to the temporary file, hashing every byte it writes. Errors name the final path (the
// one the user asked for) and the temporary file actually being written.
struct HashingWriter {
  std::FILE* f = nullptr;
  std::string path;  // the final checkpoint path, for messages
  std::string tmp;   // the file being written
  uint64_t hash = kFnvOffsetBasis;

  void bytes(const void* data, size_t n) {
    if (n == 0) return;  // the data pointer of an empty tensor may be null
    CHECK(std::fwrite(data, 1, n, f) == n, "cannot save checkpoint '", path, "': writing '", tmp,
          "' failed: ", errno_text(), ". HINT: is the disk full? The previous checkpoint at '",
          path, "' (if any) is untouched");
    hash = fnv1a_update(hash, data, n);
  }
  // Little-endian by construction (byte k holds bits 8k..8k+7), whatever the host.
  void uint(uint64_t v, int nbytes) {
    unsigned char b[8];
    for (int k = 0; k < nbytes; ++k) b[k] = static_cast<unsigned char>(v >> (8 * k));
    bytes(b, static_cast<size_t>(nbytes));
  }
  void string(const std::string& s) {
    uint(s.size(), 4);
    bytes(s.data(), s.size());
  }
};

// Everything that could make the file unreadable is refused before the temporary file is even
// opened: the loader rejects duplicate names, and lengths must fit the u32/u8 fields.
void validate_for_save(const std::string& path, const Checkpoint& ck) {
  const uint64_t u32_max = std::numeric_limits<uint32_t>::max();
  CHECK(ck.meta.size() <= u32_max && ck.tensors.size() <= u32_max, "cannot save checkpoint '",
        path, "': too many entries for the u32 counts of the format");
  std::set<std::string> seen;
  for (const auto& kv : ck.meta) {
    CHECK(!kv.first.empty(), "cannot save checkpoint '", path, "': a meta key is empty");
    CHECK(seen.insert(kv.first).second, "cannot save checkpoint '", path,
          "': duplicate meta key '", kv.first, "'. HINT: use Checkpoint::set_meta, which replaces");
    CHECK(kv.first.size() <= u32_max && kv.second.size() <= u32_max, "cannot save checkpoint '",
          path, "': meta entry '", kv.first, "' is longer than 4 GiB");
  }
  seen.clear();
  for (const auto& nt : ck.tensors) {
    CHECK(!nt.first.empty(), "cannot save checkpoint '", path, "': a tensor name is empty");
    CHECK(seen.insert(nt.first).second, "cannot save checkpoint '", path,
          "': duplicate tensor name '", nt.first, "'");
    CHECK(nt.first.size() <= u32_max, "cannot save checkpoint '", path, "': a tensor name is ",
          "longer than 4 GiB");
    CHECK(nt.second.defined(), "cannot save checkpoint '", path, "': tensor '", nt.first,
          "' is undefined");
    CHECK(nt.second.dim() <= 255, "cannot save checkpoint '", path, "': tensor '", nt.first,
          "' has ", nt.second.dim(), " dimensions; the format stores at most 255");
  }
}

// One tensor record: name, dtype, ndim, dims, byte count, the packed row-major values.
void write_tensor(HashingWriter& w, const std::string& name, const Tensor& t) {
  // Device tensors are packed where they live, then copied over; a CPU view is packed by
  // contiguous(). Either way what is written is the logical value of the tensor, not its storage.
  Tensor host = t.device().is_cpu() ? t.contiguous() : t.contiguous().to(cpu());
  w.string(name);
  w.uint(dtype_code(host.dtype()), 1);
  w.uint(static_cast<uint64_t>(host.dim()), 1);
  for (int64_t d : host.shape()) w.uint(static_cast<uint64_t>(d), 8);  // i64, two's complement
  const uint64_t nbytes = static_cast<uint64_t>(host.numel()) * dtype_size(host.dtype());
  w.uint(nbytes, 8);
  w.bytes(host.raw_data(), nbytes);
}

// Header, meta, tensors, footer: the whole file, in the order of notes/checkpoint-format.md.
void write_contents(HashingWriter& w, const Checkpoint& ck) {
  w.bytes(kMagic, sizeof(kMagic));
  w.uint(kCheckpointFormatVersion, 4);
  w.uint(ck.meta.size(), 4);
  for (const auto& kv : ck.meta) {
    w.string(kv.first);
    w.string(kv.second);
  }
  w.uint(ck.tensors.size(), 4);
  for (const auto& nt : ck.tensors) write_tensor(w, nt.first, nt.second);
  const uint64_t hash = w.hash;  // covers every byte before the footer
  w.uint(hash, 8);
  w.bytes(kEndMagic, sizeof(kEndMagic));
}

// After the rename, fsync the directory so the new directory entry itself survives a power cut
// (POSIX makes the rename durable only then). Best effort: some file systems refuse to open or
// sync a directory, and the checkpoint is already complete and in place, so failures are ignored.
void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY);
  if (fd < 0) return;  // ignored on purpose, see above
  (void)::fsync(fd);   // ignored on purpose, see above
  ::close(fd);
}

// Create the parent directory of `path` if it is missing, e.g. a fresh --out-dir.
void make_parent_directory(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  fs::create_directories(parent, ec);
  CHECK(!ec && fs::is_directory(parent), "cannot save checkpoint '", path,
        "': cannot create the directory '", parent.string(), "': ",
        ec ? ec.message() : std::string("a file of that name exists"),
        ". HINT: choose another --out-dir, or fix its permissions");
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  check_little_endian_host(path);
  validate_for_save(path, ck);
  make_parent_directory(path);

  HashingWriter w;
  w.path = path;
  w.tmp = path + ".tmp";
  w.f = std::fopen(w.tmp.c_str(), "wb");
  CHECK(w.f != nullptr, "cannot save checkpoint '", path, "': cannot create '", w.tmp, "': ",
        errno_text(), ". HINT: check that the directory is writable");
  try {
    write_contents(w, ck);
    // fflush moves our buffer to the kernel; fsync moves the kernel's to the disk. Only then is
    // it safe to let the new file replace the old one.
    CHECK(std::fflush(w.f) == 0 && ::fsync(fileno(w.f)) == 0, "cannot save checkpoint '", path,
          "': flushing '", w.tmp, "' failed: ", errno_text(), ". HINT: is the disk full?");
    std::FILE* f = w.f;
    w.f = nullptr;
    CHECK(std::fclose(f) == 0, "cannot save checkpoint '", path, "': closing '", w.tmp,
          "' failed: ", errno_text());
    CHECK(std::rename(w.tmp.c_str(), path.c_str()) == 0, "cannot save checkpoint '", path,
          "': renaming '", w.tmp, "' over it failed: ", errno_text(),
          ". HINT: is '", path, "' a directory, or the directory read-only?");
  } catch (...) {
    // Leave no half-written temporary behind; `path` itself was never opened.
    if (w.f != nullptr) std::fclose(w.f);
    std::remove(w.tmp.c_str());
    throw;
  }
  sync_directory(fs::path(path).parent_path());
}

// ---------------------------------------------------------------------------------------------
// reading

namespace {

// Reads the body of the file (everything between the version field and the footer), hashing
// every byte. `end` is the offset of the footer: no read may cross it, and no allocation is made
// for a length before checking that it fits in the bytes left.
struct HashingReader {
  std::FILE* f = nullptr;
  std::string path;
  uint64_t pos = 0;  // offset of the next byte to read
  uint64_t end = 0;  // offset of the footer
  uint64_t hash = kFnvOffsetBasis;

  uint64_t left() const { return end - pos; }

  // `what` names the field for the message, e.g. "the name of tensor 3".
  void need(uint64_t n, const std::string& what) const {
    CHECK(n <= left(), "checkpoint '", path, "' is corrupt: ", what, " needs ", n,
          " bytes at offset ", pos, " but only ", left(), " bytes are left before the footer. ",
          "HINT: use the previous checkpoint, or copy the file again");
  }
  void bytes(void* data, uint64_t n, const std::string& what) {
    need(n, what);
    if (n == 0) return;
    CHECK(std::fread(data, 1, n, f) == n, "cannot read checkpoint '", path, "': read error at ",
          "offset ", pos, ": ", errno_text());
    hash = fnv1a_update(hash, data, n);
    pos += n;
  }
  uint64_t uint(int nbytes, const std::string& what) {
    unsigned char b[8];
    bytes(b, static_cast<uint64_t>(nbytes), what);
    uint64_t v = 0;
    for (int k = 0; k < nbytes; ++k) v |= static_cast<uint64_t>(b[k]) << (8 * k);
    return v;
  }
  std::string string(const std::string& what) {
    const uint64_t n = uint(4, str_cat("the length of ", what));
    need(n, what);  // before allocating n bytes
    std::string s(n, '\0');
    bytes(&s[0], n, what);
    return s;
  }
};

// Reads exactly n bytes at `offset` outside the hashing reader (header and footer checks).
// Returns how many bytes were actually there.
size_t read_at(std::FILE* f, uint64_t offset, void* out, size_t n) {
  if (::fseeko(f, static_cast<off_t>(offset), SEEK_SET) != 0) return 0;
  return std::fread(out, 1, n, f);
}

uint32_t le_u32(const unsigned char* b) {
  return static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
         static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
}

// Thrown directly (not through CHECK) only so the compiler can see this never returns.
[[noreturn]] void fail_truncated(const std::string& path, uint64_t size, const char* missing) {
  throw Error(str_cat("checkpoint '", path, "' is truncated: the file is ", size, " bytes and ",
                      missing, ". HINT: the run (or the copy) that wrote it was probably ",
                      "interrupted; use the previous checkpoint"));
}

// "0x1234abcd..." for hashes in messages.
std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Open the file with a message for each way that fails, and return its size.
std::FILE* open_for_reading(const std::string& path, uint64_t* size) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  CHECK(fs::exists(st), "cannot load checkpoint '", path, "': no such file. HINT: check the ",
        "path; checkpoints are written into the run's --out-dir");
  CHECK(!fs::is_directory(st), "cannot load checkpoint '", path, "': it is a directory. HINT: ",
        "pass the checkpoint file inside it");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  CHECK(f != nullptr, "cannot load checkpoint '", path, "': cannot open it: ", errno_text(),
        ". HINT: check the file's permissions");
  const uintmax_t n = fs::file_size(path, ec);
  if (ec) std::fclose(f);
  CHECK(!ec, "cannot load checkpoint '", path, "': cannot read its size: ", ec.message());
  *size = static_cast<uint64_t>(n);
  return f;
}

// Magic, version, end magic — in that order, so each kind of bad file gets its own message.
// Leaves the reader positioned after the version field, with those 12 bytes already hashed.
void check_envelope(HashingReader& r, uint64_t size) {
  const std::string& path = r.path;
  unsigned char head[12] = {0};
  const size_t got = read_at(r.f, 0, head, sizeof(head));
  const size_t magic_got = got < 8 ? got : 8;
  // A file shorter than the magic that starts like one (an empty file included) was cut short;
  // anything else that does not start with the magic is some other kind of file.
  CHECK(std::memcmp(head, kMagic, magic_got) == 0, "checkpoint '", path, "' is not a moe-gpt ",
        "checkpoint: it does not start with the magic \"MOECKPT\". HINT: pass a file written by ",
        "moe-gpt's train (a PyTorch .pt or a safetensors file cannot be read)");
  if (got < sizeof(head)) fail_truncated(path, size, "ends inside the header");
  const uint32_t version = le_u32(head + 8);
  CHECK(version == kCheckpointFormatVersion, "checkpoint '", path, "' has format version ",
        version, "; this build reads version ", kCheckpointFormatVersion, " only. HINT: ",
        version > kCheckpointFormatVersion ? "it was written by a newer moe-gpt; load it with that "
                                             "build"
                                           : "the file is probably corrupt; use another checkpoint");
  if (size < kMinFileBytes) fail_truncated(path, size, "is too short to hold the footer");
  unsigned char end_magic[8];
  if (read_at(r.f, size - 8, end_magic, 8) != 8 ||
      std::memcmp(end_magic, kEndMagic, 8) != 0) {
    fail_truncated(path, size, "does not end with the footer magic \"MOEEND\"");
  }
  r.hash = fnv1a_update(r.hash, head, sizeof(head));
  r.pos = sizeof(head);
  r.end = size - kFooterBytes;
  CHECK(::fseeko(r.f, static_cast<off_t>(r.pos), SEEK_SET) == 0, "cannot read checkpoint '",
        path, "': seek failed: ", errno_text());
}

// numel of a shape read from disk, refusing negative dims and products that overflow.
bool checked_numel(const Shape& shape, int64_t* numel) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return false;
    n *= d;
  }
  *numel = n;
  return true;
}

// One tensor record. Every length is checked against the bytes left before allocating.
std::pair<std::string, Tensor> read_tensor(HashingReader& r, uint32_t index) {
  const std::string what = str_cat("tensor ", index);
  std::string name = r.string(str_cat("the name of ", what));
  const std::string where = str_cat("tensor '", name, "'");
  const uint8_t code = static_cast<uint8_t>(r.uint(1, str_cat("the dtype of ", where)));
  DType dt = DType::F32;
  CHECK(dtype_from_code(code, &dt), "checkpoint '", r.path, "' is corrupt: ", where,
        " has dtype code ", static_cast<int>(code), " (this build knows 0 f32, 1 f64, 2 i32)");
  const int ndim = static_cast<int>(r.uint(1, str_cat("the rank of ", where)));
  r.need(static_cast<uint64_t>(ndim) * 8, str_cat("the shape of ", where));
  Shape shape(static_cast<size_t>(ndim));
  for (int64_t& d : shape) d = static_cast<int64_t>(r.uint(8, str_cat("the shape of ", where)));
  int64_t numel = 0;
  CHECK(checked_numel(shape, &numel) &&
            numel <= std::numeric_limits<int64_t>::max() / static_cast<int64_t>(dtype_size(dt)),
        "checkpoint '", r.path, "' is corrupt: ", where, " has an impossible shape ",
        shape_str(shape));
  const uint64_t nbytes = r.uint(8, str_cat("the byte count of ", where));
  const uint64_t expected = static_cast<uint64_t>(numel) * dtype_size(dt);
  CHECK(nbytes == expected, "checkpoint '", r.path, "' is corrupt: ", where, " is ",
        dtype_name(dt), shape_str(shape), ", which is ", expected, " bytes, but the file says ",
        nbytes);
  r.need(nbytes, str_cat("the data of ", where));  // before allocating
  Tensor t = Tensor::empty(shape, dt);
  r.bytes(t.raw_data(), nbytes, str_cat("the data of ", where));
  return {std::move(name), std::move(t)};
}

// Meta entries and tensors, rejecting duplicate names (save never writes them).
void read_body(HashingReader& r, Checkpoint* ck) {
  const uint32_t n_meta = static_cast<uint32_t>(r.uint(4, "the number of meta entries"));
  std::set<std::string> seen;
  for (uint32_t i = 0; i < n_meta; ++i) {
    std::string key = r.string(str_cat("the key of meta entry ", i));
    std::string value = r.string(str_cat("the value of meta entry '", key, "'"));
    CHECK(seen.insert(key).second, "checkpoint '", r.path, "' is corrupt: meta key '", key,
          "' appears twice");
    ck->meta.emplace_back(std::move(key), std::move(value));
  }
  const uint32_t n_tensors = static_cast<uint32_t>(r.uint(4, "the number of tensors"));
  seen.clear();
  for (uint32_t i = 0; i < n_tensors; ++i) {
    std::pair<std::string, Tensor> nt = read_tensor(r, i);
    CHECK(seen.insert(nt.first).second, "checkpoint '", r.path, "' is corrupt: tensor '",
          nt.first, "' appears twice");
    ck->tensors.push_back(std::move(nt));
  }
  CHECK(r.left() == 0, "checkpoint '", r.path, "' is corrupt: ", r.left(), " unexpected bytes ",
        "between the last tensor and the footer. HINT: use the previous checkpoint");
}

// The stored hash must equal the hash of everything read before it.
void check_footer_hash(HashingReader& r) {
  unsigned char b[8];
  CHECK(std::fread(b, 1, 8, r.f) == 8, "cannot read checkpoint '", r.path, "': read error in ",
        "the footer: ", errno_text());
  uint64_t stored = 0;
  for (int k = 0; k < 8; ++k) stored |= static_cast<uint64_t>(b[k]) << (8 * k);
  CHECK(stored == r.hash, "checkpoint '", r.path, "' is corrupt: the FNV-1a hash of its contents ",
        "is ", hex64(r.hash), " but the footer records ", hex64(stored),
        " (its bytes changed after it was written). HINT: use the previous checkpoint, or copy ",
        "the file again");
}

}  // namespace

Checkpoint load_checkpoint(const std::string& path) {
  check_little_endian_host(path);
  uint64_t size = 0;
  HashingReader r;
  r.path = path;
  r.f = open_for_reading(path, &size);
  Checkpoint ck;
  try {
    check_envelope(r, size);
    read_body(r, &ck);
    check_footer_hash(r);
  } catch (...) {
    std::fclose(r.f);
    throw;
  }
  std::fclose(r.f);
  ck.path = path;
  return ck;
}

// ---------------------------------------------------------------------------------------------
// lookups

namespace {

// "in checkpoint 'x.bin'" or, for one built in memory, "in the checkpoint".
std::string where_from(const Checkpoint& ck) {
  return ck.path.empty() ? std::string("in the checkpoint") : str_cat("in checkpoint '", ck.path,
                                                                      "'");
}

// The first few tensor names, so that a renamed parameter is easy to spot in an error.
std::string names_preview(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  if (tensors.empty()) return "no tensors";
  std::string some;
  const size_t shown = tensors.size() < 8 ? tensors.size() : 8;
  for (size_t i = 0; i < shown; ++i) some += (i ? ", " : "") + tensors[i].first;
  if (tensors.size() > shown) some += str_cat(", ... (", tensors.size(), " in all)");
  return some;
}

}  // namespace

bool Checkpoint::has_meta(const std::string& key) const {
  for (const auto& kv : meta) {
    if (kv.first == key) return true;
  }
  return false;
}

const std::string& Checkpoint::get_meta(const std::string& key) const {
  auto it = std::find_if(meta.begin(), meta.end(), [&](const auto& kv) { return kv.first == key; });
  CHECK(it != meta.end(), "no meta entry '", key, "' ", where_from(*this), ". HINT: it was ",
        "written by a build that did not record '", key, "'; start a new run instead of resuming");
  return it->second;
}

void Checkpoint::set_meta(const std::string& key, const std::string& value) {
  for (auto& kv : meta) {
    if (kv.first == key) {
      kv.second = value;
      return;
    }
  }
  meta.emplace_back(key, value);
}

bool Checkpoint::has_tensor(const std::string& name) const {
  for (const auto& nt : tensors) {
    if (nt.first == name) return true;
  }
  return false;
}

const Tensor& Checkpoint::get_tensor(const std::string& name) const {
  auto it = std::find_if(tensors.begin(), tensors.end(),
                         [&](const auto& nt) { return nt.first == name; });
  // CHECK evaluates its message only on failure, so the name list costs nothing on success.
  CHECK(it != tensors.end(), "no tensor '", name, "' ", where_from(*this), "; it holds: ",
        names_preview(tensors), ". HINT: was it written for a different model (--model, ",
        "--n-layer, --d-model, --moe-experts, --moe-freq)?");
  return it->second;
}

void Checkpoint::add_tensor(const std::string& name, const Tensor& t) {
  CHECK(!name.empty(), "add_tensor: the tensor name is empty");
  CHECK(t.defined(), "add_tensor: tensor '", name, "' is undefined");
  CHECK(!has_tensor(name), "add_tensor: a tensor named '", name, "' is already ",
        where_from(*this));
  tensors.emplace_back(name, t);
}

void check_meta_matches(const Checkpoint& ck, const std::string& path,
                        const std::vector<std::pair<std::string, std::string>>& expected,
                        const std::function<std::string(const std::string&)>& flag_of) {
  auto shown = [](const std::string& v) { return v.empty() ? std::string("(empty)") : v; };
  std::string mismatches, resume_with;
  for (const auto& kv : expected) {
    const bool has = ck.has_meta(kv.first);
    if (has && ck.get_meta(kv.first) == kv.second) continue;
    const std::string flag = flag_of ? flag_of(kv.first) : std::string();
    mismatches += str_cat("\n  ", kv.first, ": checkpoint has ",
                          has ? shown(ck.get_meta(kv.first)) : std::string("no value"),
                          ", this run has ", shown(kv.second), flag.empty() ? "" : " (", flag,
                          flag.empty() ? "" : ")");
    // A flag that takes the value as is ("--n-layer") can be spelled out for the user.
    if (has && flag.rfind("--", 0) == 0 && flag.find(' ') == std::string::npos)
      resume_with += str_cat(" ", flag, " ", ck.get_meta(kv.first));
  }
  CHECK(mismatches.empty(), "checkpoint '", path, "' was written with a different ",
        "configuration:", mismatches, "\nHINT: ",
        resume_with.empty() ? std::string("pass the flags of the run that wrote it (--model, "
                                          "--n-layer, --d-model, --n-head, --seq-len, "
                                          "--moe-experts, --moe-freq, ...)")
                            : str_cat("resume with the checkpoint's values:", resume_with),
        ", or start a new run without --resume (with --overwrite, or a different --out-dir)");
}

}  // namespace moe

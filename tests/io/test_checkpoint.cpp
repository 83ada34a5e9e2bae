// test_checkpoint.cpp — tests of the checkpoint container (src/io/checkpoint.h).
//
// What is checked, and why each matters to a user:
//   - round trips are bitwise exact for every dtype, odd shapes (0-d, empty) and views, because a
//     resumed run must continue the same loss curve;
//   - the bytes on disk are exactly those of notes/checkpoint-format.md (one hand-built file);
//   - a save that fails midway leaves the previous checkpoint untouched (atomic rename);
//   - every damaged file (truncated anywhere, any byte flipped, lengths forged with a valid hash)
//     gives a moe::Error naming the file, never a crash or a huge allocation;
//   - configuration mismatches on resume are listed all at once.
// Every test works in its own directory under /tmp, removed afterwards.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <sys/resource.h>  // getrlimit/setrlimit, to catch huge allocations
#include <unistd.h>        // getpid (a per-process test directory), sysconf

#include "io/checkpoint.h"

namespace moe {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

// ---------------------------------------------------------------------------------------------
// helpers

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// The message of the moe::Error that f throws; records a failure (and returns "") if it does not.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a moe::Error, nothing was thrown";
  return "";
}

// An independent FNV-1a 64 (the test does not reuse the code under test).
uint64_t fnv1a(const Bytes& b, size_t n) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

// Recompute the footer hash after editing the body, so that only the length checks can notice.
void fix_footer_hash(Bytes* b) {
  const size_t at = b->size() - 16;
  const uint64_t h = fnv1a(*b, at);
  for (int k = 0; k < 8; ++k) (*b)[at + k] = static_cast<unsigned char>(h >> (8 * k));
}

void put_u32(Bytes* b, size_t at, uint32_t v) {
  if (at + 4 > b->size()) {
    ADD_FAILURE() << "put_u32 at " << at << " is past the end of a " << b->size() << "-byte file";
    return;
  }
  for (int k = 0; k < 4; ++k) (*b)[at + k] = static_cast<unsigned char>(v >> (8 * k));
}

// Same dtype, same shape, and the same bytes of their logical values.
void expect_bitwise_equal(const Tensor& a, const Tensor& b, const std::string& name) {
  ASSERT_EQ(a.dtype(), b.dtype()) << name;
  ASSERT_EQ(a.shape(), b.shape()) << name;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  const size_t n = static_cast<size_t>(a.numel()) * dtype_size(a.dtype());
  if (n > 0) {
    EXPECT_EQ(std::memcmp(ca.raw_data(), cb.raw_data(), n), 0) << name;
  }
}

// Values chosen to catch any conversion on the way: -0, NaN with a payload, infinities,
// denormals, extremes.
Checkpoint sample_checkpoint() {
  Checkpoint ck;
  ck.set_meta("model", "tiny");
  ck.set_meta("step", "1234");
  ck.set_meta("rng", std::string("\0\x01 binary\nstate\xff", 16));
  ck.set_meta("empty", "");
  uint32_t nan_bits = 0x7FC01234u;
  float nan_payload;
  std::memcpy(&nan_payload, &nan_bits, 4);
  ck.add_tensor("f32", Tensor::from_f32({-0.0f, nan_payload, INFINITY, -INFINITY,
                                         std::numeric_limits<float>::denorm_min(), 3.25f},
                                        {2, 3}));
  ck.add_tensor("f64", Tensor::from_f64({0.1, -1e300, std::numeric_limits<double>::denorm_min()},
                                        {3}));
  ck.add_tensor("i32", Tensor::from_i32({std::numeric_limits<int32_t>::min(), -1, 0,
                                         std::numeric_limits<int32_t>::max()},
                                        {2, 2}));
  ck.add_tensor("scalar", Tensor::from_f32({42.5f}, {}));
  ck.add_tensor("empty", Tensor::empty({0}, DType::F64));
  ck.add_tensor("empty3d", Tensor::empty({2, 0, 3}, DType::I32));
  return ck;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = str_cat("/tmp/moe_ckpt_test_", ::getpid(), "_", info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

// ---------------------------------------------------------------------------------------------
// round trips and layout

TEST_F(CheckpointTest, RoundTripIsBitwiseEqual) {
  const Checkpoint ck = sample_checkpoint();
  save_checkpoint(file("ck.bin"), ck);
  const Checkpoint back = load_checkpoint(file("ck.bin"));
  EXPECT_EQ(back.path, file("ck.bin"));
  EXPECT_EQ(back.meta, ck.meta);  // same keys, values (incl. '\0' bytes) and order
  ASSERT_EQ(back.tensors.size(), ck.tensors.size());
  for (size_t i = 0; i < ck.tensors.size(); ++i) {
    EXPECT_EQ(back.tensors[i].first, ck.tensors[i].first);
    expect_bitwise_equal(back.tensors[i].second, ck.tensors[i].second, ck.tensors[i].first);
    EXPECT_TRUE(back.tensors[i].second.device().is_cpu());
    EXPECT_FALSE(back.tensors[i].second.requires_grad());
  }
  EXPECT_EQ(back.get_tensor("scalar").dim(), 0);
  EXPECT_EQ(back.get_tensor("scalar").item(), 42.5);
}

TEST_F(CheckpointTest, NonContiguousViewsAreSavedAsTheirLogicalValues) {
  std::vector<float> v(12);
  for (int i = 0; i < 12; ++i) v[i] = static_cast<float>(i) + 0.5f;
  const Tensor base = Tensor::from_f32(v, {3, 4});
  const Tensor transposed = base.transpose_view(0, 1);                // (4, 3), strides (1, 4)
  const Tensor sliced = base.slice_view(1, 1, 3).transpose_view(0, 1);  // (2, 3), offset 1
  ASSERT_FALSE(transposed.is_contiguous());
  Checkpoint ck;
  ck.add_tensor("t", transposed);
  ck.add_tensor("s", sliced);
  save_checkpoint(file("ck.bin"), ck);
  const Checkpoint back = load_checkpoint(file("ck.bin"));
  for (const char* name : {"t", "s"}) {
    const Tensor& want = ck.get_tensor(name);
    const Tensor& got = back.get_tensor(name);
    ASSERT_EQ(got.shape(), want.shape()) << name;
    EXPECT_TRUE(got.is_contiguous()) << name;
    for (int64_t i = 0; i < want.size(0); ++i) {
      for (int64_t j = 0; j < want.size(1); ++j) {
        EXPECT_EQ(got.at({i, j}), want.at({i, j})) << name << "[" << i << "][" << j << "]";
      }
    }
  }
}

// One small file built by hand from notes/checkpoint-format.md: if the doc and the code ever
// disagree, this fails.
TEST_F(CheckpointTest, BytesOnDiskMatchTheDocumentedLayout) {
  Checkpoint ck;
  ck.set_meta("a", "bc");
  ck.add_tensor("w", Tensor::from_i32({1, -2}, {2}));
  save_checkpoint(file("ck.bin"), ck);
  const Bytes want_body = {
      'M', 'O', 'E', 'C', 'K', 'P', 'T', 0,  // magic
      1, 0, 0, 0,                            // format version 1
      1, 0, 0, 0,                            // 1 meta entry
      1, 0, 0, 0, 'a',                       //   key "a"
      2, 0, 0, 0, 'b', 'c',                  //   value "bc"
      1, 0, 0, 0,                            // 1 tensor
      1, 0, 0, 0, 'w',                       //   name "w"
      2,                                     //   dtype i32
      1,                                     //   ndim 1
      2, 0, 0, 0, 0, 0, 0, 0,                //   dims[0] = 2
      8, 0, 0, 0, 0, 0, 0, 0,                //   byte count 8
      1, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF,    //   data {1, -2}
  };
  Bytes want = want_body;
  const uint64_t h = fnv1a(want_body, want_body.size());
  for (int k = 0; k < 8; ++k) want.push_back(static_cast<unsigned char>(h >> (8 * k)));
  for (char c : std::string("MOEEND\0\0", 8)) want.push_back(static_cast<unsigned char>(c));
  EXPECT_EQ(read_bytes(file("ck.bin")), want);
}

TEST_F(CheckpointTest, SaveCreatesParentDirectoriesAndLeavesNoTemporaryFile) {
  const std::string path = file("run/nested/ck.bin");
  save_checkpoint(path, sample_checkpoint());
  save_checkpoint(path, sample_checkpoint());  // replacing an existing checkpoint also works
  EXPECT_TRUE(fs::is_regular_file(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(load_checkpoint(path).get_meta("step"), "1234");
}

// ---------------------------------------------------------------------------------------------
// atomic save

// A write that fails midway: the temporary file is a link to /dev/full, where every write
// fails with ENOSPC ("disk full") once the stdio buffer is flushed, i.e. in the middle of the
// tensor data. The old checkpoint must be byte-for-byte intact and the temporary removed.
TEST_F(CheckpointTest, WriteFailingMidwayLeavesTheOldCheckpointIntact) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full on this system";
  const std::string path = file("ck.bin");
  save_checkpoint(path, sample_checkpoint());
  const Bytes old_bytes = read_bytes(path);

  Checkpoint bigger = sample_checkpoint();
  bigger.set_meta("step", "5678");
  bigger.add_tensor("big", Tensor::zeros({1 << 18}));  // 1 MiB: larger than any stdio buffer
  fs::create_symlink("/dev/full", path + ".tmp");
  const std::string msg = error_of([&] { save_checkpoint(path, bigger); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("disk full"), std::string::npos) << msg;
  EXPECT_EQ(read_bytes(path), old_bytes);
  EXPECT_FALSE(fs::exists(fs::symlink_status(path + ".tmp")));
  EXPECT_EQ(load_checkpoint(path).get_meta("step"), "1234");
}

TEST_F(CheckpointTest, DirectoryThatCannotBeCreatedIsAnErrorNamingIt) {
  write_bytes(file("not_a_dir"), {'x'});
  const std::string path = file("not_a_dir/ck.bin");
  const std::string msg = error_of([&] { save_checkpoint(path, sample_checkpoint()); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot create the directory"), std::string::npos) << msg;
  EXPECT_EQ(read_bytes(file("not_a_dir")), Bytes{'x'});
}

TEST_F(CheckpointTest, InvalidContentsAreRefusedBeforeTouchingTheFile) {
  const std::string path = file("ck.bin");
  save_checkpoint(path, sample_checkpoint());
  const Bytes old_bytes = read_bytes(path);

  Checkpoint dup_meta = sample_checkpoint();
  dup_meta.meta.emplace_back("step", "1");  // pushed directly, bypassing set_meta
  EXPECT_NE(error_of([&] { save_checkpoint(path, dup_meta); }).find("duplicate meta key 'step'"),
            std::string::npos);
  Checkpoint dup_tensor = sample_checkpoint();
  dup_tensor.tensors.emplace_back("f32", Tensor::zeros({1}));
  EXPECT_NE(error_of([&] { save_checkpoint(path, dup_tensor); }).find("duplicate tensor name"),
            std::string::npos);
  Checkpoint undefined = sample_checkpoint();
  undefined.tensors.emplace_back("ghost", Tensor());
  EXPECT_NE(error_of([&] { save_checkpoint(path, undefined); }).find("'ghost' is undefined"),
            std::string::npos);
  EXPECT_EQ(read_bytes(path), old_bytes);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

// ---------------------------------------------------------------------------------------------
// damaged files

TEST_F(CheckpointTest, TruncatedFileIsReportedAsTruncatedWithAHint) {
  const std::string good = file("good.bin"), cut = file("cut.bin");
  save_checkpoint(good, sample_checkpoint());
  const Bytes bytes = read_bytes(good);
  const size_t n = bytes.size();
  // Inside the magic, the version, the meta, the tensor data, and at every part of the footer.
  for (size_t keep : {size_t{0}, size_t{3}, size_t{8}, size_t{10}, size_t{12}, size_t{20}, n / 2,
                      n - 17, n - 16, n - 12, n - 9, n - 8, n - 3, n - 1}) {
    write_bytes(cut, Bytes(bytes.begin(), bytes.begin() + static_cast<long>(keep)));
    const std::string msg = error_of([&] { load_checkpoint(cut); });
    EXPECT_NE(msg.find("truncated"), std::string::npos) << "kept " << keep << ": " << msg;
    EXPECT_NE(msg.find(str_cat("the file is ", keep, " bytes")), std::string::npos) << msg;
    EXPECT_NE(msg.find(cut), std::string::npos) << msg;
    EXPECT_NE(msg.find("HINT: the run"), std::string::npos) << msg;
  }
}

TEST_F(CheckpointTest, FlippedByteInTensorDataIsCorrupt) {
  const std::string path = file("ck.bin");
  Checkpoint ck;
  ck.add_tensor("w", Tensor::full({64}, 1.0));
  save_checkpoint(path, ck);
  Bytes bytes = read_bytes(path);
  bytes[bytes.size() - 16 - 100] ^= 0x04;  // one bit of one float, well inside the data
  write_bytes(path, bytes);
  const std::string msg = error_of([&] { load_checkpoint(path); });
  EXPECT_NE(msg.find("corrupt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hash"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

// Whatever single byte is damaged, loading throws a moe::Error naming the file: never a crash,
// a hang, a std::bad_alloc, or a silently different checkpoint.
TEST_F(CheckpointTest, EveryFlippedByteIsAnErrorNamingTheFile) {
  const std::string good = file("good.bin"), bad = file("bad.bin");
  save_checkpoint(good, sample_checkpoint());
  const Bytes bytes = read_bytes(good);
  for (size_t i = 0; i < bytes.size(); ++i) {
    Bytes damaged = bytes;
    damaged[i] ^= 0xFF;
    write_bytes(bad, damaged);
    const std::string msg = error_of([&] { load_checkpoint(bad); });
    EXPECT_NE(msg.find(bad), std::string::npos) << "byte " << i << ": " << msg;
  }
}

// Caps this process's address space at its current size + 1 GiB for the scope, so that an
// allocation of gigabytes from a forged length throws std::bad_alloc (failing the test) instead
// of quietly succeeding on a machine with plenty of memory. Linux only, and not under
// AddressSanitizer, which reserves terabytes of address space for itself.
#if defined(__SANITIZE_ADDRESS__)
#define MOE_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MOE_TEST_UNDER_ASAN 1
#endif
#endif
class AddressSpaceCap {
 public:
  AddressSpaceCap() {
#if defined(__linux__) && !defined(MOE_TEST_UNDER_ASAN)
    std::ifstream statm("/proc/self/statm");
    unsigned long long pages = 0;
    if (!(statm >> pages) || ::getrlimit(RLIMIT_AS, &old_) != 0) return;
    rlimit capped = old_;
    capped.rlim_cur = pages * static_cast<unsigned long long>(::sysconf(_SC_PAGESIZE)) + (1ull << 30);
    active_ = ::setrlimit(RLIMIT_AS, &capped) == 0;
#endif
  }
  ~AddressSpaceCap() {
    if (active_) ::setrlimit(RLIMIT_AS, &old_);
  }

 private:
  rlimit old_{};
  bool active_ = false;
};

// Lengths forged *with a matching hash*: only the length checks stand between the file and a
// multi-gigabyte allocation. Offsets, from notes/checkpoint-format.md for this file: meta count
// 12, first key length 16; tensor count 26, name length 30, name 34, dtype 35, ndim 36,
// dims[0] 37..44, byte count 45..52, data 53.
TEST_F(CheckpointTest, ForgedLengthsAreRefusedBeforeAllocating) {
  const std::string good = file("good.bin"), bad = file("bad.bin");
  Checkpoint ck;
  ck.set_meta("k", "v");
  ck.add_tensor("w", Tensor::from_f32({1.0f, 2.0f}, {2}));
  save_checkpoint(good, ck);
  const Bytes bytes = read_bytes(good);
  auto load_forged = [&](Bytes forged) {
    fix_footer_hash(&forged);
    write_bytes(bad, forged);
    AddressSpaceCap cap;
    return error_of([&] { load_checkpoint(bad); });
  };

  Bytes huge_key = bytes;
  put_u32(&huge_key, 16, 0xFFFFFFFFu);  // a 4 GiB key
  std::string msg = load_forged(huge_key);
  EXPECT_NE(msg.find("corrupt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("needs 4294967295 bytes"), std::string::npos) << msg;

  Bytes huge_dim = bytes;
  put_u32(&huge_dim, 37 + 4, 0x40000000u);  // dims[0] = 2^62 + 2: numel * 4 overflows
  msg = load_forged(huge_dim);
  EXPECT_NE(msg.find("corrupt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor 'w' has an impossible shape"), std::string::npos) << msg;

  Bytes huge_data = bytes;  // dims[0] = 2^40 and byte count 2^42: consistent, but not in the file
  put_u32(&huge_data, 37, 0);
  put_u32(&huge_data, 37 + 4, 1u << 8);
  put_u32(&huge_data, 45, 0);
  put_u32(&huge_data, 45 + 4, 1u << 10);
  msg = load_forged(huge_data);
  EXPECT_NE(msg.find("corrupt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("the data of tensor 'w' needs 4398046511104 bytes"), std::string::npos) << msg;

  Bytes bad_dtype = bytes;
  bad_dtype[35] = 7;
  msg = load_forged(bad_dtype);
  EXPECT_NE(msg.find("dtype code 7"), std::string::npos) << msg;

  Bytes extra = bytes;  // three stray bytes between the last tensor and the footer
  extra.insert(extra.end() - 16, {1, 2, 3});
  msg = load_forged(extra);
  EXPECT_NE(msg.find("corrupt: 3 unexpected bytes"), std::string::npos) << msg;
}

// A shape whose element count overflows int64 to a small number (here 2^62 * 4 = 2^64 -> 0) must
// not slip through as "0 elements, 0 bytes": the tensor would claim a shape its storage lacks.
TEST_F(CheckpointTest, ForgedShapeWhoseSizeOverflowsIsCorrupt) {
  const std::string good = file("good.bin"), bad = file("bad.bin");
  Checkpoint ck;
  ck.add_tensor("w", Tensor::from_f32({1.0f, 2.0f}, {1, 2}));
  save_checkpoint(good, ck);
  Bytes bytes = read_bytes(good);
  // tensor count 16, name length 20, name 24, dtype 25, ndim 26, dims 27..42, byte count 43..50,
  // data 51..58, footer 59.
  ASSERT_EQ(bytes.size(), 59u + 16u);
  put_u32(&bytes, 27, 0);
  put_u32(&bytes, 27 + 4, 0x40000000u);  // dims[0] = 2^62
  put_u32(&bytes, 35, 4);                // dims[1] = 4
  put_u32(&bytes, 43, 0);                // byte count 0, and the data removed to match
  bytes.erase(bytes.begin() + 51, bytes.begin() + 59);
  fix_footer_hash(&bytes);
  write_bytes(bad, bytes);
  const std::string msg = error_of([&] { load_checkpoint(bad); });
  EXPECT_NE(msg.find("tensor 'w' has an impossible shape"), std::string::npos) << msg;
}

// Duplicate names with a valid hash (save refuses to write them, so forge one): a loader that
// kept the first or the last silently would resume from the wrong values.
TEST_F(CheckpointTest, ForgedDuplicateNamesAreCorrupt) {
  const std::string good = file("good.bin"), bad = file("bad.bin");
  Checkpoint ck;
  ck.set_meta("k", "1");
  ck.set_meta("j", "2");
  ck.add_tensor("a", Tensor::zeros({1}));
  ck.add_tensor("b", Tensor::zeros({1}));
  save_checkpoint(good, ck);
  Bytes bytes = read_bytes(good);
  // meta: count 12, "k" entry 16..25, "j" key length 26, key 30.
  ASSERT_EQ(bytes[30], 'j');
  bytes[30] = 'k';
  fix_footer_hash(&bytes);
  write_bytes(bad, bytes);
  std::string msg = error_of([&] { load_checkpoint(bad); });
  EXPECT_NE(msg.find("meta key 'k' appears twice"), std::string::npos) << msg;

  bytes = read_bytes(good);
  // tensors: count 36, "a" record 40..66 (4 + 1 + 1 + 1 + 8 + 8 + 4 bytes), "b" name at 71.
  ASSERT_EQ(bytes[71], 'b');
  bytes[71] = 'a';
  fix_footer_hash(&bytes);
  write_bytes(bad, bytes);
  msg = error_of([&] { load_checkpoint(bad); });
  EXPECT_NE(msg.find("tensor 'a' appears twice"), std::string::npos) << msg;
}

TEST_F(CheckpointTest, WrongMagicIsNotACheckpoint) {
  const std::string path = file("model.pt");
  // A long file, and one shorter than the magic that does not start like it (not "truncated").
  for (const Bytes& content : {Bytes(100, 'P'), Bytes{'P', 'K', 3}}) {
    write_bytes(path, content);
    const std::string msg = error_of([&] { load_checkpoint(path); });
    EXPECT_NE(msg.find("not a moe-gpt checkpoint"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
  }
}

TEST_F(CheckpointTest, FutureVersionSaysWhichVersionThisBuildReads) {
  const std::string path = file("ck.bin");
  save_checkpoint(path, sample_checkpoint());
  Bytes bytes = read_bytes(path);
  put_u32(&bytes, 8, 2);
  write_bytes(path, bytes);
  const std::string msg = error_of([&] { load_checkpoint(path); });
  EXPECT_NE(msg.find("format version 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("reads version 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("newer moe-gpt"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST_F(CheckpointTest, MissingFileOrDirectoryNamesThePathWithAHint) {
  const std::string missing = file("nope.bin");
  std::string msg = error_of([&] { load_checkpoint(missing); });
  EXPECT_NE(msg.find(missing), std::string::npos) << msg;
  EXPECT_NE(msg.find("no such file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  msg = error_of([&] { load_checkpoint(dir_); });
  EXPECT_NE(msg.find("is a directory"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------
// lookups and configuration checks

TEST_F(CheckpointTest, LookupsNameTheKeyAndTheFile) {
  save_checkpoint(file("ck.bin"), sample_checkpoint());
  Checkpoint ck = load_checkpoint(file("ck.bin"));
  EXPECT_TRUE(ck.has_meta("step"));
  EXPECT_FALSE(ck.has_meta("lr"));
  std::string msg = error_of([&] { ck.get_meta("lr"); });
  EXPECT_NE(msg.find("'lr'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(file("ck.bin")), std::string::npos) << msg;
  msg = error_of([&] { ck.get_tensor("wte"); });
  EXPECT_NE(msg.find("'wte'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("f32, f64, i32"), std::string::npos) << msg;  // lists what it holds
  EXPECT_NE(msg.find(file("ck.bin")), std::string::npos) << msg;
  // The HINT names flags that exist (notes/design.md "Hardening"): --moe-experts, never the old
  // --n-expert.
  EXPECT_NE(msg.find("--moe-experts"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("--n-expert"), std::string::npos) << msg;

  ck.set_meta("model", "small");  // replaces in place, keeping the order
  EXPECT_EQ(ck.meta[0], std::make_pair(std::string("model"), std::string("small")));
  EXPECT_EQ(ck.meta.size(), 4u);
  msg = error_of([&] { ck.add_tensor("f32", Tensor::zeros({1})); });
  EXPECT_NE(msg.find("already"), std::string::npos) << msg;
}

TEST_F(CheckpointTest, CheckMetaMatchesListsEveryMismatch) {
  Checkpoint ck;
  ck.set_meta("model", "tiny");
  ck.set_meta("n_layer", "4");
  ck.set_meta("n_expert", "8");
  ck.set_meta("seed", "1");  // not compared below: extra keys are fine
  EXPECT_NO_THROW(check_meta_matches(ck, "ck.bin", {{"model", "tiny"}, {"n_layer", "4"}}));

  const std::string msg = error_of([&] {
    check_meta_matches(ck, "runs/a/ck.bin",
                       {{"model", "tiny"}, {"n_layer", "12"}, {"n_expert", "16"}, {"top_k", "2"}});
  });
  EXPECT_NE(msg.find("runs/a/ck.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("n_layer: checkpoint has 4, this run has 12"), std::string::npos) << msg;
  EXPECT_NE(msg.find("n_expert: checkpoint has 8, this run has 16"), std::string::npos) << msg;
  EXPECT_NE(msg.find("top_k: checkpoint has no value, this run has 2"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("model:"), std::string::npos) << msg;  // matching keys are not listed
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--resume"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("--n-expert"), std::string::npos) << msg;  // no flag of that name exists
}

TEST_F(CheckpointTest, CheckMetaMatchesNamesTheFlagOfEachKey) {
  Checkpoint ck;
  ck.set_meta("n-layer", "4");
  ck.set_meta("moe-experts", "8");
  ck.set_meta("tokenizer", "abc");
  const auto flag_of = [](const std::string& key) {
    return key == "tokenizer" ? std::string("set by the tokenizer flags") : "--" + key;
  };
  const std::string msg = error_of([&] {
    check_meta_matches(ck, "ck.bin", {{"n-layer", "2"}, {"moe-experts", "0"}, {"tokenizer", "x"}},
                       flag_of);
  });
  EXPECT_NE(msg.find("n-layer: checkpoint has 4, this run has 2 (--n-layer)"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("tokenizer: checkpoint has abc, this run has x (set by the tokenizer flags)"),
            std::string::npos)
      << msg;
  // The HINT spells out the flags that would make the run match the checkpoint.
  EXPECT_NE(msg.find("resume with the checkpoint's values: --n-layer 4 --moe-experts 8"),
            std::string::npos)
      << msg;
}

}  // namespace
}  // namespace moe

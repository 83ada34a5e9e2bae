// program.cpp — see program.h.
#include "io/program.h"

#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <streambuf>

#include "core/check.h"
#include "core/device.h"
#include "core/parallel.h"
#include "dist/dist.h"

namespace moe {

void check_out_dir(const std::string& dir, const char* flag) {
  namespace fs = std::filesystem;
  CHECK(!dir.empty(), "--", flag, " is empty. HINT: give a folder, e.g. --", flag, " runs/mine");
  std::error_code ec;
  const fs::path p(dir);
  for (fs::path up = p; !up.empty(); up = up.parent_path()) {  // a file on the way is an error
    if (fs::exists(up, ec) && !fs::is_directory(up, ec))
      CHECK(false, "--", flag, " ", dir, ": ", up.string(), " is a file, not a folder. HINT: "
            "choose another --", flag);
    if (up == up.parent_path()) break;
  }
  fs::create_directories(p, ec);
  CHECK(!ec, "--", flag, " ", dir, ": cannot create the folder (", ec.message(), "). HINT: "
        "choose a folder you can write to");
  const fs::path probe = p / ".moe-gpt-write-test";
  {
    std::ofstream out(probe);
    out << "ok";
    CHECK(out.good(), "--", flag, " ", dir, " is not writable. HINT: choose a folder you can "
          "write to");
  }
  fs::remove(probe, ec);
}

Device program_device(const Flags& flags) {
  return resolve_device(flags.get_str("device"), dist().local_rank);
}

static int run_program_body(int argc, char** argv, Program prog,
                            const std::function<int(const Flags&)>& body);

namespace {
// Where the output of ranks other than 0 goes: nowhere (rank 0 alone prints, dist.h).
class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return traits_type::not_eof(c); }
};
}  // namespace

// A failure on one rank must end every rank at once, with the message of the rank that saw it:
// the others may be waiting in a collective for it and would hang (dist_abort).
static int fail(const std::string& message) {
  if (dist().world > 1) dist_abort("error: " + message, 1);
  std::cerr << "error: " << message << std::endl;
  return 1;
}

int run_program(int argc, char** argv, Program prog, const std::function<int(const Flags&)>& body) {
  dist_init(&argc, &argv);
  static NullBuffer null_buffer;
  if (!is_root()) std::cout.rdbuf(&null_buffer);
  // Exit codes other than errors (3 non-finite, 130/143 stopped) are reached by every rank
  // together (train/train_loop.cpp agrees on them), so the ranks finish normally.
  const int code = run_program_body(argc, argv, prog, body);
  dist_finalize();
  return code;
}

static int run_program_body(int argc, char** argv, Program prog,
                            const std::function<int(const Flags&)>& body) {
  try {
    Flags flags = parse_flags(argc, argv, prog);
    if (flags.get_bool("help")) {
      std::cout << usage_text(prog);
      return 0;
    }
    if (flags.get_int("threads") > 0) set_num_threads(static_cast<int>(flags.get_int("threads")));
    const Device dev = program_device(flags);  // checks --device before any work starts
    cuda_set_allow_tf32(flags.get_bool("tf32"));
    std::cout << "device: " << describe_device(dev)
              << (dev.is_cuda() ? (flags.get_bool("tf32") ? " (TF32 matrix products)"
                                                         : " (strict f32 matrix products)")
                                : "")
              << std::endl;
    return body(flags);
  } catch (const std::exception& e) {  // moe::Error and anything the standard library throws
    return fail(e.what());
  }
}

}  // namespace moe

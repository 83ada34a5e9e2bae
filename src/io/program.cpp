// program.cpp — see program.h.
#include "io/program.h"

#include <exception>
#include <iostream>

#include "core/check.h"
#include "core/device.h"
#include "core/parallel.h"

namespace moe {

int run_program(int argc, char** argv, Program prog, const std::function<int(const Flags&)>& body) {
  try {
    Flags flags = parse_flags(argc, argv, prog);
    if (flags.get_bool("help")) {
      std::cout << usage_text(prog);
      return 0;
    }
    CHECK(flags.get_str("device") == "cpu", "--device cuda: ", program_name(prog),
          " on the GPU is not wired up yet (only device storage is). HINT: use --device cpu");
    if (flags.get_int("threads") > 0) set_num_threads(static_cast<int>(flags.get_int("threads")));
    devices_init();
    return body(flags);
  } catch (const std::exception& e) {  // moe::Error and anything the standard library throws
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace moe

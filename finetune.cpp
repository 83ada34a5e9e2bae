// finetune.cpp — supervised fine-tuning with one linear head on a pretrained checkpoint (SPEC §7):
// BoolQ, MNLI, SST-2; dev accuracy after every epoch, the best checkpoint kept.
//
//   ./finetune --ckpt runs/tiny/checkpoint.bin --task sst2 --lr 1e-4 --epochs 3
//              (files from ../shared/data; results in runs/tiny/finetune-sst2/)
//   ./finetune --ckpt ... --task boolq --dev-file ../shared/data/boolq/dev.jsonl.xz --carve-train 2270
//   ./finetune --ckpt ... --task mnli --train-file ../shared/data/mnli/dev_mismatched.jsonl.xz
//              --dev-file ../shared/data/mnli/dev_matched.jsonl.xz --out-dir runs/mnli
//   ./finetune --help            every flag with its default and accepted values
//
// A thin main: parse flags -> print the effective configuration -> claim --out-dir (checked,
// locked, an earlier run's results never replaced without --overwrite) -> build -> fine-tune.
// Exit codes: 0 done, 1 bad input (message on stderr), 3 non-finite loss, 130 Ctrl-C and 143
// SIGTERM (both saved to interrupted.bin).
// The model runs on --device (default auto: the GPU when one is visible); checkpoints it writes
// load on either device.
// Under `mpirun -np W ./finetune ...` the W ranks split every batch (--batch-size is the global
// batch) and run MoE layers expert-parallel; rank 0 alone prints and writes (notes/finetune.md
// "Under mpirun"). Each rank uses the GPU local_rank % GPUs of its host.
#include <iostream>
#include <memory>

#include "core/device.h"
#include "core/parallel.h"
#include "dist/dist.h"
#include "dist/transport.h"
#include "finetune/finetune_flags.h"
#include "finetune/finetuner.h"
#include "io/flags.h"
#include "io/program.h"
#include "io/run_dir.h"

int main(int argc, char** argv) {
  using namespace moe;
  return run_program(argc, argv, PROG_FINETUNE, [](const Flags& flags) {
    FinetuneConfig cfg = finetune_config_from_flags(flags);
    cfg.device = program_device(flags);  // the config's default is the CPU (tests build their own)
    std::cout << "moe-gpt finetune — Artetxe et al. (2021), SPEC §7: one linear head, all "
                 "parameters trained\n"
              << effective_config_text(flags, PROG_FINETUNE) << "threads: " << num_threads()
              << ", devices: " << devices_describe() << "\nout-dir: " << cfg.out_dir
              << (flags.was_set("out-dir") ? "" : " (beside --ckpt, per --task; --out-dir sets "
                                                  "another)")
              << std::endl;
    if (dist().world > 1 || cfg.transport != "auto")
      std::cout << "ranks: " << dist().world << ", transport " << cfg.transport
                << (cfg.transport == "auto" ? " (" + auto_transport_name(cfg.device) + ")" : "")
                << std::endl;
    // Before any work; rank 0 alone owns the folder (its failure ends every rank, program.cpp).
    const std::unique_ptr<RunDirLock> lock = is_root() ? claim_out_dir(cfg) : nullptr;
    StopSignals stop;  // from here Ctrl-C and SIGTERM save before exiting (130, 143)
    Finetuner finetuner(cfg);
    return finetuner.run();
  });
}

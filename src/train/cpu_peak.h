// cpu_peak.h — the peak that MFU is measured against when training on the CPU.
//
// MFU (model FLOPs utilisation, notes/spec.md §5: model FLOPs per token x tokens/s over the
// device's peak) needs a peak. A GPU has a published dense peak per precision; a CPU has none the
// program can know reliably (core count, vector width, turbo clock and the other tenants of a
// shared VM all change it). So on the CPU the peak is *measured*: the best rate that this
// project's own f32 GEMM (ops/gemm.h) reaches on a square n x n x n product, with the thread count
// the run uses, timed once per process a moment before training starts. MFU on the CPU therefore
// reads "the fraction of what our GEMM can do on this machine right now", and the output says so
// ("measured-gemm ... GFLOP/s"), so it is never mistaken for a spec-sheet figure.
//
// The measurement: one untimed product (wakes the thread pool, faults the buffers in), then
// repetitions until `reps` are done or `budget_s` has passed, keeping the fastest (the one least
// disturbed by other processes). No repetition starts after `budget_s`. At n = 512 one product
// is about 4 ms on the 2-core reference machine, so the whole measurement takes 0.05-0.1 s.
#pragma once
#include <cstdint>
#include <string>

namespace moe {

struct CpuPeak {
  double flops_per_s = 0;  // 2 n^3 over the fastest repetition's seconds
  int64_t n = 0;           // the product measured: (n x n) @ (n x n), f32
  int threads = 0;         // the thread count it ran with (core/parallel.h num_threads())
  int reps = 0;            // timed repetitions actually run
  double seconds = 0;      // wall time of the whole measurement, warm-up included
};

// Times gemm<float> as described above. CHECK-fails on n < 16 or reps < 1.
CpuPeak measure_cpu_gemm_peak(int64_t n = 512, int reps = 8, double budget_s = 0.15);

// measure_cpu_gemm_peak() with the defaults, done once per process and thread count (later calls
// return the stored result, so the training loop may ask at every log line).
CpuPeak cpu_gemm_peak();

// "measured-gemm 61.2 GFLOP/s": the short label that log.jsonl carries as "mfu_peak".
std::string cpu_peak_label(const CpuPeak& p);
// One sentence for the start of a run: the label plus how it was measured.
std::string cpu_peak_description(const CpuPeak& p);

}  // namespace moe

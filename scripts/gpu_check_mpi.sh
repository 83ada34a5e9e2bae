#!/usr/bin/env bash
# gpu_check_mpi.sh — the MPI tests on a GPU machine: test_mpi under mpirun at W = 1, 2 (and 4
# when asked), ranks sharing the visible GPUs; logs to $OUT (or ./gpu-logs).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-logs}
mkdir -p "$OUT"
MPIRUN="mpirun --allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none"
for w in ${*:-1 2}; do
  echo "== mpirun -np $w test_mpi"
  $MPIRUN -np "$w" ./build/cuda/test_mpi > "$OUT/mpi_w$w.log" 2>&1; echo "exit $?"
  grep -E "^tests \(mpi|FAILED|failure" "$OUT/mpi_w$w.log" | head -20
done

#!/usr/bin/env bash
# test_lib.sh — a test of the course kit's MPI runner (tests/course/lib.sh, kit_run_mpi_set; issue
# 14, notes/assignments/README.md), run by test_kit.sh before anything else. It needs no MPI: a fake
# mpirun prints what test_mpi prints (tests/mpi/main_mpi.cpp: rank 0's GoogleTest lines, other
# ranks' failures as "rank R/W: file:line: failure", the summary line) for made-up tests whose name
# says how they behave, including the ways a multi-rank run goes wrong: a rank that fails and
# leaves the others waiting for ever, a failure on another rank that rank 0 reports as OK, and a
# failure that corrupts the next test of the same run. Each case checks the statuses the runner
# writes, how many mpirun calls it needed, and that a failure does not cost a hang's wait.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export KIT_PRIVATE_TMP=0  # the fake writes nothing to /tmp: no private one needed
export MPIRUN="$scratch/fake_mpirun"
export FAKE_CALLS="$scratch/calls"

# The fake: `fake_mpirun -np N BINARY --gtest_color=no --gtest_filter=A:B:...`. A test behaves as
# the start of its name says: Pass, Skip; FailAll (fails on every rank, which all go on); Fail0
# (fails on rank 0, whose next collective never completes: a hang); NonRoot (fails on rank 1 only
# while rank 0 reports OK, then hangs); Cascade (as NonRoot, but the ranks go on with mismatched
# collectives, so every later test of the run fails on rank 0); Hang; Crash (a rank dies).
cat > "$MPIRUN" <<'EOF'
#!/usr/bin/env bash
np=$2
filter=${5#--gtest_filter=}
echo "$filter" >> "$FAKE_CALLS"
passed=0 failed=0 skipped=0 cascade=0
for t in ${filter//:/ }; do
  echo "[ RUN      ] $t"
  if [ "$cascade" = 1 ]; then echo "[  FAILED  ] $t (1 ms)"; failed=$((failed + 1)); continue; fi
  case "$t" in
    *.Pass*) echo "[       OK ] $t (1 ms)"; passed=$((passed + 1)) ;;
    *.Skip*) echo "[  SKIPPED ] $t (0 ms)"; skipped=$((skipped + 1)) ;;
    *.FailAll*) echo "[  FAILED  ] $t (1 ms)"; failed=$((failed + 1))
                [ "$np" -gt 1 ] && echo "rank 1/$np: (null):-1: failure" >&2 ;;
    *.Fail0*) echo "[  FAILED  ] $t (1 ms)"; failed=$((failed + 1)); [ "$np" -gt 1 ] && sleep 600 ;;
    *.NonRoot*) echo "[       OK ] $t (1 ms)"; passed=$((passed + 1))
                [ "$np" -gt 1 ] && { echo "rank 1/$np: tests/mpi/x.cpp:7: failure" >&2; sleep 600; } ;;
    *.Cascade*) echo "[       OK ] $t (1 ms)"; passed=$((passed + 1))
                [ "$np" -gt 1 ] && { echo "rank 1/$np: tests/mpi/x.cpp:9: failure" >&2; cascade=1; } ;;
    *.Hang*) sleep 600 ;;
    *.Crash*) exit 139 ;;
  esac
done
echo "tests (mpi, W=$np): $passed passed, $failed failed (max over ranks), $skipped skipped"
[ "$failed" = 0 ] && [ "$cascade" = 0 ]
EOF
chmod +x "$MPIRUN"

fails=0
# check NP "TESTS" "EXPECTED STATUS LINES" CALLS MAX_SECONDS: run kit_run_mpi_set, compare.
check() {
  local np=$1 tests=$2 want=$3 calls=$4 max=$5 got t0 secs ncalls
  : > "$scratch/res"
  : > "$FAKE_CALLS"
  t0=$(date +%s)
  kit_run_mpi_set "$scratch/res" "$scratch/log" "$scratch/tmp" fake_test_mpi "$np" \
    "$(printf '%s\n' $tests)"
  secs=$(( $(date +%s) - t0 ))
  got=$(sort "$scratch/res" | tr '\n' ' ')
  want=$(printf '%s\n' $want | paste -d' ' - - | sed "s/\$/@np$np/" | sort | tr '\n' ' ')
  ncalls=$(wc -l < "$FAKE_CALLS")
  if [ "$got" != "$want" ] || [ "$ncalls" != "$calls" ] || [ "$secs" -gt "$max" ]; then
    echo "FAIL: -np $np [$tests]: got [$got] in $ncalls mpirun calls, $secs s;" \
      "expected [$want] in $calls calls, at most $max s"
    fails=$((fails + 1))
  fi
}

export KIT_MPI_IDLE=8
# all pass: one mpirun for the whole list
check 2 "S.PassA S.SkipB S.PassC" "PASS S.PassA SKIP S.SkipB PASS S.PassC" 1 4
# a failure stops the list at once (no wait for the hang that follows) and each test runs alone,
# where a failure on rank 0 decides FAIL without waiting either
check 2 "S.PassA S.Fail0B S.PassC" "PASS S.PassA FAIL S.Fail0B PASS S.PassC" 4 6
# a failure on another rank only, then a hang: FAIL, at once
check 2 "S.NonRootA" "FAIL S.NonRootA" 1 3
# rank 0 reports OK for the test that failed elsewhere and FAILED for the one it corrupted: only
# the runs alone say which is which
check 2 "S.CascadeA S.PassB" "FAIL S.CascadeA PASS S.PassB" 3 4
# every rank fails, no hang
check 4 "S.FailAllA S.PassB" "FAIL S.FailAllA PASS S.PassB" 3 4
# no output for KIT_MPI_IDLE seconds, without a failure: a hang, CRASH
KIT_MPI_IDLE=1 check 2 "S.HangA" "CRASH S.HangA" 1 5
check 2 "S.CrashA S.PassB" "CRASH S.CrashA PASS S.PassB" 3 4
# one rank: every result of a run is exact; a crash costs a second run for the tests after it
check 1 "S.PassA S.CrashB S.FailAllC S.Fail0D S.PassE" \
  "PASS S.PassA CRASH S.CrashB FAIL S.FailAllC FAIL S.Fail0D PASS S.PassE" 2 4

if [ "$fails" -gt 0 ]; then
  echo "test_lib.sh: $fails case(s) of the MPI runner failed (tests/course/lib.sh)"
  exit 1
fi
echo "test_lib.sh: the MPI runner gives exact results in all 8 cases"

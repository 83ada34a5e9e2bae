#!/usr/bin/env bash
# failures.sh — what happens to a multi-rank run when one rank fails (SPEC §4; notes/
# distributed.md "Failures"): every rank must end, with a clear message from the rank that saw
# the problem, within a time limit (nothing hangs), and no checkpoint may be damaged.
#   1. bad input seen by one rank only: both ranks get --data corpus.txt, a relative path, but
#      rank 1 runs in a folder without that file (as on a host that lacks it);
#   2. ranks started with different flags (rank 1 another --seq-len): refused before any exchange;
#   3. a rank that dies: rank 1 is killed with SIGKILL while the run is saving a checkpoint every
#      step; the job must end and the checkpoint left must load.
# Usage: tests/mpi/failures.sh BIN_DIR "MPIRUN command"   (make test passes both)
set -u
BIN=${1:-.}
MPIRUN=${2:-mpirun --allow-run-as-root --oversubscribe}
TMP=$(mktemp -d /tmp/moe-gpt-failures-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0
pass() { echo "  ok: $1"; }
fail() { echo "  FAILED: $1"; fails=$((fails + 1)); }
COMMON="--model tiny --d-model 32 --n-layer 2 --seq-len 16 --batch-size 4 --moe-experts 4 \
  --eval-every 0 --log-every 1 --cache-dir $TMP/cache --vocab-size 300 --device cpu --threads 1"
printf 'the cat sat on the mat and the dog ran in the park.\n%.0s' $(seq 400) > "$TMP/good.txt"

echo "== failures: bad input on one rank"
mkdir -p "$TMP/w0" "$TMP/w1"
cp "$TMP/good.txt" "$TMP/w0/corpus.txt"
BINABS=$(cd "$BIN" && pwd)
timeout 120 $MPIRUN -np 1 -wdir "$TMP/w0" "$BINABS/train" $COMMON --data corpus.txt --steps 3 \
  --out-dir "$TMP/a" : -np 1 -wdir "$TMP/w1" "$BINABS/train" $COMMON --data corpus.txt --steps 3 \
  --out-dir "$TMP/a" > "$TMP/a.out" 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then pass "exit code $rc (not 0, not a timeout)"; else fail "exit code $rc"; fi
if grep -q "rank 1/2: error: .*corpus.txt" "$TMP/a.out"; then pass "rank 1 names the missing file"
else fail "no 'rank 1/2: error: ... corpus.txt' in the output:"; cat "$TMP/a.out"; fi
[ -f "$TMP/a/checkpoint.bin" ] && fail "a checkpoint was written by a run that failed"

echo "== failures: ranks started with different flags"
timeout 120 $MPIRUN -np 1 "$BIN/train" $COMMON --data "$TMP/good.txt" --steps 3 --out-dir "$TMP/b" : \
  -np 1 "$BIN/train" $COMMON --data "$TMP/good.txt" --steps 3 --out-dir "$TMP/b" --seq-len 8 \
  > "$TMP/b.out" 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then pass "exit code $rc"; else fail "exit code $rc"; fi
if grep -q "error: .*seq-len" "$TMP/b.out"; then pass "the message names the differing setting"
else fail "no message naming seq-len:"; cat "$TMP/b.out"; fi

echo "== failures: a rank killed while checkpointing every step"
$MPIRUN -np 2 "$BIN/train" $COMMON --data "$TMP/good.txt" --steps 100000 --ckpt-every 1 \
  --out-dir "$TMP/c" > "$TMP/c.out" 2>&1 &
job=$!
for _ in $(seq 600); do [ -f "$TMP/c/checkpoint.bin" ] && break; sleep 0.1; done
sleep 1
victim=$(pgrep -f "train .*--out-dir $TMP/c" | grep -v "^$job\$" | tail -1)
if [ -n "$victim" ]; then kill -9 "$victim"; fi
( sleep 120; touch "$TMP/hung"; kill -9 $job ) >/dev/null 2>&1 & watchdog=$!
wait $job; rc=$?
pkill -P $watchdog 2>/dev/null; kill $watchdog 2>/dev/null
if [ -n "$victim" ] && [ $rc -ne 0 ] && [ ! -f "$TMP/hung" ]; then pass "the job ended (exit $rc) after rank pid $victim was killed"
else fail "job exit $rc, victim '$victim'"; tail -5 "$TMP/c.out"; fi
pkill -9 -f "train .*--out-dir $TMP/c" 2>/dev/null
if "$BIN/eval" --ckpt "$TMP/c/checkpoint.bin" --task generate --prompt "the" --max-new-tokens 2 \
     --device cpu --out-dir "$TMP/c-eval" > "$TMP/c-eval.out" 2>&1; then pass "the checkpoint left loads"
else fail "the checkpoint left does not load:"; cat "$TMP/c-eval.out"; fi
ls "$TMP/c" | grep -q "\.tmp" && fail "a .tmp file was left in the run folder"

echo "failures: $fails"
[ $fails -eq 0 ]

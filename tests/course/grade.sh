#!/usr/bin/env bash
# grade.sh — the grader of the course kit (issue 14; notes/assignments/README.md). `make grade N=4`
# builds the programs and test binaries, then runs it:
#
#   tests/course/grade.sh N BUILD
#
# It runs exactly the tests that tests/course/assignments.txt lists for assignment N (a GoogleTest
# filter on build/.../test_all; each listed test of test_mpi under `$MPIRUN -np 2` and `-np 4`, or
# only `-np 4` for those listed as `mpi4`), prints PASS / FAIL / SKIP (with the reason) / CRASH
# (crashed, hung: KIT_MPI_IDLE seconds without output, or past KIT_TEST_TIMEOUT) per test and the
# score line
#     assignment N: K/M tests passed
# and exits 0 only when all M passed. Skipped tests are not passed: a test that needs a GPU skips
# without one, and the grader says so. Test runs get a private, empty /tmp where the system allows
# it (lib.sh), so a token cache built by other code cannot pass a test for the student's code.
# MOE_BIN_DIR (the programs the CLI tests run) comes from the caller, as for `make test`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || kit_die "usage: make grade N=<number>   (or: $0 N BUILD)"
n=$1
build=$2
root=$(cd "$KIT_DIR/../.." && pwd)
cd "$root"
if [ -z "$n" ] && [ -f .assignment ]; then n=$(cat .assignment); fi
[ -n "$n" ] || kit_die "which assignment? HINT: make grade N=<number>; one of: $(kit_numbers | tr '\n' ' ')"
kit_check_number "$n"

KIT_GPU=$(kit_gpu_here "$build")
all_tests=$(kit_tests "$n" all)
cuda_tests=$(kit_tests "$n" cuda)
mpi_tests=$(kit_tests "$n" mpi)
mpi4_tests=$(kit_tests "$n" mpi4)
[ -n "$all_tests$cuda_tests$mpi_tests$mpi4_tests" ] || kit_die "assignment $n lists no tests in $KIT_TABLE"

work="$build/grade-$n"
rm -rf "$work"
mkdir -p "$work"
results="$work/results.txt"
log="$work/output.log"
: > "$results"
: > "$log"

echo "assignment $n ($(kit_title "$n")): handout notes/assignments/$(printf '%02d' "$n")-$(kit_slug "$n").md"
kit_probe_private_tmp
if [ "$KIT_PRIVATE_TMP" = 0 ]; then
  echo "note: no private /tmp here (unshare is not allowed), so the tests share /tmp with other" \
    "runs; a token cache in /tmp/moe-gpt-test-cache built by other code can make training tests" \
    "pass without your code. For a cold grade: rm -rf /tmp/moe-gpt-test-cache"
fi

# Tests of test_all that a build without CUDA does not compile are listed as `cuda`: they run where
# they exist and count as skipped elsewhere.
built=$("$build/test_all" --gtest_list_tests | awk '/^[A-Za-z_].*\.$/ { s = $1 } /^  / { print s $1 }')
for t in $cuda_tests; do
  if kit_has "$built" "$t"; then
    all_tests=$(printf '%s\n%s' "$all_tests" "$t")
  else
    echo "SKIP $t" >> "$results"
  fi
done
all_tests=$(printf '%s\n' "$all_tests" | sed '/^$/d')
if [ -n "$all_tests" ]; then
  filter=$(printf '%s\n' "$all_tests" | paste -sd: -)
  kit_run_gtest "$work/all.txt" "$log" "$root/$work/tmp" "$build/test_all" "$filter"
  cat "$work/all.txt" >> "$results"
fi
# The listed tests of test_mpi at 2 ranks, then at 4 (with those listed for 4 ranks only): one
# mpirun for all of them when no rank fails any, else one per test (lib.sh, kit_run_mpi_set). A
# test that crashed or hung at 2 ranks is not run again at 4 (a hang costs KIT_MPI_IDLE seconds):
# it counts as CRASH there too, and the grader says so.
if [ -n "$mpi_tests$mpi4_tests" ]; then
  kit_run_mpi_set "$results" "$log" "$root/$work/tmp" "$build/test_mpi" 2 "$mpi_tests"
  again=$mpi4_tests
  for t in $mpi_tests; do
    if grep -qxF "CRASH $t@np2" "$results"; then
      echo "CRASH $t@np4" >> "$results"
      echo "$t@np4" >> "$work/not_rerun.txt"
    else
      again=$(printf '%s\n%s' "$again" "$t")
    fi
  done
  kit_run_mpi_set "$results" "$log" "$root/$work/tmp" "$build/test_mpi" 4 "$again"
fi
rm -rf "$work/tmp"

# The message a skipped test gave: the first line after its RUN line that is not "file:line: Skipped".
skip_reason() {
  if [[ "$1" != *@np* ]] && ! kit_has "$built" "$1"; then
    echo "not in this build: a test compiled only with CUDA (nvcc)"
    return
  fi
  awk -v t="${1%@np*}" '$0 == "[ RUN      ] " t { on = 1; next }
                 on && /^\[  SKIPPED \]/ { exit }
                 on && NF && !/: Skipped$/ { print substr($0, 1, 110); exit }' "$log"
}

# One line per graded item, in the table's order; an item with no result did not run.
expected=$( { printf '%s\n' "$all_tests"
             for t in $cuda_tests; do kit_has "$all_tests" "$t" || echo "$t"; done
             for t in $mpi_tests; do echo "$t@np2"; echo "$t@np4"; done
             for t in $mpi4_tests; do echo "$t@np4"; done; } | sed '/^$/d')
passed=0
skipped=0
total=0
for t in $expected; do
  total=$((total + 1))
  status=$(awk -v t="$t" '$2 == t { s = $1 } END { print s }' "$results")
  [ -n "$status" ] || status="NOTRUN"
  case "$status" in
    PASS) passed=$((passed + 1)) ;;
    SKIP) skipped=$((skipped + 1)) ;;
  esac
  if [ "$status" = CRASH ] && grep -qxF "$t" "$work/not_rerun.txt" 2>/dev/null; then
    printf '  %-6s %s  (not run: it crashed or hung at 2 ranks)\n' "$status" "$t"
  elif [ "$status" = SKIP ]; then
    printf '  %-6s %s  (%s)\n' "$status" "$t" "$(skip_reason "$t")"
  else
    printf '  %-6s %s\n' "$status" "$t"
  fi
done
grep '^ERROR ' "$results" | sed 's/^ERROR /  error: /' || true

echo "assignment $n: $passed/$total tests passed"
if [ "$skipped" -gt 0 ]; then
  echo "note: $skipped skipped, so not passed; the reason is beside each. A test that needs a CUDA" \
    "GPU can only be graded on a machine with one (make grade N=$n there); without one, this" \
    "copy's build is what can be checked. Data tests need ../shared/data beside the copy."
fi
[ "$passed" -lt "$total" ] && echo "the output of the failing tests: $work/output.log"
[ "$passed" -eq "$total" ]

#!/usr/bin/env bash
# test_kit.sh — the test of the course kit (issue 14; notes/assignments/README.md), run by
# `make test-kit` and so by `make test`:
#
#   tests/course/test_kit.sh BUILD [N ...]        (default: every assignment)
#
# First, static checks: the kit's MPI runner passes its own test (test_lib.sh), every marker is
# well formed, every assignment has regions, a handout and tests, and every listed test exists in
# the test binaries. Then the reference suite runs once (the
# baseline: what passes, what skips here). Then, for each assignment:
#   1. the student copy is generated (make_assignment.sh, with this build folder copied in so that
#      make recompiles only the stubbed files) and differs from this tree in exactly the files that
#      hold the assignment's regions;
#   2. it builds (programs, test_all, test_mpi);
#   3. its grader reports 0 passed;
#   4. its whole suite (test_all, and test_mpi at -np 1, 2, 4) fails exactly the listed tests: a
#      failure that is not listed is a test the stub broke without the list saying so, a listed
#      test that passes is one the grader cannot use. Listed tests that skip here (they need a GPU)
#      are allowed, as they skip in the reference too. The listed tests of test_mpi at -np 2 and 4
#      are the grader's runs of step 3, not run twice;
#   5. with the bodies restored from this tree it builds again and the grader reports all passed
#      (or, for tests that need a GPU on a machine without one, all skipped).
# Copies and logs are under BUILD-kit/ (KIT_KEEP=1 keeps the copies); the times of every step are
# printed and written to BUILD-kit/timings.txt. Exit status 0 only when every check holds.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || kit_die "usage: make test-kit [KIT='1 4']   (or: $0 BUILD [N ...])"
build=$1
shift
root=$(cd "$KIT_DIR/../.." && pwd)
cd "$root"
if [ -f .assignment ]; then
  # `make test` in a student copy: the kit checks the repository, not a copy (which has no git
  # history to copy from, and whose own assignment is not done yet).
  echo "== course kit: skipped in a student copy (assignment $(cat .assignment)); make grade scores it"
  exit 0
fi
numbers=${*:-$(kit_numbers)}
KIT_GPU=$(kit_gpu_here "$build")  # `gpu` tests are checked only where a GPU runs them
work="$root/${build%/}-kit"
export MPIRUN=${MPIRUN:-mpirun}
parent_bins=${MOE_BIN_DIR:-.}
make_vars=(BUILD="$build" PROGDIR="$build/bin")
[ -n "${USE_CUDA:-}" ] && make_vars+=(USE_CUDA="$USE_CUDA")
problems=0

problem() {
  echo "KIT FAIL: $*"
  problems=$((problems + 1))
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

rm -rf "$work"
mkdir -p "$work"
# The data tests read ../shared/data beside the checkout (when it is there): the copies, in $work,
# see the same folder through a link, so a test does not skip in a copy where the reference ran it.
[ -d "$root/../shared" ] && ln -s "$(cd "$root/../shared" && pwd)" "$work/shared"
echo "== course kit: static checks"
kit_probe_private_tmp
if [ "$KIT_PRIVATE_TMP" = 0 ]; then
  # Without a private /tmp, a token cache left by an earlier run would let a stubbed tokenizer
  # pass the training tests: every run of the kit starts from no cache, as on a clean machine.
  echo "note: no private /tmp here (unshare is not allowed): the kit removes the shared token" \
    "cache /tmp/moe-gpt-test-cache before each run of the tests"
  export KIT_COLD_CACHE=1
fi

# ---- static checks -------------------------------------------------------------------------------
bash "$KIT_DIR/test_lib.sh" || problem "the kit's MPI runner (tests/course/lib.sh) is wrong: see above"
regions=$(kit_regions "$root") || kit_die "malformed assignment markers (above)"
for n in $(printf '%s\n' "$regions" | cut -f1 | sort -un); do
  [ -n "$(kit_slug "$n")" ] || problem "src/cuda mark regions of assignment $n, which assignments.txt does not list"
done
"$build/test_all" --gtest_list_tests |
  awk '/^[A-Za-z_].*\.$/ { suite = $1 } /^  / { print suite $1 }' > "$work/all_names.txt"
kit_in_private_tmp "$work/tmp" $MPIRUN -np 1 "$build/test_mpi" --gtest_list_tests |
  awk '/^[A-Za-z_].*\.$/ { suite = $1 } /^  / { print suite $1 }' > "$work/mpi_names.txt"
for n in $numbers; do
  kit_check_number "$n"
  handout="notes/assignments/$(printf '%02d' "$n")-$(kit_slug "$n").md"
  [ -f "$handout" ] || problem "assignment $n has no handout $handout"
  [ -n "$(printf '%s\n' "$regions" | awk -F'\t' -v n="$n" '$1 == n')" ] ||
    problem "assignment $n has no marked region in src/ or cuda/"
  [ -n "$(kit_tests "$n" all)$(kit_tests "$n" cuda)$(kit_tests "$n" mpi)$(kit_tests "$n" mpi4)" ] ||
    problem "assignment $n lists no tests"
  for t in $(kit_tests "$n" all); do
    grep -qxF "$t" "$work/all_names.txt" || problem "assignment $n lists $t, which test_all does not have"
  done
  # `cuda` tests exist only in builds with CUDA.
  if [ "${USE_CUDA:-0}" = 1 ]; then
    for t in $(kit_tests "$n" cuda); do
      grep -qxF "$t" "$work/all_names.txt" || problem "assignment $n lists $t, which test_all does not have"
    done
  fi
  for t in $(kit_tests "$n" gpu); do
    grep -qxF "$t" "$work/all_names.txt" || problem "assignment $n lists $t, which test_all does not have"
  done
  for t in $(kit_tests "$n" mpi) $(kit_tests "$n" mpi4); do
    grep -qxF "$t" "$work/mpi_names.txt" || problem "assignment $n lists $t, which test_mpi does not have"
  done
done

# ---- running whole suites ------------------------------------------------------------------------

# suite TREE BINS OUT [GRADED]: test_all of TREE (programs in BINS) and test_mpi at -np 1, 2, 4, in
# a private /tmp; writes OUT.all and OUT.mpi1/2/4 ("STATUS name"). GRADED is the grader's results
# file of a student copy: its listed tests of test_mpi were run there alone at -np 2 and 4, so they
# are not run again here and their results are taken from it. A test that crashed or hung at a
# smaller size is not run again at a larger one: it counts as CRASH there, as the grader counts it.
suite() {
  local tree=$1 bins=$2 out=$3 graded=${4:-} np names skip t graded_here
  (cd "$tree" && MOE_BIN_DIR="$bins" kit_run_gtest "$out.all" "$out.log" "$out.tmp" \
    "$build/test_all" '*')
  : > "$out.crashed"
  for np in 1 2 4; do
    : > "$out.mpi$np.log"
    : > "$out.mpi$np.res"
    skip=$(cat "$out.crashed")
    if [ "$np" -gt 1 ] && [ -n "$graded" ]; then
      graded_here=$([ "$np" = 2 ] && echo "$listed_mpi2" || echo "$listed_mpi4")
      skip=$(printf '%s\n' "$skip" "$graded_here")
      grep -E "@np$np\$" "$graded" >> "$out.mpi$np.res" || true
      for t in $graded_here; do  # a listed test the grader did not run has no result: it did not pass
        awk -v t="$t@np$np" '$2 == t { f = 1 } END { exit !f }' "$out.mpi$np.res" ||
          echo "NOTRUN $t@np$np" >> "$out.mpi$np.res"
      done
    fi
    names=$(grep -vxF -f <(printf '%s\n' "$skip" "") "$work/mpi_names.txt" || true)
    for t in $(cat "$out.crashed"); do
      awk -v t="$t@np$np" '$2 == t { f = 1 } END { exit !f }' "$out.mpi$np.res" ||
        echo "CRASH $t@np$np" >> "$out.mpi$np.res"
    done
    (cd "$tree" && kit_run_mpi_set "$out.mpi$np.res" "$out.mpi$np.log" "$out.tmp" \
      "$build/test_mpi" "$np" "$names")
    sed -nE 's/^([A-Z]+) (.*)@np[0-9]+$/\1 \2/p' "$out.mpi$np.res" > "$out.mpi$np"
    with_status "$out.mpi$np" CRASH >> "$out.crashed"
  done
  rm -rf "$out.tmp" "$out.crashed" "$out".mpi?.res
}

# names with a status among $2 (a regex) in results file $1
with_status() { awk -v s="^($2)\$" '$1 ~ s { print $2 }' "$1" | sort -u; }

# kind_of NAME TEST: the runner to list TEST under (assignments.txt): `mpi4` for a test of test_mpi
# that the reference skips at 2 ranks (it needs more), so that the grader does not count a skip.
kind_of() {
  if [ "$1" = test_all ]; then echo all
  elif kit_has "$(with_status "$work/base.mpi2" SKIP)" "$2"; then echo mpi4
  else echo mpi
  fi
}

# ---- the baseline --------------------------------------------------------------------------------
echo "== course kit: the reference suite (baseline)"
t0=$(now)
suite "$root" "$parent_bins" "$work/base"
base_time=$(secs "$t0" "$(now)")
base_bad=$(for f in "$work"/base.all "$work"/base.mpi[124]; do with_status "$f" 'FAIL|CRASH|NOTRUN'; done | sort -u)
if [ -n "$base_bad" ]; then
  if [ "${KIT_IGNORE_BASELINE:-0}" = 1 ]; then
    echo "warning: the reference fails these; KIT_IGNORE_BASELINE=1 leaves them out of every comparison:"
  else
    problem "the reference suite fails these, so student copies cannot be compared with it" \
      "(HINT: fix them first; KIT_IGNORE_BASELINE=1 is for working on the kit meanwhile):"
  fi
  printf '    %s\n' $base_bad
  if [ "${KIT_IGNORE_BASELINE:-0}" != 1 ]; then
    echo "== course kit: $problems problem(s)"
    exit 1
  fi
fi

# A test listed as `mpi` is graded at 2 ranks as well as 4: one that the reference skips at 2 (it
# needs more ranks) would keep every grade below full marks.
for n in $numbers; do
  for t in $(kit_tests "$n" mpi); do
    [ "$(kind_of test_mpi "$t")" = mpi ] || problem "assignment $n lists $t as mpi, but the" \
      "reference skips it at 2 ranks. HINT: list it as 'test $n mpi4 $t' (graded at 4 ranks only)"
  done
done

printf '%-4s %-28s %6s %6s %6s %6s %6s %6s  %s\n' N slug gen build grade suite restore grade2 \
  "tests: listed, stubbed grade, restored grade" > "$work/timings.txt"

# ---- one assignment ------------------------------------------------------------------------------

# score OUTPUT N: "K M" from the grader's line "assignment N: K/M tests passed"
score() { sed -nE "s#^assignment $2: ([0-9]+)/([0-9]+) tests passed\$#\\1 \\2#p" "$1" | tail -1; }

check_assignment() {
  local n=$1 copy="$work/a$1" t0 t1 t2 t3 t4 t5 t6 listed_all listed_mpi2 listed_mpi4 nlisted s1 s2
  echo "== course kit: assignment $n ($(kit_title "$n"))"
  listed_all=$( { kit_tests "$n" all; kit_tests "$n" cuda | grep -xF -f "$work/all_names.txt" || true; } |
    sort -u)
  listed_mpi2=$(kit_tests "$n" mpi | sort -u)             # graded at -np 2 and 4
  listed_mpi4=$( { kit_tests "$n" mpi; kit_tests "$n" mpi4; } | sort -u)  # graded at -np 4
  # the grader's items: each test_all test once (a `cuda` one too, skipped where it is not built),
  # each test_mpi test at -np 2 and at -np 4 (an `mpi4` one at -np 4 only)
  nlisted=$(( $( { kit_tests "$n" all; kit_tests "$n" cuda; } | sort -u | wc -l) +
              $(printf '%s\n' $listed_mpi2 $listed_mpi4 | sed '/^$/d' | wc -l) ))

  # 1. generate, and check that only the marked files differ
  t0=$(now)
  make --no-print-directory assignment N="$n" DIR="$copy" COPY_BUILD="$build" > "$work/a$n.gen.log" 2>&1 ||
    { problem "assignment $n: the generator failed: $(tail -3 "$work/a$n.gen.log")"; return; }
  t1=$(now)
  local marked changed
  marked=$(printf '%s\n' "$regions" | awk -F'\t' -v n="$n" '$1 == n { print $2 }' | sort -u)
  changed=$(cd "$root" && git ls-files --cached --others --exclude-standard |
    while read -r f; do if [ -f "$f" ] && ! cmp -s "$f" "$copy/$f"; then echo "$f"; fi; done |
    sort -u)
  [ "$changed" = "$marked" ] ||
    problem "assignment $n: the copy differs in [$(echo $changed)], expected exactly [$(echo $marked)]"

  # 2. build
  make -C "$copy" "${make_vars[@]}" course-build > "$work/a$n.build.log" 2>&1 ||
    { problem "assignment $n: the student copy does not build: $(grep -m3 -E 'error' "$work/a$n.build.log")"; return; }
  t2=$(now)

  # 3. the grader says 0 passed
  make -C "$copy" "${make_vars[@]}" grade N="$n" > "$work/a$n.grade0.log" 2>&1 || true
  cp "$copy/$build/grade-$n/output.log" "$work/a$n.grade0.output.log" 2> /dev/null || true
  cp "$copy/$build/grade-$n/results.txt" "$work/a$n.grade0.results" 2> /dev/null ||
    : > "$work/a$n.grade0.results"
  t3=$(now)
  s1=$(score "$work/a$n.grade0.log" "$n")
  [ -n "$s1" ] || problem "assignment $n: the grader printed no score (see $work/a$n.grade0.log)"
  [ "${s1%% *}" = 0 ] || problem "assignment $n: the grader reports ${s1/ //} passed before the bodies are written"
  [ "${s1##* }" = "$nlisted" ] ||
    problem "assignment $n: the grader counted ${s1##* } tests, the list has $nlisted"

  # 4. the whole suite fails exactly the listed tests (test_mpi: -np 1 may pass some of them, as
  #    one rank exchanges nothing; at -np 2 and 4 the listed ones are the grader's runs of step 3)
  suite "$copy" "$copy/$build/bin" "$work/a$n" "$work/a$n.grade0.results"
  t4=$(now)
  compare_failures "$n" "$work/a$n.all" "$work/base.all" "$listed_all" "test_all" 1
  compare_failures "$n" "$work/a$n.mpi1" "$work/base.mpi1" "$listed_mpi4" "test_mpi -np 1" 0
  compare_failures "$n" "$work/a$n.mpi2" "$work/base.mpi2" "$listed_mpi2" "test_mpi -np 2" 1
  compare_failures "$n" "$work/a$n.mpi4" "$work/base.mpi4" "$listed_mpi4" "test_mpi -np 4" 1

  # 5. restore the bodies from this tree; rebuild; the grader says all passed
  for f in $marked; do cp "$root/$f" "$copy/$f"; done
  make -C "$copy" "${make_vars[@]}" course-build > "$work/a$n.build2.log" 2>&1 ||
    { problem "assignment $n: the restored copy does not build"; return; }
  t5=$(now)
  make -C "$copy" "${make_vars[@]}" grade N="$n" > "$work/a$n.grade1.log" 2>&1 || true
  cp "$copy/$build/grade-$n/output.log" "$work/a$n.grade1.output.log" 2> /dev/null || true
  t6=$(now)
  s2=$(score "$work/a$n.grade1.log" "$n")
  # A restored item may skip only where the reference skips it too (no GPU, no data here).
  local item np nskip=0
  for item in $(awk '$1 == "SKIP" { print $2 }' "$work/a$n.grade1.log"); do
    nskip=$((nskip + 1))
    case "$item" in
      *@np*) np=${item##*@np}; kit_has "$(with_status "$work/base.mpi$np" SKIP)" "${item%@np*}" ;;
      *) kit_has "$(with_status "$work/base.all" SKIP)" "$item" ||
           ! grep -qxF "$item" "$work/all_names.txt" ;;  # a `cuda` test this build lacks
    esac || problem "assignment $n: restored, $item skips though the reference runs it"
  done
  if [ -z "$s2" ] || [ $(( ${s2%% *} + nskip )) -ne "${s2##* }" ]; then
    problem "assignment $n: restored, the grader reports ${s2:-no score} passed ($nskip skipped); see $work/a$n.grade1.log"
  fi
  [ "$nskip" -eq 0 ] || echo "   $nskip of the restored tests skip here (they skip in the reference too: no GPU, too few ranks, no data)"

  printf '%-4s %-28s %6s %6s %6s %6s %6s %6s  %s, %s, %s%s\n' "$n" "$(kit_slug "$n")" \
    "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" "$(secs "$t2" "$t3")" "$(secs "$t3" "$t4")" \
    "$(secs "$t4" "$t5")" "$(secs "$t5" "$t6")" "$nlisted" "${s1/ //}" "${s2/ //}" \
    "$([ "$nskip" -gt 0 ] && echo " ($nskip skipped as in the reference)")" | tee -a "$work/timings.txt"
  [ "${KIT_KEEP:-0}" = 1 ] || rm -rf "$copy"
}

# compare_failures N RESULTS BASE LISTED NAME ALL: the tests that did not pass in RESULTS (failed,
# crashed, or skipped where the reference BASE ran them: a suite whose set-up threw) are all in
# LISTED; with ALL=1 every listed test is among them too, or skips in BASE as well (it needs a GPU
# or data that is not here).
compare_failures() {
  local n=$1 res=$2 base=$3 listed=$4 name=$5 all=$6 got t
  got=$( { with_status "$res" 'FAIL|CRASH|NOTRUN'
           with_status "$res" SKIP | grep -vxF -f <(with_status "$base" SKIP; echo) || true; } |
         grep -vxF -f <(printf '%s\n' $base_bad "") | sort -u || true)
  for t in $got; do
    kit_has "$listed" "$t" ||
      problem "assignment $n: $name: $t does not pass in the student copy but is not listed" \
        "(add: test $n $(kind_of "$name" "$t") $t)"
  done
  [ "$all" = 1 ] || return 0
  for t in $listed; do
    kit_has "$got" "$t" && continue
    kit_has "$(with_status "$res" SKIP)" "$t" && kit_has "$(with_status "$base" SKIP)" "$t" && continue
    problem "assignment $n: $name: $t is listed but passes in the student copy"
  done
  grep '^ERROR ' "$res" | sed "s/^/KIT NOTE: assignment $n: $name: /" || true
}

t_all=$(now)
for n in $numbers; do check_assignment "$n"; done
echo "== course kit: times in seconds (baseline suite ${base_time}s; total $(secs "$t_all" "$(now)")s)"
cat "$work/timings.txt"
if [ "$problems" -gt 0 ]; then
  echo "== course kit: $problems problem(s); logs in $work"
  exit 1
fi
echo "== course kit: all checks hold for assignments: $(echo $numbers)"

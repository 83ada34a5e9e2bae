# lib.sh — shared pieces of the course kit (issue 14; notes/assignments/README.md): the assignment
# table, a private /tmp for test runs, and a GoogleTest runner that survives crashes and hangs.
# Sourced by make_assignment.sh, grade.sh and test_kit.sh (bash). POSIX tools only: no Python.

KIT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KIT_TABLE="$KIT_DIR/assignments.txt"

kit_die() {
  echo "error: $*" >&2
  exit 1
}

# ---- the assignment table (tests/course/assignments.txt) -----------------------------------------

# Lines "assignment N slug title..." and "test N runner Suite.Name"; '#' starts a comment.
kit_numbers() { awk '$1 == "assignment" { print $2 }' "$KIT_TABLE"; }
kit_slug() { awk -v n="$1" '$1 == "assignment" && $2 == n { print $3 }' "$KIT_TABLE"; }
kit_title() {
  awk -v n="$1" '$1 == "assignment" && $2 == n { $1 = $2 = $3 = ""; sub(/^ +/, ""); print }' \
    "$KIT_TABLE"
}
# The tests of assignment N run by `runner` (all = test_all, mpi = test_mpi under mpirun).
# `gpu` tests count as `all` only where KIT_GPU=1 (kit_gpu_here; the grader and the kit set it).
kit_tests() {
  awk -v n="$1" -v r="$2" -v g="${KIT_GPU:-0}" '$1 == "test" && $2 == n &&
    ($3 == r || (r == "all" && $3 == "gpu" && g == 1)) { print $4 }' "$KIT_TABLE"
}

# kit_gpu_here BUILD: prints 1 when a GPU is visible and BUILD was built with CUDA (its test_all
# has the GPU suites), else 0. Then the programs the CLI tests start pick the GPU, so a stubbed
# CUDA kernel breaks them too: those tests are listed as `gpu` (assignment 8).
kit_gpu_here() {
  # Whole outputs first, then grep on them: `cmd | grep -q` under pipefail fails when grep's early
  # exit kills cmd with SIGPIPE (see kit_has).
  local gpus tests
  gpus=$(nvidia-smi -L 2> /dev/null || true)
  tests=$("$1/test_all" --gtest_list_tests 2> /dev/null || true)
  if [ "${CUDA_VISIBLE_DEVICES-x}" != "" ] && grep -q '^GPU' <<< "$gpus" &&
     grep -q '^GpuTraining\.' <<< "$tests"; then
    echo 1
  else
    echo 0
  fi
}

# kit_has LIST NAME: whether NAME is a line of LIST. (Not `printf | grep -q`: grep stops reading at
# the first match, the writer can die of SIGPIPE, and under pipefail a found name reads as absent.)
kit_has() { grep -qxF -- "$2" <<< "$1"; }

kit_check_number() {
  local n=$1
  [[ "$n" =~ ^[0-9]+$ ]] && [ -n "$(kit_slug "$n")" ] ||
    kit_die "no assignment '$n'. HINT: N is one of: $(kit_numbers | tr '\n' ' ')(see notes/assignments/README.md)"
}

# Files under src/ and cuda/ of the tree at $1 that hold assignment markers.
kit_marked_files() {
  (cd "$1" && grep -rlE '^[[:space:]]*// ASSIGNMENT [0-9]+ BEGIN' src cuda 2>/dev/null | sort)
}

# "N file line name kind" for every region of the tree at $1, after checking all markers.
kit_regions() {
  local files
  files=$(kit_marked_files "$1")
  [ -n "$files" ] || return 0
  (cd "$1" && awk -v mode=list -f "$KIT_DIR/regions.awk" $files)
}

# ---- a private /tmp ------------------------------------------------------------------------------
#
# The training tests share a token cache at /tmp/moe-gpt-test-cache (tests/train/test_trainer.cpp).
# A cache built by other code would let a stubbed tokenizer pass them, and a student's half-done
# tokenizer must not write into everyone's cache; so test runs get an empty /tmp of their own (a
# mount namespace) where the kernel allows one. Elsewhere KIT_PRIVATE_TMP=0 and the caller decides.

kit_probe_private_tmp() {
  KIT_UNSHARE=()
  if [ "${KIT_NO_UNSHARE:-0}" = 1 ]; then  # to try the fallback where unshare works
    KIT_PRIVATE_TMP=0
    return
  fi
  if unshare --mount --propagation private true 2>/dev/null; then
    KIT_UNSHARE=(unshare --mount --propagation private)
  elif unshare --user --map-root-user --mount --propagation private true 2>/dev/null; then
    KIT_UNSHARE=(unshare --user --map-root-user --mount --propagation private)
  fi
  if [ ${#KIT_UNSHARE[@]} -gt 0 ] &&
     "${KIT_UNSHARE[@]}" sh -c 'd=$(mktemp -d) && mount --bind "$d" /tmp' 2>/dev/null; then
    KIT_PRIVATE_TMP=1
  else
    KIT_PRIVATE_TMP=0
  fi
}

# kit_in_private_tmp DIR CMD...: run CMD with DIR (created empty if missing) mounted on /tmp, or
# plainly when no private /tmp is possible. In that case KIT_COLD_CACHE=1 (the kit test sets it,
# as it must see what a clean machine sees) removes the shared token cache first.
kit_in_private_tmp() {
  local dir=$1
  shift
  [ -n "${KIT_PRIVATE_TMP:-}" ] || kit_probe_private_tmp
  if [ "$KIT_PRIVATE_TMP" = 1 ]; then
    # One folder per grade or suite (its caller removes it), shared by that run's test binaries
    # as one /tmp is shared by the runs of `make test`.
    [ -d "$dir" ] || { mkdir -p "$dir" && chmod 1777 "$dir"; }
    # A checkout under /tmp would vanish behind the mount: then only the cache gets its own folder.
    local target=/tmp
    case "$(pwd -P)/" in /tmp/*) target=/tmp/moe-gpt-test-cache; mkdir -p "$target" ;; esac
    "${KIT_UNSHARE[@]}" sh -c 'mount --bind "$0" "$1" && shift && exec "$@"' "$dir" "$target" "$@"
  else
    [ "${KIT_COLD_CACHE:-0}" = 1 ] && rm -rf /tmp/moe-gpt-test-cache
    "$@"
  fi
}

# ---- running GoogleTest --------------------------------------------------------------------------
#
# kit_run_gtest RESULTS LOG TMPDIR BINARY FILTER: runs BINARY on the tests that FILTER selects and
# writes "STATUS Suite.Name" lines to RESULTS (STATUS: PASS FAIL SKIP CRASH). A test that crashes
# the binary or runs past KIT_TEST_TIMEOUT seconds is marked CRASH and the run goes on with the
# tests it did not reach, so one bad test cannot hide the others. The output is appended to LOG.
kit_run_gtest() {
  local results=$1 log=$2 tmp=$3 bin=$4 filter=$5 timeout=${KIT_TEST_TIMEOUT:-1200}
  local done_filter="" out rc started
  : > "$results"
  for _ in $(seq 1 50); do
    out=$(mktemp)
    local f=$filter
    [ -n "$done_filter" ] && f="$filter-$done_filter"
    [[ "$filter" == *-* && -n "$done_filter" ]] && f="$filter:$done_filter"
    rc=0
    kit_in_private_tmp "$tmp" timeout "$timeout" "$bin" --gtest_color=no "--gtest_filter=$f" \
      > "$out" 2>&1 || rc=$?
    cat "$out" >> "$log"
    # A test whose suite set-up threw is reported as skipped, and the suite as failed in a line
    # "[  FAILED  ] Suite: SetUpTestSuite or TearDownTestSuite": such a test did not pass, so it
    # counts as FAIL. (A parameterised test's FAILED line reads "Suite.Name/0, where ...".)
    awk '/^\[  FAILED  \] [^ ]+: SetUpTestSuite/ { s = $4; sub(/:$/, "", s); bad[s] = 1 }
         { name = $4; sub(/,$/, "", name) }
         /^\[       OK \] .* \([0-9]+ ms\)$/ { r[++k] = "PASS " name }
         /^\[  FAILED  \] .* \([0-9]+ ms\)$/ { r[++k] = "FAIL " name }
         /^\[  SKIPPED \] .* \([0-9]+ ms\)$/ { r[++k] = "SKIP " name }
         END { for (i = 1; i <= k; i++) {
                 split(r[i], w, " "); suite = w[2]; sub(/\..*$/, "", suite)
                 if (w[1] == "SKIP" && suite in bad) r[i] = "FAIL " w[2]
                 print r[i] } }' "$out" >> "$results"
    # The test that was running when the binary died: a RUN line with no result line after it.
    started=$(awk '/^\[ RUN      \] / { t = $4 }
                   /^\[ +(OK|FAILED|SKIPPED) +\] .* \([0-9]+ ms\)$/ { t = "" }
                   END { print t }' "$out")
    rm -f "$out"
    if [ -z "$started" ]; then
      # finished on its own; a death outside any test (static set-up, exit) is reported too
      kit_run_died "$rc" && echo "ERROR binary-died-with-status-$rc-outside-a-test" >> "$results"
      return 0
    fi
    echo "CRASH $started" >> "$results"
    # Go on after the crashed test: exclude everything reported so far.
    done_filter=$(awk '{ print $2 }' "$results" | paste -sd: -)
  done
  return 0
}

# Exit statuses that mean the binary did not finish on its own (timeout, signals).
kit_run_died() { [ "$1" -eq 124 ] || [ "$1" -ge 128 ]; }

# ---- running test_mpi under mpirun -------------------------------------------------------------
#
# Every rank runs every test (they are collective). Rank 0 prints GoogleTest's lines; the others
# print only their failures, as "rank R/W: file:line: failure"; rank 0's last line, "tests (mpi,
# W=..): P passed, F failed (max over ranks), S skipped", counts a test as failed when it failed on
# any rank (tests/mpi/main_mpi.cpp). A rank that fails leaves the others waiting in a collective for
# ever, or pairs their next collectives with the wrong ones: after the first failure of a run,
# nothing later in that run can be trusted. Hence:
#   - a run of one test is exact: the first failure line, on any rank, decides FAIL and the run is
#     stopped there (not left to hang); a run that dies, or prints nothing for KIT_MPI_IDLE seconds
#     without having failed, is a CRASH;
#   - a run of several tests is exact when it ends on its own with no failure on any rank, or, at
#     one rank, whenever it ends on its own (one rank waits for no one). Otherwise, at several
#     ranks, it is stopped at the first failure line and its tests run again one at a time.
# So a list that passes costs one mpirun, and one that fails costs one mpirun per test.

# A failure line of rank 0 (a test's result) or of another rank (main_mpi.cpp's printer; an
# exception has no file, which prints as "(null):-1").
KIT_MPI_FAILURE='^\[  FAILED  \] .* \([0-9]+ ms\)$|^rank [0-9]+/[0-9]+: [^ ]+:-?[0-9]+: failure$'

# PID and every process below it (mpirun and its ranks under a subshell), children first.
kit_process_tree() {
  local child
  for child in $(pgrep -P "$1"); do kit_process_tree "$child"; done
  echo "$1"
}

# kit_stop_tree PID: SIGTERM to PID and everything below it (listed first: mpirun's ranks outlive a
# killed mpirun), SIGKILL to what is left after 3 seconds.
kit_stop_tree() {
  local tree p alive
  tree=$(kit_process_tree "$1")
  # shellcheck disable=SC2086
  kill -TERM $tree 2> /dev/null
  for _ in $(seq 1 15); do
    alive=""
    for p in $tree; do kill -0 "$p" 2> /dev/null && alive="$alive $p"; done
    [ -n "$alive" ] || break
    sleep 0.2
  done
  # shellcheck disable=SC2086
  [ -z "$alive" ] || kill -KILL $alive 2> /dev/null
  wait "$1" 2> /dev/null
}

# kit_watch IDLE TOTAL OUT STOP CMD...: runs CMD with its output in OUT; returns CMD's status, or
# stops it and returns 125 as soon as a line of OUT matches the extended regex STOP (none when
# empty), or 124 once OUT has not grown for IDLE seconds (a hang: the MPI tests print a line at
# the start and end of each test, and none runs for more than a second or two) or after TOTAL.
kit_watch() {
  local idle=$1 total=$2 out=$3 stop=$4 pid size last=-1 quiet=0 ticks=0 why="" rc=124
  shift 4
  "$@" > "$out" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2> /dev/null; do
    sleep 0.2
    ticks=$((ticks + 1))
    size=$(wc -c < "$out")
    if [ "$size" = "$last" ]; then quiet=$((quiet + 1)); else quiet=0; last=$size; fi
    if [ -n "$stop" ] && [ "$quiet" = 0 ] && grep -qE "$stop" "$out"; then why="at a failure"; rc=125
    elif [ "$quiet" -ge $((idle * 5)) ]; then why="a hang: $idle s without output"
    elif [ "$ticks" -ge $((total * 5)) ]; then why="past the limit of $total s"
    else continue
    fi
    kit_stop_tree "$pid"
    echo "== stopped after $((ticks / 5)) s ($why)" >> "$out"
    return "$rc"
  done
  wait "$pid"
}

# kit_mpi TMPDIR OUT STOP BINARY NP FILTER: one `$MPIRUN -np NP` run of BINARY on FILTER, watched.
kit_mpi() {
  # shellcheck disable=SC2086  # MPIRUN is a command line with options
  kit_watch "${KIT_MPI_IDLE:-10}" "${KIT_MPI_TIMEOUT:-600}" "$2" "$3" kit_in_private_tmp "$1" \
    ${MPIRUN:-mpirun} -np "$5" "$4" --gtest_color=no "--gtest_filter=$6"
}

# kit_run_mpi RESULTS LOG TMPDIR BINARY NP TEST: one test alone; appends "STATUS TEST@npNP"
# (STATUS: PASS FAIL SKIP CRASH) to RESULTS and the output to LOG.
kit_run_mpi() {
  local results=$1 log=$2 tmp=$3 bin=$4 np=$5 test=$6 out rc=0 status
  out=$(mktemp)
  kit_mpi "$tmp" "$out" "$KIT_MPI_FAILURE" "$bin" "$np" "$test" || rc=$?
  cat "$out" >> "$log"
  if [ "$rc" -eq 125 ]; then status=FAIL
  elif kit_run_died "$rc"; then status=CRASH
  elif grep -qE '^tests \(mpi, W=[0-9]+\): 0 passed, 0 failed \(max over ranks\), [1-9]' "$out"; then
    status=SKIP
  elif [ "$rc" -eq 0 ] && grep -qE '^tests \(mpi, W=[0-9]+\): 1 passed, 0 failed' "$out"; then
    status=PASS
  else status=FAIL
  fi
  rm -f "$out"
  echo "$status $test@np$np" >> "$results"
}

# kit_run_mpi_set RESULTS LOG TMPDIR BINARY NP TESTS: the tests TESTS (one name a line) in one run
# where that is exact (see above), else one at a time; appends "STATUS name@npNP" for each.
kit_run_mpi_set() {
  local results=$1 log=$2 tmp=$3 bin=$4 np=$5 tests out rc got running t
  tests=$(printf '%s\n' "$6" | sed '/^$/d')
  if [ "$np" -gt 1 ] && [ -n "$tests" ] && [ "$(printf '%s\n' "$tests" | wc -l)" = 1 ]; then
    kit_run_mpi "$results" "$log" "$tmp" "$bin" "$np" "$tests"  # exact as it is
    return 0
  fi
  while [ -n "$tests" ]; do
    out=$(mktemp)
    rc=0
    kit_mpi "$tmp" "$out" "$([ "$np" -gt 1 ] && echo "$KIT_MPI_FAILURE")" "$bin" "$np" \
      "$(printf '%s\n' "$tests" | paste -sd: -)" || rc=$?
    cat "$out" >> "$log"
    # rank 0's result of each test it finished ("STATUS name"), and the test it was running
    got=$(awk '/^\[ +(OK|FAILED|SKIPPED) +\] [^ ]+ \([0-9]+ ms\)$/ {
                 s = ($2 == "OK") ? "PASS" : ($2 == "FAILED") ? "FAIL" : "SKIP"; print s, $4 }' "$out")
    running=$(awk '/^\[ RUN      \] / { t = $4 } /^\[ +(OK|FAILED|SKIPPED) +\] / { t = "" }
                   END { print t }' "$out")
    rm -f "$out"
    if [ "$np" -gt 1 ]; then
      if [ "$rc" -eq 0 ] && ! grep -q '^FAIL ' <<< "$got"; then
        # no rank failed anything: rank 0's results are every rank's
        for t in $tests; do
          printf '%s\n' "$got" | awk -v t="$t" -v np="$np" '$2 == t { s = $1 }
            END { print (s == "" ? "NOTRUN" : s), t "@np" np }'
        done >> "$results"
      else
        for t in $tests; do kit_run_mpi "$results" "$log" "$tmp" "$bin" "$np" "$t"; done
      fi
      return 0
    fi
    # One rank: every result is exact; a crash or hang is the running test's, and the run goes on
    # with the tests it did not reach.
    printf '%s\n' "$got" | sed '/^$/d; s/$/@np1/' >> "$results"
    [ -z "$running" ] || echo "CRASH $running@np1" >> "$results"
    if kit_run_died "$rc" && [ -z "$running" ]; then
      echo "ERROR test_mpi-died-with-status-$rc-outside-a-test@np1" >> "$results"
    fi
    if [ -z "$got$running" ] || { ! kit_run_died "$rc" && [ -z "$running" ]; }; then
      # finished (or died before any test, when nothing can run): what has no result did not run
      for t in $tests; do
        printf '%s\n' "$got" | awk -v t="$t" '$2 == t { f = 1 } END { exit !f }' ||
          echo "NOTRUN $t@np1" >> "$results"
      done
      return 0
    fi
    tests=$(printf '%s\n' "$tests" |
      grep -vxF -f <(printf '%s\n' "$got" | awk '{ print $2 }'; echo "$running") || true)
  done
}

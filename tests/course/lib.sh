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
kit_tests() { awk -v n="$1" -v r="$2" '$1 == "test" && $2 == n && $3 == r { print $4 }' "$KIT_TABLE"; }

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

# kit_in_private_tmp DIR CMD...: run CMD with an empty DIR mounted on /tmp (DIR is emptied first),
# or plainly when no private /tmp is possible.
kit_in_private_tmp() {
  local dir=$1
  shift
  [ -n "${KIT_PRIVATE_TMP:-}" ] || kit_probe_private_tmp
  if [ "$KIT_PRIVATE_TMP" = 1 ]; then
    rm -rf "$dir" && mkdir -p "$dir" && chmod 1777 "$dir"
    # A checkout under /tmp would vanish behind the mount: then only the cache gets its own folder.
    local target=/tmp
    case "$(pwd -P)/" in /tmp/*) target=/tmp/moe-gpt-test-cache; mkdir -p "$target" ;; esac
    "${KIT_UNSHARE[@]}" sh -c 'mount --bind "$0" "$1" && shift && exec "$@"' "$dir" "$target" "$@"
  else
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

# kit_run_mpi RESULTS LOG TMPDIR BINARY NP TEST: one collective test under `$MPIRUN -np NP`;
# appends "STATUS TEST@npNP". Every rank runs it; main_mpi.cpp's exit status is non-zero when it
# failed on any rank, and its summary line says whether it was skipped. A rank that throws out of
# a collective leaves the others waiting for ever, so a run gets KIT_MPI_TIMEOUT seconds (one of
# these tests takes 2-3 s at 4 ranks on 2 cores, start-up included) and is then reported as CRASH.
kit_run_mpi() {
  local results=$1 log=$2 tmp=$3 bin=$4 np=$5 test=$6 timeout=${KIT_MPI_TIMEOUT:-15}
  local out rc status
  out=$(mktemp)
  rc=0
  # shellcheck disable=SC2086  # MPIRUN is a command line with options
  kit_in_private_tmp "$tmp" timeout "$timeout" ${MPIRUN:-mpirun} -np "$np" "$bin" --gtest_color=no \
    "--gtest_filter=$test" > "$out" 2>&1 || rc=$?
  cat "$out" >> "$log"
  if kit_run_died "$rc"; then status=CRASH
  elif grep -qE '^tests \(mpi, W=[0-9]+\): 0 passed, 0 failed \(max over ranks\), [1-9]' "$out"; then
    status=SKIP
  elif [ "$rc" -eq 0 ] && grep -qE '^tests \(mpi, W=[0-9]+\): 1 passed, 0 failed' "$out"; then
    status=PASS
  else status=FAIL
  fi
  rm -f "$out"
  echo "$status $test@np$np" >> "$results"
}

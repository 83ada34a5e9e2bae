#!/usr/bin/env bash
# make_assignment.sh — writes a student copy of the repository for one assignment of the course
# kit (issue 14; notes/assignments/README.md). `make assignment N=4 DIR=...` runs it.
#
#   tests/course/make_assignment.sh N DIR [--build BUILD]
#
# The copy holds every file git knows here (tracked, plus new files git does not ignore; so no build
# outputs, run folders or data caches), with each body marked `// ASSIGNMENT N BEGIN` ... `END` in
# src/ and cuda/ replaced by a stub that throws "not implemented yet (assignment N): <function>".
# Bodies of the other assignments stay as they are: the reference is the code everyone runs.
# --build BUILD also copies this tree's build folder BUILD, times kept, so that make recompiles
# only the stubbed files (the kit test uses it; a student builds from scratch).
#
# The copy is written next to DIR under a temporary name and renamed at the end: a failure leaves
# no half-written DIR. DIR must not exist yet, or be an empty folder.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage="usage: make assignment N=<number> DIR=<new folder>   (or: $0 N DIR [--build BUILD])"
[ $# -ge 2 ] || kit_die "$usage"
n=$1
dir=$2
shift 2
build=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) [ $# -ge 2 ] || kit_die "--build needs a folder. $usage"; build=$2; shift 2 ;;
    *) kit_die "unknown argument '$1'. $usage" ;;
  esac
done

root=$(cd "$KIT_DIR/../.." && pwd)
kit_check_number "$n"
[ -n "$dir" ] || kit_die "DIR is empty. $usage"
git -C "$root" rev-parse --is-inside-work-tree > /dev/null 2>&1 ||
  kit_die "$root is not a git checkout, so the files of the repository are not known. HINT: run" \
    "this in a clone of moe-gpt (a student copy cannot make further copies)"

# DIR: absent or empty; and not somewhere inside this checkout that git would then list as a new
# file of the repository (inside an ignored folder such as build/ is fine).
if [ -e "$dir" ]; then
  [ -d "$dir" ] && [ -z "$(ls -A "$dir")" ] ||
    kit_die "DIR '$dir' already exists and is not an empty folder; nothing was written." \
      "HINT: choose a new folder, or remove that one first"
fi
parent=$(dirname "$dir")
[ -d "$parent" ] || kit_die "the folder '$parent' that should hold DIR does not exist. HINT: create it first"
abs_dir="$(cd "$parent" && pwd)/$(basename "$dir")"
case "$abs_dir/" in
  "$root"/*)
    rel=${abs_dir#"$root"/}
    git -C "$root" check-ignore -q "$rel/" ||
      kit_die "DIR '$dir' is inside this repository, where git would see the copy as new files." \
        "HINT: put it outside the checkout (e.g. ../moe-gpt-a$n) or under build/"
    ;;
esac
if [ -n "$build" ]; then
  [ -d "$root/$build" ] || kit_die "--build $build: no such build folder in $root. HINT: build first (make test)"
fi

tmp="$abs_dir.part.$$"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$tmp"

# 1. The files: tracked and new-but-not-ignored ones that exist (a file deleted in the working tree
#    is still listed by git until the deletion is committed). tar keeps their modification times.
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf -) | tar -xpf - -C "$tmp"

# 2. The markers: all must be well formed, and assignment N must have at least one region.
regions=$(kit_regions "$tmp") || kit_die "malformed assignment markers (above); nothing was written"
mine=$(printf '%s\n' "$regions" | awk -F'\t' -v n="$n" '$1 == n')
[ -n "$mine" ] || kit_die "assignment $n has no marked region in src/ or cuda/. HINT: mark the" \
  "function bodies with '// ASSIGNMENT $n BEGIN <function>' ... '// ASSIGNMENT $n END'"

# 3. The stubs. The rewritten files get a new time, so make recompiles exactly them.
handout="notes/assignments/$(printf '%02d' "$n")-$(kit_slug "$n").md"
for f in $(printf '%s\n' "$mine" | cut -f2 | sort -u); do
  awk -v mode=stub -v n="$n" -v handout="$handout" -f "$KIT_DIR/regions.awk" "$tmp/$f" > "$tmp/$f.stub"
  mv "$tmp/$f.stub" "$tmp/$f"
done
echo "$n" > "$tmp/.assignment"  # `make grade` in the copy defaults to this assignment

# 4. The build folder, times kept, so that only the stubbed files are compiled again.
if [ -n "$build" ]; then
  mkdir -p "$tmp/$(dirname "$build")"
  cp -a "$root/$build" "$tmp/$build"
fi

[ -d "$abs_dir" ] && rmdir "$abs_dir"
mv "$tmp" "$abs_dir"
trap - EXIT

echo "assignment $n ($(kit_title "$n")): wrote $abs_dir"
printf '%s\n' "$mine" | awk -F'\t' '{ printf "  stubbed %s (%s:%s)\n", $4, $2, $3 }'
echo "handout: $handout"
echo "next: cd $abs_dir && make grade    (add USE_CUDA=0 to build without CUDA where nvcc exists)"

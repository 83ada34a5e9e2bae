#!/usr/bin/env bash
# install.sh — install what moe-gpt needs on a fresh Debian/Ubuntu machine: a C++ compiler and
# make, OpenMPI (mpicxx, mpirun), GoogleTest, xz (to decompress the shared data). CUDA is optional
# and never installed here: the Makefile uses nvcc when it finds it.
# Runs apt-get directly as root, through sudo otherwise; installs nothing that is already there.
set -euo pipefail

need=()
command -v g++     >/dev/null 2>&1 || need+=(g++)
command -v make    >/dev/null 2>&1 || need+=(make)
command -v mpicxx  >/dev/null 2>&1 || need+=(libopenmpi-dev)
command -v mpirun  >/dev/null 2>&1 || need+=(openmpi-bin)
command -v xz      >/dev/null 2>&1 || need+=(xz-utils)
if [ ! -f /usr/include/gtest/gtest.h ] || ! ls /usr/lib/*/libgtest.a /usr/lib/libgtest.a >/dev/null 2>&1; then
  need+=(libgtest-dev)
fi

if [ ${#need[@]} -eq 0 ]; then
  echo "install.sh: everything needed is already installed"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
  echo "install.sh: need root or sudo to install: ${need[*]}" >&2; exit 1
fi
echo "install.sh: installing ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"

# Old Debian releases ship GoogleTest as sources only: build the libraries if they are missing.
if ! ls /usr/lib/*/libgtest.a /usr/lib/libgtest.a >/dev/null 2>&1 && [ -d /usr/src/googletest ]; then
  $SUDO apt-get install -y -qq cmake
  tmp=$(mktemp -d); (cd "$tmp" && cmake -DCMAKE_BUILD_TYPE=Release /usr/src/googletest >/dev/null && make -s && $SUDO cp lib/*.a /usr/lib/)
  rm -rf "$tmp"
fi
echo "install.sh: done"

#!/usr/bin/env bash
# Builds xring in release mode and runs the demo: NOP throughput of xring against the kernel's
# io_uring, measured in the same run. (The networking demo replaces it as the stack lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DXRING_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc)" --target bench_nop
./build/release/bench/bench_nop "${1:-1.0}"

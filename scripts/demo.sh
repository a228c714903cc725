#!/usr/bin/env bash
# Builds xring in release mode and runs the demo: two processes joined by a memif link talk TCP
# on sockets offloaded onto xring's stack (ping-pong, stream, pipelined messages), then the same
# workloads on the kernel's loopback TCP; then the NOP benchmark against the kernel's io_uring.
# No root needed to run it (installing missing packages needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DXRING_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc)" --target xring_demo bench_nop
./build/release/demo/xring_demo "$@"
echo
./build/release/bench/bench_nop 1.0

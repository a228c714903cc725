#!/usr/bin/env bash
# Builds xring and runs every test twice: a -Werror build, then an ASan+UBSan build; then the
# fuzz targets' bounded smoke runs (clang, libFuzzer). Installs missing packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

echo "== build (-Werror) and test"
cmake -S . -B build/ci -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXRING_WERROR=ON >/dev/null
cmake --build build/ci -j"$jobs"
(cd build/ci && ctest --output-on-failure --timeout 900)

echo "== ASan + UBSan build and test"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DXRING_WERROR=ON -DXRING_SANITIZE=ON \
	-DXRING_BENCH=OFF >/dev/null
cmake --build build/asan -j"$jobs"
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --output-on-failure --timeout 900 -LE fuzz)

if ls fuzz/fuzz_*.c >/dev/null 2>&1; then
	echo "== fuzz targets (bounded smoke runs)"
	CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXRING_FUZZ=ON \
		-DXRING_TESTS=OFF -DXRING_BENCH=OFF >/dev/null
	cmake --build build/fuzz -j"$jobs"
	(cd build/fuzz && ctest --output-on-failure -L fuzz)
fi
echo "== all tests passed"

#!/usr/bin/env bash
# Installs the built tree into a scratch prefix, then builds and runs two small consumers
# against it: one through pkg-config, one through CMake's find_package(xring).
set -euo pipefail
build=$1
prefix=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/xring.h"
ls "$prefix"/lib*/libxring.so* >/dev/null
ls "$prefix"/lib*/libxring.a >/dev/null
ls "$prefix"/share/man/man3/xring_submit.3 >/dev/null
ls "$prefix"/share/man/man7/xring.7 >/dev/null

cat > "$work/app.c" <<'C'
#include <xring.h>
#include <stdio.h>
int main(void)
{
	struct xring ring;
	struct xring_cqe *cqe;

	if (xring_queue_init(4, &ring, 0))
		return 1;
	xring_prep_nop(xring_get_sqe(&ring));
	xring_sqe_set_data64(&ring.sq.sqes[0], 42);
	if (xring_submit_and_wait(&ring, 1) != 1 || xring_peek_cqe(&ring, &cqe) ||
	    cqe->user_data != 42 || cqe->res != 0)
		return 2;
	xring_queue_exit(&ring);
	puts("ok");
	return 0;
}
C
libdir=$(dirname "$(ls "$prefix"/lib*/pkgconfig/xring.pc)")
export PKG_CONFIG_PATH=$libdir
# shellcheck disable=SC2046
cc -o "$work/app_pc" "$work/app.c" $(pkg-config --cflags --libs xring) -Wl,-rpath,"$libdir/.."
[ "$("$work/app_pc")" = ok ]

mkdir -p "$work/cm"
cat > "$work/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(xring REQUIRED)
add_executable(app ../app.c)
target_link_libraries(app xring::xring)
add_executable(app_static ../app.c)
target_link_libraries(app_static xring::xring_static)
CM
cmake -S "$work/cm" -B "$work/cm/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cm/build" >/dev/null
[ "$("$work/cm/build/app")" = ok ]
[ "$("$work/cm/build/app_static")" = ok ]
echo "install, pkg-config and find_package consumers work"

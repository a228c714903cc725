#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Checks the man pages against the public headers:
#  (a) every xring_* function or function-like macro in the public headers has man/<name>.3;
#  (b) every page renders with man(1) without a single warning;
#  (c) every xring page a page refers to, as name(section), exists;
# plus the shape a page needs to be found and read: a .so link names an existing page whose NAME
# section lists the link (so whatis(1) finds it), and a section 3 page has the usual sections.
# Nothing here lists pages by hand, so pages added later are checked the same way.
#
# Usage: check_man.sh SOURCE_DIR

set -u

src=${1:?usage: check_man.sh SOURCE_DIR}
mandir=$src/man
failed=0

fail()
{
	echo "check_man: $*" >&2
	failed=1
}

for tool in man groff; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "check_man: '$tool' not found: install man-db and groff-base" >&2
		exit 1
	fi
done
if [ ! -d "$mandir" ]; then
	echo "check_man: no man directory at $mandir" >&2
	exit 1
fi

# (a) The project's definition of "a public function": any xring_ name followed by '(' in the
# public headers, macros and names in comments included.
headers=$src/include/xring.h
for h in "$src"/include/xring/*.h; do
	[ -e "$h" ] && headers="$headers $h"
done
# shellcheck disable=SC2086 # $headers is a list of paths without spaces
names=$(grep -ohE '\bxring_[a-z0-9_]+[[:space:]]*\(' $headers | sed -E 's/[[:space:]]*\($//' |
	sort -u)
if [ -z "$names" ]; then
	fail "found no xring_ functions in $headers"
fi
for n in $names; do
	[ -f "$mandir/$n.3" ] || fail "$n is declared in the public headers but man/$n.3 is missing"
done

# Pages are rendered from a scratch tree whose manN directories all point at man/, so that
# '.so manN/page.N' resolves exactly as it will once installed.
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
for s in 1 2 3 4 5 6 7 8; do
	ln -s "$mandir" "$tmp/man$s"
done

pages=
npages=0
for f in "$mandir"/*.[1-8]; do
	[ -f "$f" ] || continue
	pages="$pages ${f##*/}"
	npages=$((npages + 1))
done
if [ $npages -eq 0 ]; then
	fail "no pages in $mandir"
fi

# Prints the names listed in a page's NAME section.
name_section()
{
	awk '/^\.SH[[:space:]]+"?NAME"?[[:space:]]*$/ { on = 1; next }
	     /^\.SH/ { on = 0 }
	     on && !/^\./ { sub(/[[:space:]]*\\-.*/, ""); print }' "$1" | tr ',' '\n' |
		sed -E 's/^[[:space:]]+//; s/[[:space:]]+$//' | grep -v '^$'
}

for p in $pages; do
	f=$mandir/$p
	sec=${p##*.}
	base=${p%.*}

	# A .so link: one line naming an existing page that lists this name.
	if head -n 1 "$f" | grep -q '^\.so[[:space:]]'; then
		if [ "$(grep -cv '^\.\\"' "$f")" -ne 1 ]; then
			fail "$p: a .so link must hold only the .so line (and comments)"
		fi
		target=$(sed -n 's/^\.so[[:space:]]*//p' "$f" | head -n 1)
		case $target in
		man[1-8]/*.[1-8]) ;;
		*) fail "$p: .so target '$target' is not of the form manN/page.N" ;;
		esac
		tfile=$mandir/${target#man[1-8]/}
		if [ ! -f "$tfile" ]; then
			fail "$p: .so target $target does not exist"
		elif head -n 1 "$tfile" | grep -q '^\.so[[:space:]]'; then
			fail "$p: .so target $target is itself a link"
		elif ! name_section "$tfile" | grep -qxF "$base"; then
			fail "$p: the NAME section of $target does not list $base"
		fi
	else
		th=$(sed -n 's/^\.TH[[:space:]]\{1,\}\([^[:space:]]*\)[[:space:]]\{1,\}\([^[:space:]]*\).*/\1 \2/p' "$f" |
			head -n 1)
		[ "$th" = "$base $sec" ] || fail "$p: .TH says '$th', expected '$base $sec'"
		name_section "$f" | grep -qxF "$base" || fail "$p: NAME section does not list $base"
		required="NAME DESCRIPTION"
		[ "$sec" = 3 ] && required="NAME SYNOPSIS DESCRIPTION RETURN_VALUE SEE_ALSO"
		for s in $required; do
			grep -qE "^\.SH[[:space:]]+\"?$(echo "$s" | tr _ ' ')\"?[[:space:]]*$" "$f" ||
				fail "$p: no $(echo "$s" | tr _ ' ') section"
		done
	fi

	# (b) Rendering: anything on stderr is a failure.
	err=$(cd "$tmp" && MANWIDTH=80 MANPAGER=cat PAGER=cat \
		man --warnings -E UTF-8 -l "man$sec/$p" 2>&1 >/dev/null)
	rc=$?
	if [ -n "$err" ] || [ $rc -ne 0 ]; then
		fail "$p: man exited with $rc and said:"
		printf '%s\n' "$err" | sed 's/^/    /' >&2
	fi

	# (c) Cross-references: every xring page named as name(N), in SEE ALSO or in the text.
	refs=$(sed -E 's/\\f[BIRP]//g; s/\\f\(..//g; s/\\f\[[A-Z]*\]//g' "$f" |
		grep -oE '(^|[^A-Za-z0-9_])(__)?xring[a-z0-9_]*[[:space:]]*\([1-8]\)' |
		sed -E 's/^[^_x]//; s/[[:space:]]*\(([1-8])\)$/.\1/' | sort -u)
	for r in $refs; do
		[ -f "$mandir/$r" ] || fail "$p: refers to ${r%.*}(${r##*.}) but man/$r does not exist"
	done
done

if [ $failed -ne 0 ]; then
	echo "check_man: FAILED" >&2
	exit 1
fi
echo "check_man: $npages pages, $(echo "$names" | wc -l) public names: OK"

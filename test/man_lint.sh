#!/bin/sh
# Renders each man page given and fails if man(1) or groff warns about any of them.
status=0
command -v man >/dev/null || { echo "man not found: install man-db" >&2; exit 1; }
for page in "$@"; do
	warnings=$(MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
	if [ -n "$warnings" ]; then
		printf '%s:\n%s\n' "$page" "$warnings" >&2
		status=1
	fi
done
exit $status

#!/usr/bin/env bash
# run.sh: build hlcore, start the example backend, run hlcore with
# etc/hardline.yaml in the foreground and show the example service's URL.
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")"

scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

# The example service's backend: a static page on 127.0.0.1:8080.
python3 -m http.server 8080 --bind 127.0.0.1 --directory etc/example-site \
	>/dev/null 2>&1 &
backend=$!
hl=
cleanup() {
	[ -n "$hl" ] && kill "$hl" 2>/dev/null && wait "$hl" 2>/dev/null
	kill "$backend" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM

url=$(build/hlcore -c etc/hardline.yaml url example)
build/hlcore -c etc/hardline.yaml &
hl=$!

# Fetch the page through the proxy once, so you see that the URL works.
host=${url#http://}; host=${host%/}
ok=
for _ in $(seq 1 50); do
	if page=$(curl -fsS --max-time 5 -H "Host: $host" http://127.0.0.1:7009/ 2>/dev/null); then
		ok=1; break
	fi
	sleep 0.2
done
echo
if [ -n "$ok" ]; then
	echo "The example service works: $(printf '%s' "$page" | grep -o '<h1>[^<]*' | sed 's/<h1>//')"
else
	echo "hlcore is running, but the example page did not come through (see the log above)."
fi
echo "Open it in a browser on this machine:"
echo "    $url"
echo "The admin panel: http://127.0.0.1:7010/ (its login token is in hardline-state/admin.token)"
echo "(Ctrl-C stops hlcore and the example backend.)"
wait "$hl"

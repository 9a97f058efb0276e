# bench/lab.sh: sourced by bench/lan/run.sh and bench/dht/run.sh, the two
# namespace-lab benches (tests/lib/netlab.py): their checks and build.

# lab_bench NAME PLUGIN BUILD_DIR TOOL...: needs root and every TOOL on
# PATH; makes a Release build in BUILD_DIR unless it has hlcore and
# plugins/PLUGIN; then runs bench/NAME/bench.py for RUNS fresh clients
# (default 15) within 600 s.
lab_bench() {
	local name=$1 plugin=$2 build=$3 t
	shift 3
	local here src
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	src=$(cd "$here/.." && pwd)
	[ "$(id -u)" -eq 0 ] || { echo "bench/$name: needs root (network namespaces)" >&2; exit 2; }
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "bench/$name: $t is missing (Debian: apt-get install ${t/ip/iproute2})" >&2; exit 2; }
	done
	if [ ! -x "$build/hlcore" ] || [ ! -f "$build/plugins/$plugin" ]; then
		cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DHL_TESTS=OFF >/dev/null
		cmake --build "$build" -j"$(nproc)" >/dev/null
	fi
	exec timeout 600 python3 "$here/$name/bench.py" "$build/hlcore" "${RUNS:-15}"
}

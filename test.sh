#!/usr/bin/env bash
# test.sh: the whole test suite, as CI runs it.
#  1. a gcc build (-Werror) and every test with ctest;
#  2. a clang build with AddressSanitizer + UndefinedBehaviorSanitizer and
#     the libFuzzer targets, every test again, then a short run of each
#     fuzz target (HL_FUZZ_SECONDS each, default 20);
#  3. clang-format of every C file.
# Lab tests (network namespaces) need root; without it they are skipped.
set -uo pipefail
cd "$(dirname "$0")"
root=$PWD
scripts/deps.sh test || exit 1
# playwright-core for the browser tests (chromium itself comes from Debian).
[ -d tests/browser/node_modules ] ||
	(cd tests/browser && npm ci --no-audit --no-fund) || exit 1

jobs=$(nproc)
fail=0
passed=0
failed=0
step() {
	local name=$1; shift
	echo "=== $name"
	if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); fail=1; echo "=== FAILED: $name"; fi
}

build_gcc() {
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc >/dev/null &&
	cmake --build build -j"$jobs" 2>&1 | grep -v '^\[' ; test "${PIPESTATUS[0]}" -eq 0
}
ctest_gcc() { (cd build && ctest --output-on-failure -j"$jobs"); }

build_asan() {
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
		-DHL_SANITIZE=ON -DHL_FUZZ=ON >/dev/null &&
	cmake --build build-asan -j"$jobs" 2>&1 | grep -v '^\[' ; test "${PIPESTATUS[0]}" -eq 0
}
ctest_asan() {
	(cd build-asan &&
	 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 ctest --output-on-failure -j"$jobs")
}
fuzz_all() {
	local secs=${HL_FUZZ_SECONDS:-20} ok=0 f name seeds work
	for f in build-asan/fuzz/fuzz-*; do
		[ -x "$f" ] || continue
		name=$(basename "$f"); name=${name#fuzz-}
		seeds=$root/tests/fuzz/corpus/$name
		work=$(mktemp -d)
		echo "--- fuzz $name for ${secs}s"
		local dirs=("$work")
		[ -d "$seeds" ] && dirs+=("$seeds")
		if ! "$f" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
			"${dirs[@]}" >"$work.log" 2>&1; then
			tail -50 "$work.log"; ok=1
		else
			grep -E '^(#[0-9]+.*DONE|Done)' "$work.log" | tail -1
		fi
		rm -rf "$work" "$work.log"
	done
	return $ok
}
format_check() {
	local bad
	bad=$(git ls-files '*.c' '*.h' | grep -v '^tests/abi/frozen/' | while read -r f; do
		clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"
	done)
	[ -z "$bad" ] && return 0
	echo "not clang-formatted (run clang-format -i on them):"; echo "$bad"; return 1
}

step "gcc build" build_gcc && step "tests (gcc build)" ctest_gcc
step "clang ASan+UBSan build" build_asan && step "tests (ASan+UBSan)" ctest_asan && step "fuzz targets" fuzz_all
step "clang-format" format_check

echo
echo "test.sh: $passed passed, $failed failed"
exit $fail

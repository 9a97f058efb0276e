#!/usr/bin/env bash
# bench/run.sh [BUILD_DIR]: hlcore's tunnel against a stunnel4 pair and
# against direct access to an nginx backend, all on loopback, in one run:
#   1. bulk download MiB/s of a large file (curl, best of 3)
#   2. keep-alive requests/s of a small file (wrk, 32 connections, 2 threads)
#   3. RSS per idle tunnelled connection (2000 keep-alive connections held)
# and a table with the ratios and issue 2's targets; and, when BENCH_PARTS
# names it, issue 9's
#   4. "tunnels": 10,000 idle tunnels through hlcore nodes started with the
#      soft descriptor limit of a user's shell (1024): how many are served,
#      whether a new request still is, RSS per tunnel against stunnel's.
# See bench/README.md.
#
# It installs nothing: a missing tool is named with its Debian package.
# It builds a Release hlcore into BUILD_DIR (default bench/build).
# Every process it starts is stopped on exit; the whole run is bounded
# by BENCH_TIME_LIMIT seconds.
#
# Knobs (environment): BULK_MIB (1024), BULK_RUNS (3), WRK_SECONDS (10), WRK_RUNS (3),
# WRK_CONNS (32), WRK_THREADS (2), IDLE_CONNS (2000), NGINX_WORKERS (1),
# BENCH_PARTS ("bulk rps idle", or any of these and "tunnels"),
# BENCH_TIME_LIMIT (900), BENCH_SKIP_BUILD (set: use BUILD_DIR/hlcore as it is),
# TUNNELS (10000), TUNNELS_STUNNEL (TUNNELS, or fewer if stunnel4 cannot
# serve that many with the descriptor limit), TUNNELS_NOFILE ("1024:65536":
# the soft:hard descriptor limit both hlcore nodes start with in part 4),
# TUNNELS_DEADLINE (300: seconds to open all of them, per path),
# TUNNELS_PARALLEL (64: how many are being opened at a time),
# SERVER_LIMITS (a limits: map for the service node's config).
# shellcheck disable=SC2034,SC2154 # start sets pid_NAME with eval; small_url_* are read as ${!v}
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${1:-$here/build}
BULK_MIB=${BULK_MIB:-1024}
BULK_RUNS=${BULK_RUNS:-3}
WRK_RUNS=${WRK_RUNS:-3}
WRK_SECONDS=${WRK_SECONDS:-10}
WRK_CONNS=${WRK_CONNS:-32}
WRK_THREADS=${WRK_THREADS:-2}
IDLE_CONNS=${IDLE_CONNS:-2000}
NGINX_WORKERS=${NGINX_WORKERS:-1}
BENCH_TIME_LIMIT=${BENCH_TIME_LIMIT:-900}
BENCH_PARTS=${BENCH_PARTS:-bulk rps idle}
TUNNELS=${TUNNELS:-10000}
TUNNELS_NOFILE=${TUNNELS_NOFILE:-1024:65536}
TUNNELS_DEADLINE=${TUNNELS_DEADLINE:-300}
TUNNELS_PARALLEL=${TUNNELS_PARALLEL:-64}
want() { case " $BENCH_PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

say() { printf '%s\n' "$*" >&2; }
die() {
	say "bench: $*"
	exit 1
}

# ---- what this needs ----
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need nginx nginx-light
need stunnel4 stunnel4
need wrk wrk
need curl curl
need python3 python3
need openssl openssl
need cmake cmake
need timeout coreutils
need awk mawk
if [ ${#missing[@]} -gt 0 ]; then
	say "bench: missing tools; install them with:"
	say "    apt-get install ${missing[*]}"
	exit 2
fi
# N tunnelled connections take about 2N descriptors in each tunnel
# process, N in nginx and N in idle_conns.py. Everything this starts gets
# fd_need as its soft limit, but for part 4's hlcore nodes (TUNNELS_NOFILE).
fd_need=8192
at_least() { [ "$2" -le "${!1}" ] || printf -v "$1" %s "$2"; }
want idle && at_least fd_need $((2 * IDLE_CONNS + 1024))
if want tunnels; then
	case $TUNNELS_NOFILE in
	[0-9]*:[0-9]*) ;;
	*) die "TUNNELS_NOFILE must be SOFT:HARD (e.g. 1024:65536), not '$TUNNELS_NOFILE'" ;;
	esac
	at_least fd_need $((2 * TUNNELS + 1024))
	at_least fd_need "${TUNNELS_NOFILE#*:}"
fi
# Where the hard limit cannot be raised (not root, or a container without
# CAP_SYS_RESOURCE) but allows 8192, everything runs with that hard limit
# and the table says so: part 4 then cannot hold more than about half of it.
hard=$(ulimit -Hn)
fd_note=
if [ "$hard" != unlimited ] && [ "$hard" -lt "$fd_need" ] &&
	! ulimit -Hn "$fd_need" 2>/dev/null; then
	[ "$hard" -ge 8192 ] ||
		die "cannot raise the descriptor limit to $fd_need (hard limit $hard); raise it (e.g. in /etc/security/limits.conf, or run as root) and retry"
	fd_note="the hard descriptor limit is $hard here and could not be raised to $fd_need (that needs CAP_SYS_RESOURCE): a process holds at most about $(((hard - 20) / 2)) tunnels"
	say "bench: $fd_note"
	fd_need=$hard
fi
ulimit -Sn "$fd_need"
[ "${TUNNELS_NOFILE#*:}" -le "$fd_need" ] || TUNNELS_NOFILE=${TUNNELS_NOFILE%:*}:$fd_need
# stunnel4 serves at most limit * 125 / 256 clients at once ("Clients
# allowed" in its debug log); below that, part 4 gives it a smaller N.
stunnel_max=$((fd_need * 125 / 256))
st_default=$TUNNELS
[ "$TUNNELS" -le "$((stunnel_max - 64))" ] || st_default=$(((stunnel_max - 64) / 100 * 100))
TUNNELS_STUNNEL=${TUNNELS_STUNNEL:-$st_default}

# ---- processes, clean-up, time limit ----
pids=()
declare -A names  # by pid: the name start gave it
crashes=          # processes that ended by a signal other than ours
work=
watchdog=
reap() { # reap PID: give it 5 s to end (it has had a TERM), then KILL; report a crash
	local rc=0
	for _ in $(seq 1 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || rc=$?
	case $rc in
	0 | 143) ;; # ended by itself, or by our TERM
	137) say "bench: ${names[$1]:-$1} did not end within 5 s of a TERM; killed" ;;
	*)
		if [ "$rc" -gt 128 ]; then
			crashes+="${crashes:+; }${names[$1]:-$1} ended by signal $((rc - 128)) ($(kill -l "$rc"))"
		fi
		say "bench: ${names[$1]:-$1} ended with status $rc"
		;;
	esac
}
cleanup() {
	local rc=$?
	set +e # clean up everything, whatever fails on the way
	trap - EXIT INT TERM
	[ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill "${pids[i]}" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do reap "$pid"; done
	[ -n "$work" ] && rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'say "bench: interrupted"; exit 130' INT
trap 'say "bench: stopped (time limit of ${BENCH_TIME_LIMIT} s, or TERM)"; exit 124' TERM
(
	trap 'kill "$s" 2>/dev/null; exit 0' TERM
	sleep "$BENCH_TIME_LIMIT" &
	s=$!
	wait "$s" && kill -TERM $$
) >/dev/null 2>&1 &
watchdog=$!

# start NAME CMD...: run in the background, log in $work/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	names[$!]=$name
	eval "pid_$name=$!"
}
forget() { # forget PID: it has ended and was waited for; never signal it again
	local keep=() p
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	pids=("${keep[@]}")
}
stop() { # stop NAME
	local v=pid_$1 pid
	pid=${!v}
	kill "$pid" 2>/dev/null || true
	reap "$pid"
	forget "$pid"
}
wait_port() { # wait_port PORT NAME
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		local v=pid_$2
		kill -0 "${!v}" 2>/dev/null || break
		sleep 0.1
	done
	say "bench: $2 is not listening on 127.0.0.1:$1; its log:"
	tail -n 20 "$work/$2.log" >&2
	exit 1
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# ---- build ----
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
	say "== building a Release hlcore in $build"
	blog=$(mktemp "${TMPDIR:-/tmp}/hl-bench-build.XXXXXX")
	if ! { timeout 600 cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release &&
		timeout 600 cmake --build "$build" -j"$(nproc)"; } >"$blog" 2>&1; then
		tail -n 30 "$blog" >&2
		rm -f "$blog"
		die "the build failed (above)"
	fi
	rm -f "$blog"
fi
hlcore=$build/hlcore
[ -x "$hlcore" ] || die "no $hlcore"

# ---- scratch space (tmpfs when there is room) ----
base=/dev/shm
need_kib=$(((BULK_MIB + 64) * 1024))
if [ ! -w "$base" ] || [ "$(df -Pk "$base" | awk 'NR==2 {print $4}')" -lt "$need_kib" ]; then
	base=${TMPDIR:-/tmp}
fi
work=$(mktemp -d "$base/hl-bench.XXXXXX")
chmod 755 "$work" # nginx's workers may run as nobody
mkdir -p "$work/www" "$work/ngx-tmp"

# Free loopback ports.
read -r P_NGX P_SS P_SC P_TLS P_PROXY < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

# ---- the backend: nginx serving a big and a small file ----
say "== files: ${BULK_MIB} MiB and 100 bytes in $work/www"
if want bulk; then
	head -c "$((BULK_MIB * 1048576))" /dev/urandom >"$work/www/big.bin"
fi
head -c 100 /dev/urandom | base64 -w0 | head -c 100 >"$work/www/small.txt"
chmod 644 "$work/www/"*
big_size=$((BULK_MIB * 1048576))

user_line=
[ "$(id -u)" = 0 ] && user_line="user nobody nogroup;"
cat >"$work/nginx.conf" <<EOF
$user_line
daemon off;
master_process on;
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile $fd_need;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections $fd_need; }
http {
	access_log off;
	default_type application/octet-stream;
	sendfile on;
	tcp_nopush on;
	keepalive_timeout 600s;
	keepalive_requests 100000000;
	client_body_temp_path $work/ngx-tmp/body;
	proxy_temp_path $work/ngx-tmp/proxy;
	fastcgi_temp_path $work/ngx-tmp/fastcgi;
	uwsgi_temp_path $work/ngx-tmp/uwsgi;
	scgi_temp_path $work/ngx-tmp/scgi;
	server {
		listen 127.0.0.1:$P_NGX;
		root $work/www;
	}
}
EOF
start nginx nginx -e "$work/nginx-error.log" -p "$work" -c "$work/nginx.conf"
wait_port "$P_NGX" nginx

# ---- the stunnel pair (self-signed P-256 certificate, as hlcore's) ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$work/stunnel.key" -out "$work/stunnel.crt" -days 2 \
	-subj /CN=bench >/dev/null 2>&1 || die "openssl could not make a certificate"
cat >"$work/stunnel-server.conf" <<EOF
foreground = yes
pid =
debug = warning
[bench]
accept = 127.0.0.1:$P_SS
connect = 127.0.0.1:$P_NGX
cert = $work/stunnel.crt
key = $work/stunnel.key
EOF
cat >"$work/stunnel-client.conf" <<EOF
foreground = yes
pid =
debug = warning
[bench]
client = yes
accept = 127.0.0.1:$P_SC
connect = 127.0.0.1:$P_SS
EOF
start_stunnel() {
	start stunnel_server stunnel4 "$work/stunnel-server.conf"
	start stunnel_client stunnel4 "$work/stunnel-client.conf"
	wait_port "$P_SS" stunnel_server
	wait_port "$P_SC" stunnel_client
}
start_stunnel

# ---- the hlcore pair ----
cat >"$work/server.yaml" <<EOF
state_dir: $work/hl-server
log: { level: warn }
proxy: { listen: "off" }
plugins:
  transport-tls: { listen: "127.0.0.1:$P_TLS" }
services:
  bench:
    target: "127.0.0.1:$P_NGX"
    password: auto
EOF
# SERVER_LIMITS: a limits: map for the service node, e.g.
# "{ tunnels_per_peer: 100000 }" (the bench's one client is one address).
if [ -n "${SERVER_LIMITS:-}" ]; then
	echo "limits: $SERVER_LIMITS" >>"$work/server.yaml"
fi
url=$("$hlcore" -c "$work/server.yaml" url bench) || die "hlcore url failed"
label=${url#http://}
label=${label%%.localhost*}
hash=${label##*-}
[ ${#hash} = 40 ] || die "cannot read the keyhash from '$url'"
host_hdr="$label.localhost:$P_PROXY"
cat >"$work/client.yaml" <<EOF
state_dir: $work/hl-client
log: { level: warn }
proxy: { listen: "127.0.0.1:$P_PROXY" }
plugins:
  transport-tls: {}
peers:
  $hash: ["127.0.0.1:$P_TLS"]
EOF
with_nofile() { # with_nofile SOFT:HARD CMD...: exec CMD with that descriptor limit
	ulimit -Sn "${1%:*}" && ulimit -Hn "${1#*:}" && shift && exec "$@"
}
start_hlcore() { # start_hlcore [SOFT:HARD]: the pair, with that descriptor limit
	local lim=()
	[ -z "${1:-}" ] || lim=(with_nofile "$1")
	start hl_server "${lim[@]}" "$hlcore" -c "$work/server.yaml"
	start hl_client "${lim[@]}" "$hlcore" -c "$work/client.yaml"
	wait_port "$P_TLS" hl_server
	wait_port "$P_PROXY" hl_client
}
start_hlcore

# ---- the three paths work and carry the right bytes ----
small_url_direct=http://127.0.0.1:$P_NGX/small.txt
small_url_stunnel=http://127.0.0.1:$P_SC/small.txt
small_url_hlcore=http://127.0.0.1:$P_PROXY/small.txt
expect=$(cat "$work/www/small.txt")
for p in direct stunnel hlcore; do
	v=small_url_$p
	hdr=()
	[ $p = hlcore ] && hdr=(-H "Host: $host_hdr")
	got=$(timeout 20 curl -fsS --max-time 15 "${hdr[@]}" "${!v}") ||
		die "the $p path does not work (curl ${!v})"
	[ "$got" = "$expect" ] || die "the $p path returned other bytes than the file"
done
tls_info() { # tls_info PORT [SNI]
	timeout 10 openssl s_client -connect "127.0.0.1:$1" ${2:+-servername "$2"} \
		</dev/null 2>/dev/null | awk '/^New, / {print $2 " " $NF; exit}'
}
tls_st=$(tls_info "$P_SS")
tls_hl=$(tls_info "$P_TLS" "$hash")
say "== TLS: stunnel $tls_st, hlcore $tls_hl"

# ---- 1. bulk download, 2. keep-alive requests/s ----
# The paths take turns, round after round, and each keeps its best round:
# on a shared machine a burst of someone else's work then spoils one
# round of one path, not a whole path. The CPU time of the two tunnel
# processes is summed over all rounds and divided by the work done.
declare -A bulk cpu rps rps_err tick0 work_done
for p in direct stunnel hlcore; do bulk[$p]=-; rps[$p]=-; done
for k in bulk_stunnel bulk_hlcore rps_stunnel rps_hlcore; do cpu[$k]=-; done
hz=$(getconf CLK_TCK)
pair_ticks() { # pair_ticks PATH: CPU ticks used so far by the path's tunnel pair
	case $1 in
	stunnel) echo $(($(cpu_ticks "$pid_stunnel_client") + $(cpu_ticks "$pid_stunnel_server"))) ;;
	hlcore) echo $(($(cpu_ticks "$pid_hl_client") + $(cpu_ticks "$pid_hl_server"))) ;;
	*) echo 0 ;;
	esac
}
path_url() { # path_url PATH FILE
	case $1 in
	direct) echo "http://127.0.0.1:$P_NGX/$2" ;;
	stunnel) echo "http://127.0.0.1:$P_SC/$2" ;;
	hlcore) echo "http://127.0.0.1:$P_PROXY/$2" ;;
	esac
}
path_hdr() { # the Host header the path needs
	if [ "$1" = hlcore ]; then echo "Host: $host_hdr"; else echo "X-Bench: 1"; fi
}
bulk_once() { # bulk_once PATH: one download; keeps the best speed
	local p=$1 out size speed t0
	t0=$(pair_ticks "$p")
	out=$(timeout 300 curl -sS --max-time 280 -o /dev/null -H "$(path_hdr "$p")" \
		-w '%{size_download} %{speed_download}' "$(path_url "$p" big.bin)") ||
		die "bulk download on the $p path failed"
	tick0[$p]=$((${tick0[$p]:-0} + $(pair_ticks "$p") - t0))
	read -r size speed <<<"$out"
	[ "$size" = "$big_size" ] ||
		die "bulk download on the $p path got $size bytes, not $big_size"
	speed=$(awk -v b="$speed" 'BEGIN {printf "%.0f", b / 1048576}')
	if [ "${bulk[$p]}" = - ] || [ "$speed" -gt "${bulk[$p]}" ]; then bulk[$p]=$speed; fi
	work_done[$p]=$((${work_done[$p]:-0} + size))
}
wrk_once() { # wrk_once PATH: one wrk run; keeps the best req/s
	local p=$1 out r n t0 err
	t0=$(pair_ticks "$p")
	out=$(timeout $((WRK_SECONDS + 60)) wrk -t"$WRK_THREADS" -c"$WRK_CONNS" \
		-d"${WRK_SECONDS}s" -H "$(path_hdr "$p")" "$(path_url "$p" small.txt)" 2>&1) ||
		die "wrk on the $p path failed: $out"
	tick0[$p]=$((${tick0[$p]:-0} + $(pair_ticks "$p") - t0))
	r=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
	n=$(awk '/ requests in / {print $1}' <<<"$out")
	if [ -z "$r" ] || [ -z "$n" ]; then die "cannot read wrk's output on the $p path: $out"; fi
	err=$(awk '/Non-2xx|Socket errors/ {sub(/^ */, ""); printf "%s; ", $0}' <<<"$out")
	if [ -n "$err" ]; then rps_err[$p]+="$err"; fi
	if [ "${rps[$p]}" = - ] || [ "$r" -gt "${rps[$p]}" ]; then rps[$p]=$r; fi
	work_done[$p]=$((${work_done[$p]:-0} + n))
}
cpu_reset() { for p in direct stunnel hlcore; do tick0[$p]=0; work_done[$p]=0; done; }
best_of_rounds() { # best_of_rounds ROUNDS ONCE RESULTS UNIT: cpu_reset, then ROUNDS rounds of ONCE on each path, saying the best of each so far
	local rounds=$1 once=$2 unit=$4 round p
	local -n best_so_far=$3
	cpu_reset
	for round in $(seq 1 "$rounds"); do
		for p in direct stunnel hlcore; do "$once" "$p"; done
		say "   round $round: direct ${best_so_far[direct]}, stunnel ${best_so_far[stunnel]}, hlcore ${best_so_far[hlcore]} $unit (best so far)"
	done
}
cpu_per_work() { # cpu_per_work PART SCALE FORMAT: cpu[PART_PATH] for stunnel and hlcore, CPU seconds of the pair per unit of work done times SCALE
	local p
	for p in stunnel hlcore; do
		cpu[$1_$p]=$(awk -v t="${tick0[$p]}" -v hz="$hz" -v w="${work_done[$p]}" -v s="$2" \
			"BEGIN {printf \"$3\", s * t / hz / w}")
	done
}

if want bulk; then
	say "== 1. bulk: ${BULK_MIB} MiB with curl, $BULK_RUNS rounds, best kept"
	best_of_rounds "$BULK_RUNS" bulk_once bulk MiB/s
	cpu_per_work bulk 1073741824 %.2f # CPU seconds of the pair per GiB carried
fi

if want rps; then
	say "== 2. keep-alive: wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_SECONDS}s on a 100-byte file, $WRK_RUNS rounds, best kept"
	best_of_rounds "$WRK_RUNS" wrk_once rps req/s
	cpu_per_work rps 1e6 %.1f # CPU microseconds of the pair per request
	for p in direct stunnel hlcore; do
		if [ -n "${rps_err[$p]:-}" ]; then say "   ERRORS on the $p path: ${rps_err[$p]}"; fi
	done
fi

# ---- 3. RSS per idle tunnelled connection, 4. many idle tunnels ----
# Fresh processes, so that memory freed by the runs above (and kept by
# malloc) does not hide what the idle connections cost.
# Results by PART:PATH (idle:hlcore, tunnels:stunnel...): tunnels asked
# for, held, why the others failed, seconds to open them, RSS per held
# tunnel in the client and the server process, descriptors open in them
# while held, and what a new request got then.
declare -A asked held why took rss_c rss_s fds fresh
per_tunnel() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {if (n > 0) printf "%.1f", (b - a) / n; else print "-"}'; }
fd_count() { local f=("/proc/$1/fd/"*); echo "${#f[@]}"; }
nofile_of() { awk '/^Max open files/ {print $4 " soft, " $5 " hard"}' "/proc/$1/limits"; }
fresh_request() { # fresh_request PORT HOSTHDR: is a new request served, and how fast
	local out rc=0 code secs err
	out=$(timeout 20 curl -sS -o /dev/null --max-time 10 -H "Host: $2" \
		-w '%{http_code} %{time_total}' "http://127.0.0.1:$1/small.txt" 2>"$work/fresh.err") || rc=$?
	read -r code secs <<<"$out"
	secs=$(awk -v s="${secs:-0}" 'BEGIN {printf "%.1f ms", s * 1000}')
	err=$(sed -n 's/^curl: //p' "$work/fresh.err" | head -n1)
	if [ "$rc" = 0 ] && [ "$code" = 200 ]; then
		echo "served (HTTP 200 in $secs)"
	elif [ "$rc" = 0 ]; then
		echo "NOT served: HTTP $code in $secs"
	else
		echo "NOT served: ${err:-curl exit $rc} (after $secs)"
	fi
}
restart() { # restart hlcore [SOFT:HARD] | restart stunnel: a fresh pair
	if [ "$1" = hlcore ]; then
		stop hl_client
		stop hl_server
		start_hlcore "${2:-}"
	else
		stop stunnel_client
		stop stunnel_server
		start_stunnel
	fi
}
# reading FIFO CMD...: exec CMD with FIFO as its input and without the
# writing end the script holds (fd 4). (Redirecting the call to start
# would not do: a background command's input is /dev/null unless the
# command itself redirects it.)
reading() {
	exec <"$1" 4>&-
	shift
	exec "$@"
}
idle_run() { # idle_run PART:PATH N DEADLINE PARALLEL: open N, hold them, measure
	local k=$1 n=$2 dl=$3 par=$4 port hh cp sp c0 s0 c1 s1 line name=${1/:/_}
	local fifo=$work/${1/:/_}.fifo v=pid_${1/:/_}
	if [ "${k#*:}" = hlcore ]; then
		port=$P_PROXY hh=$host_hdr cp=$pid_hl_client sp=$pid_hl_server
	else
		port=$P_SC hh=127.0.0.1:$P_SC cp=$pid_stunnel_client sp=$pid_stunnel_server
	fi
	# One connection first: lazily made state (TLS contexts, DNS) is
	# not a per-connection cost.
	timeout 20 curl -fsS -o /dev/null -H "Host: $hh" "http://127.0.0.1:$port/small.txt" ||
		die "$k: warm-up request failed"
	sleep 0.5
	c0=$(rss_kib "$cp")
	s0=$(rss_kib "$sp")
	mkfifo "$fifo"
	exec 4<>"$fifo" # the connections stay open until this closes
	start "$name" reading "$fifo" python3 "$here/idle_conns.py" --partial \
		--deadline="$dl" 127.0.0.1 "$port" "$n" "$hh" /small.txt "$par"
	line=
	for _ in $(seq 1 $(((dl + 30) * 10))); do
		line=$(head -n1 "$work/$name.log" 2>/dev/null || true)
		[ -n "$line" ] && break
		if ! kill -0 "${!v}" 2>/dev/null; then # it ended: its last words
			line=$(head -n1 "$work/$name.log" 2>/dev/null || true)
			break
		fi
		sleep 0.1
	done
	case $line in
	ready*) held[$k]=$n why[$k]= ;;
	held*) held[$k]=$(awk '{print $2}' <<<"$line") why[$k]=${line#*; failed } ;;
	*) exec 4>&-; die "$k: idle_conns.py: ${line:-no answer in $((dl + 30)) s}" ;;
	esac
	asked[$k]=$n
	took[$k]=$(sed -n 's/^[^(]*(\([0-9.]*\) s).*/\1/p' <<<"$line")
	sleep 1
	c1=$(rss_kib "$cp")
	s1=$(rss_kib "$sp")
	fds[$k]="$(fd_count "$cp") / $(fd_count "$sp")"
	fresh[$k]=$(fresh_request "$port" "$hh")
	exec 4>&-
	wait "${!v}" 2>/dev/null || true
	forget "${!v}"
	rss_c[$k]=$(per_tunnel "$c0" "$c1" "${held[$k]}")
	rss_s[$k]=$(per_tunnel "$s0" "$s1" "${held[$k]}")
	say "   $k: ${held[$k]} of $n held in ${took[$k]} s${why[$k]:+; failed ${why[$k]}}"
	say "   $k: client $c0 -> $c1 KiB, server $s0 -> $s1 KiB; descriptors open ${fds[$k]}; a new request: ${fresh[$k]}"
}
if want idle; then
	say "== 3. idle: $IDLE_CONNS keep-alive connections held open"
	restart hlcore
	idle_run idle:hlcore "$IDLE_CONNS" 120 64
	restart stunnel
	idle_run idle:stunnel "$IDLE_CONNS" 120 64
fi
if want tunnels; then
	say "== 4. tunnels: $TUNNELS idle tunnels (stunnel: $TUNNELS_STUNNEL), $TUNNELS_PARALLEL at a time; hlcore nodes started with descriptor limit $TUNNELS_NOFILE (soft:hard)"
	restart hlcore "$TUNNELS_NOFILE"
	hl_nofile="client $(nofile_of "$pid_hl_client"), server $(nofile_of "$pid_hl_server")"
	idle_run tunnels:hlcore "$TUNNELS" "$TUNNELS_DEADLINE" "$TUNNELS_PARALLEL"
	stop hl_client # now, so that a crash on the way out is in the table
	stop hl_server
	restart stunnel
	st_nofile=$(nofile_of "$pid_stunnel_client")
	idle_run tunnels:stunnel "$TUNNELS_STUNNEL" "$TUNNELS_DEADLINE" "$TUNNELS_PARALLEL"
	stop stunnel_client
	stop stunnel_server
fi

# ---- the table ----
ratio() {
	if [ "$1" = - ] || [ "$2" = - ]; then echo -; return; fi
	awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'
}
verdict() { # verdict VALUE LIMIT >=|<=
	if [ "$1" = - ]; then echo "not measured"; return; fi
	awk -v v="$1" -v t="$2" -v op="$3" \
		'BEGIN {ok = (op == ">=") ? v >= t : v <= t; print ok ? "met" : "MISSED"}'
}
b_hs=$(ratio "${bulk[hlcore]}" "${bulk[stunnel]}")
b_hd=$(ratio "${bulk[hlcore]}" "${bulk[direct]}")
r_hs=$(ratio "${rps[hlcore]}" "${rps[stunnel]}")
r_hd=$(ratio "${rps[hlcore]}" "${rps[direct]}")
idle_max=-
if want idle && [ "${rss_c[idle:hlcore]}" != - ] && [ "${rss_s[idle:hlcore]}" != - ]; then
	idle_max=$(awk -v a="${rss_c[idle:hlcore]}" -v b="${rss_s[idle:hlcore]}" 'BEGIN {print (a > b) ? a : b}')
fi
row() { printf '%-30s %9s %9s %9s %15s %14s   %s\n' "$@"; }
echo
echo "hlcore bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), Linux $(uname -r)"
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
	hl_what="hlcore $(git -C "$src" describe --always --dirty 2>/dev/null || echo "?") (built in $build)"
else
	hl_what="hlcore as found in $build"
fi
echo "$hl_what, $(stunnel4 -version 2>&1 | awk '/^stunnel/ {print $1 " " $2; exit}'), nginx $(nginx -v 2>&1 | sed 's|.*/||') ($NGINX_WORKERS worker), all on loopback"
echo "TLS: stunnel ${tls_st:-?}; hlcore ${tls_hl:-?}"
served() { # served PART:PATH: a line if not all were served
	[ "${held[$1]}" = "${asked[$1]}" ] ||
		echo "  NOT all served by ${1#*:}: ${held[$1]} of ${asked[$1]}; failed ${why[$1]}"
}
if want bulk || want rps; then
	echo
	row "" direct stunnel hlcore hlcore/stunnel hlcore/direct "target (issue 2)"
	row "bulk MiB/s (${BULK_MIB} MiB, best of $BULK_RUNS)" "${bulk[direct]}" "${bulk[stunnel]}" "${bulk[hlcore]}" "$b_hs" "$b_hd" \
		">= 1.5x stunnel: $(verdict "$b_hs" 1.5 ">=")"
	row "req/s (wrk -c$WRK_CONNS, best of $WRK_RUNS)" "${rps[direct]}" "${rps[stunnel]}" "${rps[hlcore]}" "$r_hs" "$r_hd" \
		">= 1.5x stunnel: $(verdict "$r_hs" 1.5 ">=")"
fi
if want idle; then
	echo
	printf '%-30s %12s %12s   %s\n' "RSS per idle tunnel ($IDLE_CONNS)" "client side" "server side" "target"
	printf '%-30s %8s KiB %8s KiB   %s\n' "  hlcore" "${rss_c[idle:hlcore]}" "${rss_s[idle:hlcore]}" "<= 16 KiB each: $(verdict "$idle_max" 16 "<=")"
	printf '%-30s %8s KiB %8s KiB\n' "  stunnel (for comparison)" "${rss_c[idle:stunnel]}" "${rss_s[idle:stunnel]}"
	served idle:hlcore
	served idle:stunnel
fi
if want tunnels; then
	trow() { printf '%-38s %18s %18s %15s\n' "$@"; }
	kib() { if [ "$1" = - ]; then echo -; else echo "$1 KiB"; fi; }
	h=tunnels:hlcore t=tunnels:stunnel
	echo
	echo "Idle tunnels (issue 9): $TUNNELS through one hlcore client node, opened $TUNNELS_PARALLEL at a time"
	echo "  hlcore nodes started with descriptor limit $TUNNELS_NOFILE (soft:hard), running with: $hl_nofile"
	echo "  stunnel4 (one thread per connection) started with: $st_nofile"
	[ -z "$fd_note" ] || echo "  NOTE: $fd_note"
	[ "$TUNNELS_STUNNEL" = "$TUNNELS" ] ||
		echo "  stunnel gets a smaller N, $TUNNELS_STUNNEL (stunnel4 serves at most $stunnel_max clients with $fd_need descriptors)"
	trow "" hlcore stunnel hlcore/stunnel
	trow "  tunnels served" "${held[$h]} of ${asked[$h]}" "${held[$t]} of ${asked[$t]}" ""
	trow "  seconds to open them" "${took[$h]}" "${took[$t]}" ""
	trow "  RSS per served tunnel, client node" "$(kib "${rss_c[$h]}")" "$(kib "${rss_c[$t]}")" "$(ratio "${rss_c[$h]}" "${rss_c[$t]}")"
	trow "  RSS per served tunnel, server node" "$(kib "${rss_s[$h]}")" "$(kib "${rss_s[$t]}")" "$(ratio "${rss_s[$h]}" "${rss_s[$t]}")"
	trow "  descriptors open, client / server" "${fds[$h]}" "${fds[$t]}" ""
	echo "  a new request while they are held:"
	echo "    hlcore:  ${fresh[$h]}"
	echo "    stunnel: ${fresh[$t]}"
	for n in hl_client hl_server; do # what the nodes said, most frequent first
		sed 's/[0-9][0-9]*/N/g' "$work/$n.log" | sort | uniq -c | sort -rn | head -n 3 |
			awk -v n="$n" '{c = $1; sub(/^ *[0-9]+ /, ""); print "  " n " logged " c " x: " $0}'
	done
	served "$h"
	served "$t"
	if [ "${held[$h]}" = "${asked[$h]}" ]; then
		echo "  hlcore: all $TUNNELS served"
	fi
fi
if want bulk || want rps; then
	echo
	printf '%-46s %9s %9s\n' "CPU of the tunnel pair (client + server)" stunnel hlcore
	printf '%-46s %9s %9s\n' "  bulk: CPU seconds per GiB" "${cpu[bulk_stunnel]}" "${cpu[bulk_hlcore]}"
	printf '%-46s %9s %9s\n' "  keep-alive: CPU microseconds per request" "${cpu[rps_stunnel]}" "${cpu[rps_hlcore]}"
fi
if [ -n "$crashes" ]; then
	echo
	echo "CRASHED: $crashes (stopped with TERM, or before)"
fi

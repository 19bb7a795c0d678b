#!/usr/bin/env bash
# perf.sh (make perf): measure cairn the way docs/PERFORMANCE.md says, and
# append the figures to its history table.
#
# Builds bin/cairn, starts a fresh 3-node `cairn dev` (default settings:
# fsync on) in a temporary directory on free ports, loads PERF_RECORDS keys
# of PERF_VALUE_SIZE bytes, and runs, PERF_DURATION each:
#   1. PERF_WORKERS workers, updates only, uniform keys
#   2. PERF_WORKERS workers, reads only, uniform keys
#   3. 1 worker, updates only, uniform keys
#   4. YCSB workload A (50% reads, 50% updates, zipfian), PERF_WORKERS workers
# then appends one row per run (date, commit, CPUs, load average, ops/s,
# p50/p99/p99.9, node CPU and the harness's own CPU per request, bytes
# sent per request, errors, the host's figures from scripts/hostprobe,
# PERF_NOTE) to PERF_DOC. The cluster is stopped on the way out, whatever
# happened; after a failure nothing is appended and the cluster's logs
# are kept.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}

duration=${PERF_DURATION:-15s}
records=${PERF_RECORDS:-20000}
value_size=${PERF_VALUE_SIZE:-100}
workers=${PERF_WORKERS:-50}
note=${PERF_NOTE:-}
doc=${PERF_DOC:-docs/PERFORMANCE.md}
base=${PERF_BASE_PORT:-}

die() { echo "perf.sh: $*" >&2; exit 1; }
command -v jq >/dev/null || die "jq is needed to read the bench results"
[[ -f $doc ]] || die "$doc not found"
[[ $note != *"|"* ]] || die "PERF_NOTE must not contain |"

# Dirty: the tree differs from the commit, except for the rows this very
# script appended to the history (so that a second run reads clean).
commit=$(git rev-parse --short HEAD)
exclude=()
doc_rel=$(realpath -m --relative-to=. "$doc")
if [[ $doc_rel != ../* ]]; then
	exclude=(":(exclude)$doc_rel")
fi
if [[ -n $(git status --porcelain -- . "${exclude[@]}") ]]; then
	commit+="-dirty"
fi

echo "== build"
go build -o bin/cairn ./cmd/cairn
cairn=bin/cairn

# port_free: nothing listens on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# layout_free: the ports `cairn dev --nodes 3 --base-port $1` takes.
layout_free() {
	local off i
	for off in 0 100 200; do
		for i in 1 2 3; do
			port_free $(($1 + off + i)) || return 1
		done
	done
}
if [[ -z $base ]]; then
	for _ in $(seq 100); do
		candidate=$((20000 + RANDOM % 400 * 100))
		if layout_free "$candidate"; then
			base=$candidate
			break
		fi
	done
	[[ -n $base ]] || die "no free port range found; set PERF_BASE_PORT"
fi
layout_free "$base" || die "ports of base $base are in use"

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-perf.XXXXXX")
dev_pid=
# stop_cluster: SIGTERM to cairn dev, which stops its nodes cleanly; a
# node still there after 60s is killed.
stop_cluster() {
	[[ -n $dev_pid ]] || return 0
	if kill -0 "$dev_pid" 2>/dev/null; then
		kill -TERM "$dev_pid" 2>/dev/null || true
		for _ in $(seq 600); do
			kill -0 "$dev_pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	local pidfile
	for pidfile in "$work"/data/n*/pid; do
		[[ -f $pidfile ]] || continue
		pid=$(<"$pidfile")
		if kill -0 "$pid" 2>/dev/null; then
			echo "perf.sh: node pid $pid did not stop; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	kill -KILL "$dev_pid" 2>/dev/null || true
	wait "$dev_pid" 2>/dev/null || true
	dev_pid=
}
finish() {
	local status=$?
	stop_cluster
	if ((status == 0)); then
		rm -rf "$work"
	else
		echo "perf.sh: failed; the cluster's logs and results are in $work" >&2
	fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# What the machine itself costs today (fsync with three writers, a thread
# wake-up, plain CPU), measured on the disk the nodes will use, before
# they start: the figures of two rows compare only when these do.
echo "== host"
go build -o "$work/hostprobe" ./scripts/hostprobe
host=$("$work/hostprobe" -dir "$work")
[[ $host != *"|"* ]] || die "hostprobe printed a |"
echo "$host"

# cairn dev is secure by default: its CA and user root's certificate are
# in DIR/certs, with the console user's token, which cairn bench reads to
# measure the nodes' CPU from their admin ports.
export CAIRN_CERTS_DIR=$work/data/certs
echo "== start a 3-node cairn dev on base port $base ($work)"
"$cairn" dev --nodes 3 --data "$work/data" --base-port "$base" >"$work/dev.log" 2>&1 &
dev_pid=$!
addrs="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
alive=0
for _ in $(seq 600); do
	kill -0 "$dev_pid" 2>/dev/null || { cat "$work/dev.log" >&2; die "cairn dev exited"; }
	alive=$("$cairn" members --addr "127.0.0.1:$((base + 1))" -o json 2>/dev/null |
		jq '[.members[] | select(.alive)] | length' 2>/dev/null) || alive=0
	((alive == 3)) && break
	sleep 0.1
done
((alive == 3)) || die "the cluster did not form within 60s (see $work)"
# cairn dev adds the console user and writes its token once the nodes are
# up, and the nodes learn the user by gossip: until every admin port takes
# the token, cairn bench would read no CPU figures (401 from /metrics).
token=$work/data/certs/console.token
admitted=0
for _ in $(seq 300); do
	if [[ -s $token ]]; then
		command -v curl >/dev/null || { admitted=3; break; }
		admitted=0
		for i in 1 2 3; do
			code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(tr -d '\n' <"$token")" \
				"https://127.0.0.1:$((base + 200 + i))/metrics" 2>/dev/null) || code=0
			[[ $code == 200 ]] && admitted=$((admitted + 1))
		done
		((admitted == 3)) && break
	fi
	sleep 0.1
done
((admitted == 3)) || echo "perf.sh: the admin ports did not all take the console token within 30s; CPU figures may be missing" >&2

load_avg=$(cut -d' ' -f1 /proc/loadavg)
cpus=$(nproc)
date=$(date -u +%Y-%m-%d)

# bench NAME ARGS...: one `cairn bench` run, its result in $work/NAME.json.
bench() {
	local name=$1
	shift
	echo "== $name"
	"$cairn" bench --addr "$addrs" --records "$records" --duration "$duration" \
		--out "$work/$name.json" "$@" 2>"$work/$name.progress" || {
		tail -n 5 "$work/$name.progress" >&2
		return 1
	}
}
uniform=(--distribution uniform --value-size "$value_size")
bench update-50 --mix update=100 "${uniform[@]}" --concurrency "$workers"
bench read-50 --mix read=100 "${uniform[@]}" --concurrency "$workers" --skip-load
bench update-1 --mix update=100 "${uniform[@]}" --concurrency 1 --skip-load
bench workload-a --workload a --value-size "$value_size" --concurrency "$workers" --skip-load

# row FILE LABEL: the history table's row of one result.
row() {
	jq -r --arg date "$date" --arg commit "$commit" --arg cpus "$cpus" --arg load "$load_avg" \
		--arg run "$2" --arg host "$host" --arg note "$note" '
		def ms: . / 10 | round / 100 | tostring;
		def lat(q): [.run.ops | to_entries[] | select(.value.ok > 0) | [.key, (.value.latency_us[q] | ms)]]
			| if length == 0 then "-" elif length == 1 then .[0][1] else map(.[0] + " " + .[1]) | join(" / ") end;
		def orNA(f): (f // null) as $v | if $v == null then "n/a" else ($v | round | tostring) end;
		"| \($date) | \($commit) | \($cpus) | \($load) | \($run) | \(.run.ops_per_sec | round) | \(lat("p50")) | \(lat("p99")) | \(lat("p99_9")) | \(orNA(.run.cost.cpu.us_per_op)) | \(orNA(.run.cost.harness_cpu.us_per_op)) | \(orNA(.run.cost.traffic.bytes_sent_per_op)) | \(.run.errors) | \($host) | \($note) |"
	' "$1"
	jq -r '.run.cost.unavailable // empty | "perf.sh: cost not fully measured: " + .' "$1" >&2
}
rows=$(
	row "$work/update-50.json" "update, $workers workers"
	row "$work/read-50.json" "read, $workers workers"
	row "$work/update-1.json" "update, 1 worker"
	row "$work/workload-a.json" "workload A, $workers workers"
)
stop_cluster
[[ -n $rows ]] || die "no figures to append"
printf '%s\n' "$rows" >>"$doc"
echo "== appended to $doc:"
printf '%s\n' "$rows"

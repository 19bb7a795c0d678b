# shellcheck shell=bash
# Shared by the chaos commands in this directory (kill, pause, resume,
# restart, partition, heal); sourced, never run.
#
# Every command takes a target, then its arguments:
#   --dev DIR         a `cairn dev` cluster: DIR/nI/{pid,cmd,server.log}
#                     (the default is --dev ./data, what `make run` uses)
#   --docker PROJECT  a docker compose project of docker-compose.yml: the
#                     containers labelled with that project, one service per
#                     node
# A command prints one line saying what it did on stdout. Bad arguments
# (unknown flag or node, missing pid file, a node not in the state the
# command needs) change nothing: they print "COMMAND: what is wrong" on
# stderr (and the usage, when the command line itself is malformed) and
# exit 2. A failure of the action itself exits 1.

set -euo pipefail
shopt -s nullglob

# shellcheck disable=SC2034 # for the commands
CHAOS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHAOS_CMD=$(basename "$0" .sh)

say() { printf '%s: %s\n' "$CHAOS_CMD" "$*"; }
# die: the action failed.
die() { printf '%s: %s\n' "$CHAOS_CMD" "$*" >&2; exit 1; }
# bad: the arguments or the cluster's state do not allow the command.
bad() { printf '%s: %s\n' "$CHAOS_CMD" "$*" >&2; exit 2; }
usage_error() { printf '%s: %s\n%s\n' "$CHAOS_CMD" "$1" "$CHAOS_USAGE" >&2; exit 2; }

# chaos_init parses the target flags out of "$@" into TARGET (dev|docker),
# DEV_DIR or PROJECT, and leaves the other arguments in ARGS.
chaos_init() {
	TARGET="" DEV_DIR="" PROJECT="" ARGS=()
	while (($#)); do
		case $1 in
		--dev | --docker)
			if (($# < 2)) || [[ -z $2 ]]; then usage_error "$1 needs a value"; fi
			set_target "${1#--}" "$2"
			shift 2
			;;
		--dev=* | --docker=*)
			local flag=${1%%=*}
			[[ -n ${1#*=} ]] || usage_error "$flag needs a value"
			set_target "${flag#--}" "${1#*=}"
			shift
			;;
		-h | --help)
			printf '%s\n' "$CHAOS_USAGE"
			exit 0
			;;
		--)
			shift
			ARGS+=("$@")
			break
			;;
		-*) usage_error "unknown flag $1" ;;
		*)
			ARGS+=("$1")
			shift
			;;
		esac
	done
	if [[ -z $TARGET ]]; then
		set_target dev ./data
	fi
	case $TARGET in
	dev) dev_init ;;
	docker) docker_init ;;
	esac
}

set_target() {
	[[ -z $TARGET ]] || usage_error "give one target: --dev DIR or --docker PROJECT"
	TARGET=$1
	case $1 in
	dev) DEV_DIR=$2 ;;
	docker) PROJECT=$2 ;;
	esac
}

# one_node checks that ARGS is exactly one node name and sets NODE.
one_node() {
	((${#ARGS[@]} == 1)) || usage_error "want exactly one NODE, got ${#ARGS[@]} arguments"
	NODE=${ARGS[0]}
	check_name "$NODE"
	"${TARGET}_check_node" "$NODE"
}

check_name() {
	[[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || bad "invalid node name '$1'"
}

# side_list parses a comma-separated side ("n1,n2") into the named array.
side_list() {
	local -n out=$1
	local raw=$2 name
	[[ -n $raw && $raw != *,,* && $raw != ,* && $raw != *, ]] || bad "invalid side '$raw': want node names separated by commas, e.g. n1,n2"
	IFS=, read -r -a out <<<"$raw"
	for name in "${out[@]}"; do
		check_name "$name"
	done
}

short_hash() { printf '%s' "$1" | sha256sum | cut -c1-8; }

# wait_for SECONDS CMD... runs CMD every 0.1s until it succeeds, for at
# most SECONDS; it fails if CMD never did.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

need_root() {
	[[ $(id -u) == 0 ]] || bad "$1 needs root (it changes iptables rules)"
	command -v iptables >/dev/null || bad "$1 needs iptables (apt-get install -y iptables)"
}

ipt() { iptables -w 10 "$@"; }

chain_exists() { ipt -n -L "$1" >/dev/null 2>&1; }

# remove_chain deletes every jump to CHAIN from PARENT (the ones carrying
# COMMENT, which only these scripts add), then the chain itself. It
# reports whether there was anything to remove.
remove_chain() {
	local parent=$1 chain=$2 comment=$3 removed=1
	while ipt -D "$parent" -m comment --comment "$comment" -j "$chain" 2>/dev/null; do removed=0; done
	if chain_exists "$chain"; then
		{ ipt -F "$chain" && ipt -X "$chain"; } || die "cannot remove iptables chain $chain"
		removed=0
	fi
	return $removed
}

# probe_blocked runs a TCP connect to HOST:PORT, limited to one second,
# through the wrapper command in "$@" (which runs it in one node's cgroup or
# network namespace), and succeeds only if the connect hung until the limit:
# what a DROP does. A refusal or any other error counts as not blocked. A
# slow machine can only make a broken cut look working, never the reverse.
probe_blocked() {
	local host=$1 port=$2 rc=0
	shift 2
	# shellcheck disable=SC2016 # expanded by the inner bash
	"$@" timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null || rc=$?
	((rc == 124))
}

# ---------------------------------------------------------------- dev ----

dev_init() {
	[[ -d $DEV_DIR ]] || bad "no cairn dev cluster at $DEV_DIR: no such directory (start one with: cairn dev --data $DEV_DIR)"
	DEV_DIR=$(cd "$DEV_DIR" && pwd -P)
	local f
	for f in "$DEV_DIR"/*/cmd; do return 0; done
	bad "no cairn dev cluster at $DEV_DIR: no nI/cmd files"
}

dev_nodes() {
	local f
	for f in "$DEV_DIR"/*/cmd; do
		f=${f%/cmd}
		printf '%s\n' "${f##*/}"
	done | sort -V
}

dev_check_node() {
	[[ -f $DEV_DIR/$1/cmd ]] || bad "unknown node $1 in $DEV_DIR (nodes: $(dev_nodes | paste -sd' ' -))"
}

# dev_pid prints the pid recorded in NODE's pid file.
dev_pid() {
	local file=$DEV_DIR/$1/pid pid
	[[ -f $file ]] || bad "$1: no pid file $file"
	pid=$(<"$file")
	pid=${pid//[[:space:]]/}
	[[ $pid =~ ^[1-9][0-9]*$ ]] || bad "$1: pid file $file holds '$pid', not a process id"
	printf '%s\n' "$pid"
}

# proc_state prints the state letter of PID (R, S, T, Z...), nothing if
# there is no such process.
proc_state() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	printf '%s\n' "${stat%% *}"
}

# dev_is_node succeeds if PID is a live (not zombie) `cairn server --name
# NODE`: a pid file can outlive its process, and the pid be reused.
dev_is_node() {
	local pid=$1 name=$2 state
	state=$(proc_state "$pid")
	[[ -n $state && $state != Z && $state != X ]] || return 1
	tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null |
		awk -v name="$name" '$0 == "server" { s = 1 } prev == "--name" && $0 == name { n = 1 } { prev = $0 } END { exit !(s && n) }'
}

# dev_gone succeeds once PID has exited (gone, or a zombie) or the pid was
# reused by another program. A process in the middle of exiting has already
# lost its command line, so an empty one does not count as gone.
dev_gone() {
	local pid=$1 name=$2 state cmdline
	state=$(proc_state "$pid")
	[[ -z $state || $state == Z || $state == X ]] && return 0
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
	[[ -n $cmdline ]] && ! dev_is_node "$pid" "$name"
}

# dev_running sets PID to NODE's process, or exits 2 saying it is not
# running.
dev_running() {
	PID=$(dev_pid "$1")
	dev_is_node "$PID" "$1" || bad "$1 is not running (pid file says $PID, which is not a live cairn server --name $1)"
}

# dev_cmd reads NODE's recorded command line into the array CMDLINE.
dev_cmd() {
	local file=$DEV_DIR/$1/cmd
	mapfile -t CMDLINE <"$file"
	if ((${#CMDLINE[@]} < 2)) || [[ ${CMDLINE[1]} != server ]]; then
		bad "$1: $file is not a cairn server command line"
	fi
}

# dev_flag prints the value of FLAG in NODE's recorded command line.
dev_flag() {
	local i
	dev_cmd "$1"
	for ((i = 1; i + 1 < ${#CMDLINE[@]}; i++)); do
		if [[ ${CMDLINE[i]} == "$2" ]]; then
			printf '%s\n' "${CMDLINE[i + 1]}"
			return 0
		fi
	done
	bad "$1: no $2 in $DEV_DIR/$1/cmd"
}

dev_port() {
	local addr
	addr=$(dev_flag "$1" "$2")
	[[ ${addr##*:} =~ ^[0-9]+$ ]] || bad "$1: $2 $addr has no port"
	printf '%s\n' "${addr##*:}"
}

# A dev partition lives in three places, all named after a hash of DEV_DIR
# so two dev clusters never touch each other's: an iptables chain jumped to
# from OUTPUT, a cgroup v2 directory holding one cgroup per partitioned node
# (iptables tells the nodes' processes apart by it: they all use
# 127.0.0.1), and DEV_DIR/.chaos-partition recording the sides and each
# process's original cgroup.
dev_partition_names() {
	local h
	h=$(short_hash "$DEV_DIR")
	DEV_CHAIN=CAIRN-DEV-$h
	DEV_COMMENT="cairn-chaos dev $h"
	DEV_CGROUP_REL=cairn-chaos/dev-$h
	DEV_STATE=$DEV_DIR/.chaos-partition
}

cgroup2_root() {
	awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts
}

# ------------------------------------------------------------- docker ----

# docker_init maps each node (compose service) of PROJECT to its container
# in DOCKER_IDS, with one docker call: the CLI costs a few hundred
# milliseconds a call. A node's service carries the label cairn.role=node
# (docker-compose.yml); other services (the one-shot certs) are not nodes.
declare -A DOCKER_IDS=()
docker_init() {
	local out svc id
	[[ $PROJECT =~ ^[a-z0-9][a-z0-9_-]*$ ]] || bad "invalid compose project name '$PROJECT'"
	command -v docker >/dev/null || bad "docker is not installed"
	out=$(docker ps -a --filter "label=com.docker.compose.project=$PROJECT" --filter "label=cairn.role=node" \
		--format '{{.Label "com.docker.compose.service"}} {{.ID}}' 2>&1) ||
		bad "docker is not usable here: $(head -n 1 <<<"$out")"
	while read -r svc id; do
		[[ -n $svc && -n $id ]] || continue
		if [[ -n ${DOCKER_IDS[$svc]:-} ]]; then id=several; fi
		DOCKER_IDS[$svc]=$id
	done <<<"$out"
	((${#DOCKER_IDS[@]} > 0)) || bad "no containers for compose project $PROJECT (start it with: docker compose -p $PROJECT up -d)"
}

docker_nodes() { printf '%s\n' "${!DOCKER_IDS[@]}" | sort -V; }

docker_check_node() {
	docker_container "$1" >/dev/null
}

# docker_container prints the id of NODE's container.
docker_container() {
	local id=${DOCKER_IDS[$1]:-}
	[[ -n $id ]] || bad "unknown node $1 in compose project $PROJECT (nodes: $(docker_nodes | paste -sd' ' -))"
	[[ $id != several ]] || bad "$1 has several containers in project $PROJECT (a scaled service?); the chaos scripts want one"
	printf '%s\n' "$id"
}

# docker_state prints running, paused, exited, created, restarting or dead.
docker_state() { docker inspect -f '{{.State.Status}}' "$1"; }

docker_state_is() { [[ $(docker_state "$1") == "$2" ]]; }

# docker_arg prints the value of FLAG in the container's command line.
docker_arg() {
	docker inspect -f '{{range .Args}}{{println .}}{{end}}' "$1" |
		awk -v flag="$2" 'prev == flag { print; found = 1; exit } { prev = $0 } END { exit !found }'
}

# docker_ready succeeds once the node in the container answers a status
# request on its own data port.
docker_ready() {
	local port
	port=$(docker_arg "$1" --listen) || port=:7101
	timeout 10 docker exec "$1" /cairn status --addr "127.0.0.1:${port##*:}" >/dev/null 2>&1
}

docker_partition_names() {
	local h
	h=$(short_hash "$PROJECT")
	DOCKER_CHAIN=CAIRN-DK-$h
	DOCKER_COMMENT="cairn-chaos docker $PROJECT"
}

# docker_partition_sides prints the sides of the project's active partition
# ("n1,n2 n3,n4,n5"), read back from the rules' comment, or nothing.
docker_partition_sides() {
	docker_partition_names
	chain_exists "$DOCKER_CHAIN" || return 0
	ipt -S "$DOCKER_CHAIN" 2>/dev/null | sed -n 's/.*--comment "cairn-chaos docker [^ ]* sides \([^ ]*\) \([^ ]*\)".*/\1 \2/p' | head -n 1
}

# dev_unpartition removes this dev cluster's partition, if any: the iptables
# chain and its jump, then the cgroups (their processes go back where they
# were). It reports whether there was one.
dev_unpartition() {
	local found=1 cg2 base dir node orig pid tries
	dev_partition_names
	remove_chain OUTPUT "$DEV_CHAIN" "$DEV_COMMENT" && found=0
	cg2=$(cgroup2_root)
	base=$cg2/$DEV_CGROUP_REL
	if [[ -n $cg2 && -d $base ]]; then
		found=0
		for dir in "$base"/*/; do
			dir=${dir%/}
			node=${dir##*/}
			orig=/
			if [[ -f $DEV_STATE ]]; then
				orig=$(awk -v n="$node" '$1 == "cgroup" && $2 == n { print $3 }' "$DEV_STATE")
			fi
			[[ -n $orig && -d $cg2$orig ]] || orig=/
			for ((tries = 0; tries < 50; tries++)); do
				while read -r pid; do
					echo "$pid" >"$cg2${orig%/}/cgroup.procs" 2>/dev/null || true
				done <"$dir/cgroup.procs"
				rmdir "$dir" 2>/dev/null && break
				sleep 0.1
			done
			[[ ! -d $dir ]] || die "cannot remove cgroup $dir: $(paste -sd' ' "$dir/cgroup.procs") still in it"
		done
		rmdir "$base" || die "cannot remove cgroup $base"
		rmdir "$cg2/${DEV_CGROUP_REL%/*}" 2>/dev/null || true
	fi
	[[ ! -f $DEV_STATE ]] || found=0
	rm -f "$DEV_STATE"
	return $found
}

# dev_partition_sides prints the sides of the active partition ("n1 n2,n3"),
# or nothing.
dev_partition_sides() {
	dev_partition_names
	[[ -f $DEV_STATE ]] || return 0
	awk '$1 == "sides" { print $2, $3; exit }' "$DEV_STATE"
}

docker_unpartition() {
	docker_partition_names
	remove_chain DOCKER-USER "$DOCKER_CHAIN" "$DOCKER_COMMENT"
}

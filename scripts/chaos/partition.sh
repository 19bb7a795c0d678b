#!/usr/bin/env bash
# partition.sh: cut the network between two groups of nodes, both ways,
# until heal.sh. Nodes in neither group keep talking to both.
#
# Docker: DROP rules between the containers' IPs in a chain of its own,
# jumped to from DOCKER-USER (containers on one bridge network pass through
# FORWARD when br_netfilter is on, which the script checks).
#
# cairn dev: every node is on 127.0.0.1, so addresses cannot say who sent a
# packet. Each node's process moves into a cgroup v2 of its own, and OUTPUT
# rules drop, from each side to the other: connections from the node's
# cgroup (every socket it opens from now on), UDP gossip from its gossip
# port (memberlist's one UDP socket, opened before the move), and the TCP
# connections it already has open (their ports read from /proc).
#
# The rules go in with one iptables-restore, so a failure leaves none
# behind. The script then checks that a connection from each side to the
# other really fails, and undoes everything if one gets through.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHAOS_USAGE="usage: partition.sh [--dev DIR | --docker PROJECT] SIDE_A SIDE_B
Cut every node of SIDE_A off from every node of SIDE_B, both ways, until heal.sh.
A side is node names separated by commas, e.g.: partition.sh n1,n2 n3,n4,n5
A partition replaces any earlier one of the same cluster. Needs root."
chaos_init "$@"
((${#ARGS[@]} == 2)) || usage_error "want two sides, got ${#ARGS[@]} arguments"
side_list SIDE_A "${ARGS[0]}"
side_list SIDE_B "${ARGS[1]}"
declare -A SEEN=()
for n in "${SIDE_A[@]}" "${SIDE_B[@]}"; do
	[[ -z ${SEEN[$n]:-} ]] || bad "$n is named twice: each node belongs to one side at most"
	SEEN[$n]=1
	"${TARGET}_check_node" "$n"
done
ALL=("${SIDE_A[@]}" "${SIDE_B[@]}")
SIDES="${ARGS[0]} ${ARGS[1]}"

# Set while rules and cgroups are half in place: any exit then undoes them.
APPLYING=0
# shellcheck disable=SC2317 # the EXIT trap
undo_if_applying() {
	if ((APPLYING)); then "${TARGET}_unpartition" >/dev/null 2>&1 || true; fi
}
trap undo_if_applying EXIT

# RULES collects iptables-restore lines for the filter table.
RULES=()
rule() { RULES+=("$*"); }
apply_rules() {
	printf '%s\n' '*filter' "${RULES[@]}" COMMIT | iptables-restore -w 10 --noflush ||
		die "iptables-restore refused the partition's rules"
}

# tcp_conns PID prints "local_port remote_port" for each TCP socket of PID.
tcp_conns() {
	local inodes
	inodes=$(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n' | paste -sd' ' -)
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v inodes="$inodes" '
		BEGIN { n = split(inodes, l, " "); for (i = 1; i <= n; i++) mine[l[i]] = 1 }
		($10 in mine) { split($2, a, ":"); split($3, b, ":"); print a[2], b[2] }' |
		while read -r l r; do echo "$((16#$l)) $((16#$r))"; done
}

dev_partition() {
	local cg2 n pid orig from to
	need_root partition
	command -v iptables-restore >/dev/null || bad "partition needs iptables-restore (apt-get install -y iptables)"
	cg2=$(cgroup2_root)
	[[ -n $cg2 ]] || bad "no cgroup2 hierarchy is mounted, and a dev partition needs one to tell the nodes' processes apart (all use 127.0.0.1); use a Docker cluster instead"
	local -A PIDS=() DATA=() GOSSIP=() CONNS=()
	for n in "${ALL[@]}"; do
		dev_running "$n"
		PIDS[$n]=$PID
		DATA[$n]=$(dev_port "$n" --listen)
		GOSSIP[$n]=$(dev_port "$n" --gossip)
	done
	local replaced=""
	if dev_unpartition; then replaced=" (replacing the earlier partition)"; fi

	APPLYING=1
	local base=$cg2/$DEV_CGROUP_REL
	mkdir -p "$base" || die "cannot create cgroup $base"
	echo "sides $SIDES" >"$DEV_STATE"
	for n in "${ALL[@]}"; do
		pid=${PIDS[$n]}
		orig=$(awk -F: '$1 == "0" { print $3; exit }' "/proc/$pid/cgroup")
		echo "cgroup $n ${orig:-/}" >>"$DEV_STATE"
		mkdir "$base/$n"
		echo "$pid" >"$base/$n/cgroup.procs"
	done
	# After the move, so a connection opened meanwhile is caught by one or
	# the other.
	for n in "${ALL[@]}"; do
		CONNS[$n]=$(tcp_conns "${PIDS[$n]}")
	done

	rule ":$DEV_CHAIN - [0:0]"
	cut_dev() {
		local from=$1 to=$2 l r
		local pre="-A $DEV_CHAIN -o lo -m comment --comment \"$DEV_COMMENT\""
		local cg="-m cgroup --path $DEV_CGROUP_REL/$from"
		rule "$pre -p udp --sport ${GOSSIP[$from]} --dport ${GOSSIP[$to]} -j DROP"
		rule "$pre -p udp --dport ${GOSSIP[$to]} $cg -j DROP"
		rule "$pre -p tcp -m multiport --dports ${DATA[$to]},${GOSSIP[$to]} $cg -j DROP"
		while read -r l r; do
			if [[ $r == "${DATA[$to]}" || $r == "${GOSSIP[$to]}" ]]; then
				rule "$pre -p tcp --sport $l --dport $r -j DROP"
				rule "$pre -p tcp --sport $r --dport $l -j DROP"
			fi
		done <<<"${CONNS[$from]}"
	}
	for from in "${SIDE_A[@]}"; do
		for to in "${SIDE_B[@]}"; do
			cut_dev "$from" "$to"
			cut_dev "$to" "$from"
		done
	done
	rule "-I OUTPUT 1 -m comment --comment \"$DEV_COMMENT\" -j $DEV_CHAIN"
	apply_rules

	# A probe that joins one node's cgroup and dials a node of the other side.
	local a=${SIDE_A[0]} b=${SIDE_B[0]} pa pb
	# shellcheck disable=SC2317,SC2016 # called through probe_blocked; $$ is the inner bash's
	in_cgroup() { bash -c 'echo "$$" >"$0" && exec "$@"' "$base/$1/cgroup.procs" "${@:2}"; }
	probe_blocked 127.0.0.1 "${DATA[$b]}" in_cgroup "$a" &
	pa=$!
	probe_blocked 127.0.0.1 "${DATA[$a]}" in_cgroup "$b" &
	pb=$!
	wait "$pa" || die "the cut does not hold: $a still reaches $b's port ${DATA[$b]}; partition undone"
	wait "$pb" || die "the cut does not hold: $b still reaches $a's port ${DATA[$a]}; partition undone"
	APPLYING=0
	say "partitioned ${ARGS[0]} | ${ARGS[1]} in $DEV_DIR$replaced"
}

docker_partition() {
	local n state from to pid ip i=0
	need_root partition
	command -v iptables-restore >/dev/null || bad "partition needs iptables-restore (apt-get install -y iptables)"
	chain_exists DOCKER-USER || bad "no DOCKER-USER chain in iptables: is dockerd managing iptables on this host?"
	local nf=/proc/sys/net/bridge/bridge-nf-call-iptables
	[[ -r $nf && $(<"$nf") == 1 ]] || bad "traffic between containers on one bridge bypasses iptables here ($nf is not 1); run: modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1"
	local -A IDS=() IPS=() PIDS=()
	local ids=() facts
	for n in "${ALL[@]}"; do
		IDS[$n]=$(docker_container "$n")
		ids+=("${IDS[$n]}")
	done
	facts=$(docker inspect -f '{{.State.Status}} {{.State.Pid}} {{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "${ids[@]}")
	while read -r state pid ip _; do
		n=${ALL[i++]}
		[[ $state == running || $state == paused ]] || bad "$n is not running (container ${IDS[$n]:0:12} is $state): its address is unknown until restart.sh starts it"
		[[ -n $ip ]] || bad "$n (container ${IDS[$n]:0:12}) has no IP address"
		IPS[$n]=$ip PIDS[$n]=$pid
	done <<<"$facts"
	local replaced=""
	if docker_unpartition; then replaced=" (replacing the earlier partition)"; fi

	APPLYING=1
	rule ":$DOCKER_CHAIN - [0:0]"
	local pre="-A $DOCKER_CHAIN -m comment --comment \"$DOCKER_COMMENT sides $SIDES\""
	for from in "${SIDE_A[@]}"; do
		for to in "${SIDE_B[@]}"; do
			rule "$pre -s ${IPS[$from]} -d ${IPS[$to]} -j DROP"
			rule "$pre -s ${IPS[$to]} -d ${IPS[$from]} -j DROP"
		done
	done
	rule "-I DOCKER-USER 1 -m comment --comment \"$DOCKER_COMMENT\" -j $DOCKER_CHAIN"
	apply_rules

	# A probe from inside one side's network namespace to the other side.
	local a=${SIDE_A[0]} b=${SIDE_B[0]} port pa pb
	if command -v nsenter >/dev/null; then
		# shellcheck disable=SC2317 # called through probe_blocked
		in_netns() { nsenter -t "${PIDS[$1]}" -n "${@:2}"; }
		port=$(docker_arg "${IDS[$b]}" --listen) || port=:7101
		probe_blocked "${IPS[$b]}" "${port##*:}" in_netns "$a" &
		pa=$!
		port=$(docker_arg "${IDS[$a]}" --listen) || port=:7101
		probe_blocked "${IPS[$a]}" "${port##*:}" in_netns "$b" &
		pb=$!
		wait "$pa" || die "the cut does not hold: $a still reaches $b at ${IPS[$b]}; partition undone"
		wait "$pb" || die "the cut does not hold: $b still reaches $a at ${IPS[$a]}; partition undone"
	fi
	APPLYING=0
	say "partitioned ${ARGS[0]} | ${ARGS[1]} in compose project $PROJECT$replaced"
}

"${TARGET}_partition"

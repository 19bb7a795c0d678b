#!/usr/bin/env bash
# restart.sh: start a killed node again, and wait until it answers.
#
# cairn dev: runs the node's recorded command (DIR/nI/cmd) in a session of
# its own (setsid), so it outlives this script and no signal for the caller
# reaches it, appends its output to DIR/nI/server.log and writes its pid to
# DIR/nI/pid, through which `cairn dev` stops it on Ctrl-C. Docker: docker
# start. A node restarted during a partition stays on its side: dev starts
# it inside its cgroup; docker re-applies the partition to its new address.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHAOS_USAGE="usage: restart.sh [--dev DIR | --docker PROJECT] NODE
Start NODE again after kill.sh (dev: from DIR/NODE/cmd; docker: docker start) and
wait until it answers requests."
chaos_init "$@"
one_node

# in_sides NODE SIDES succeeds if NODE is named in "A B" (comma lists).
in_sides() { [[ ,${2/ /,}, == *,"$1",* ]]; }

dev_restart() {
	local pid="" log cg="" host port
	if [[ -f $DEV_DIR/$NODE/pid ]]; then
		pid=$(dev_pid "$NODE")
		! dev_is_node "$pid" "$NODE" || bad "$NODE is still running (pid $pid): kill.sh it first"
	fi
	dev_cmd "$NODE"
	[[ -x ${CMDLINE[0]} ]] || bad "$NODE: ${CMDLINE[0]}, the binary in $DEV_DIR/$NODE/cmd, is not an executable file"
	local addr
	addr=$(dev_flag "$NODE" --listen)
	host=${addr%:*} port=${addr##*:}
	[[ -n $host && $host != 0.0.0.0 && $host != "[::]" ]] || host=127.0.0.1
	log=$DEV_DIR/$NODE/server.log
	dev_partition_names
	if in_sides "$NODE" "$(dev_partition_sides)"; then
		cg=$(cgroup2_root)/$DEV_CGROUP_REL/$NODE
		[[ -d $cg ]] || die "the partition of $DEV_DIR names $NODE, but its cgroup $cg is gone; run heal.sh"
	fi
	# Not a process group leader (no job control here), so setsid does not
	# fork: $! is the node itself.
	if [[ -n $cg ]]; then
		# shellcheck disable=SC2016 # $$ and $@ are the inner bash's
		setsid bash -c 'echo "$$" >"$0" && exec "$@"' "$cg/cgroup.procs" "${CMDLINE[@]}" >>"$log" 2>&1 </dev/null &
	else
		setsid "${CMDLINE[@]}" >>"$log" 2>&1 </dev/null &
	fi
	pid=$!
	echo "$pid" >"$DEV_DIR/$NODE/pid.new"
	mv "$DEV_DIR/$NODE/pid.new" "$DEV_DIR/$NODE/pid"
	# shellcheck disable=SC2317 # called through wait_for
	# Until it has exec'd, the child still looks like this script: only its
	# exit is a failure.
	answers() {
		local state
		state=$(proc_state "$pid")
		if [[ -z $state || $state == Z ]]; then
			die "$NODE (pid $pid) exited during start; the end of $log:"$'\n'"$(tail -n 20 "$log")"
		fi
		# A secure dev cluster (the default) keeps its clients' CA and
		# root's certificate in DIR/certs; an --insecure one has none.
		local certs=""
		[[ ! -f $DEV_DIR/certs/ca.crt ]] || certs=$DEV_DIR/certs
		CAIRN_CERTS_DIR=$certs timeout 10 "${CMDLINE[0]}" status --addr "$host:$port" >/dev/null 2>&1
	}
	wait_for 60 answers || die "$NODE (pid $pid) started but does not answer on $host:$port after 60s; see $log"
	local note=""
	[[ -z $cg ]] || note=", inside its side of the partition"
	say "restarted $NODE (pid $pid) from $DEV_DIR/$NODE/cmd$note"
}

docker_restart() {
	local id state sides note="" side_args
	id=$(docker_container "$NODE")
	state=$(docker_state "$id")
	case $state in
	exited | created | dead) ;;
	*) bad "$NODE is still running (container ${id:0:12} is $state): kill.sh it first" ;;
	esac
	docker start "$id" >/dev/null
	sides=$(docker_partition_sides)
	if in_sides "$NODE" "$sides"; then
		read -r -a side_args <<<"$sides"
		"$CHAOS_DIR/partition.sh" --docker "$PROJECT" "${side_args[@]}" >/dev/null
		note=", and re-applied the partition ${sides/ / | } to its current address"
	fi
	wait_for 60 docker_ready "$id" || die "$NODE (container ${id:0:12}) started but does not answer after 60s; see docker logs ${id:0:12}"
	say "restarted $NODE (container ${id:0:12})$note"
}

"${TARGET}_restart"

#!/usr/bin/env bash
# kill.sh: kill one node with SIGKILL, as a crash or an OOM kill would, and
# wait until it is gone. A paused node is killed too.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHAOS_USAGE="usage: kill.sh [--dev DIR | --docker PROJECT] NODE
Kill NODE with SIGKILL (kill -9; docker kill -s KILL) and wait until it is gone."
chaos_init "$@"
one_node

case $TARGET in
dev)
	dev_running "$NODE"
	kill -KILL "$PID"
	wait_for 10 dev_gone "$PID" "$NODE" || die "$NODE (pid $PID) still runs 10s after SIGKILL"
	say "killed $NODE (pid $PID) with SIGKILL"
	;;
docker)
	id=$(docker_container "$NODE")
	state=$(docker_state "$id")
	[[ $state == running || $state == paused ]] || bad "$NODE is not running (container ${id:0:12} is $state)"
	docker kill -s KILL "$id" >/dev/null
	wait_for 10 docker_state_is "$id" exited || die "$NODE (container ${id:0:12}) is $(docker_state "$id") 10s after SIGKILL"
	say "killed $NODE (container ${id:0:12}) with SIGKILL"
	;;
esac

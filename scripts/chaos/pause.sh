#!/usr/bin/env bash
# pause.sh: freeze one node, as a long GC pause or a stalled VM would: its
# sockets stay open but nothing answers. resume.sh thaws it.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHAOS_USAGE="usage: pause.sh [--dev DIR | --docker PROJECT] NODE
Freeze NODE (SIGSTOP; docker pause, the cgroup freezer) until resume.sh."
chaos_init "$@"
one_node

stopped() { [[ $(proc_state "$1") == [Tt] ]]; }

case $TARGET in
dev)
	dev_running "$NODE"
	if stopped "$PID"; then
		say "$NODE (pid $PID) is already paused"
		exit 0
	fi
	kill -STOP "$PID"
	wait_for 10 stopped "$PID" || die "$NODE (pid $PID) is not stopped 10s after SIGSTOP"
	say "paused $NODE (pid $PID) with SIGSTOP"
	;;
docker)
	id=$(docker_container "$NODE")
	case $(docker_state "$id") in
	paused)
		say "$NODE (container ${id:0:12}) is already paused"
		exit 0
		;;
	running) ;;
	*) bad "$NODE is not running (container ${id:0:12} is $(docker_state "$id"))" ;;
	esac
	docker pause "$id" >/dev/null
	say "paused $NODE (container ${id:0:12}) with docker pause"
	;;
esac

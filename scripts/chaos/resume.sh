#!/usr/bin/env bash
# resume.sh: thaw a node pause.sh froze.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHAOS_USAGE="usage: resume.sh [--dev DIR | --docker PROJECT] NODE
Thaw NODE after pause.sh (SIGCONT; docker unpause). A node that is not paused is left alone."
chaos_init "$@"
one_node

running() { [[ $(proc_state "$1") != [Tt] ]]; }

case $TARGET in
dev)
	dev_running "$NODE"
	if running "$PID"; then
		say "$NODE (pid $PID) was not paused; nothing to do"
		exit 0
	fi
	kill -CONT "$PID"
	wait_for 10 running "$PID" || die "$NODE (pid $PID) is still stopped 10s after SIGCONT"
	say "resumed $NODE (pid $PID) with SIGCONT"
	;;
docker)
	id=$(docker_container "$NODE")
	case $(docker_state "$id") in
	running)
		say "$NODE (container ${id:0:12}) was not paused; nothing to do"
		exit 0
		;;
	paused) ;;
	*) bad "$NODE is not running (container ${id:0:12} is $(docker_state "$id"))" ;;
	esac
	docker unpause "$id" >/dev/null
	say "resumed $NODE (container ${id:0:12}) with docker unpause"
	;;
esac

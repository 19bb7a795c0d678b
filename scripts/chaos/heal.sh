#!/usr/bin/env bash
# heal.sh: remove the partition partition.sh made, exactly: the iptables
# chain and the one jump to it that carry this cluster's tag, and for a dev
# cluster the cgroups (each node's process goes back where it was).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHAOS_USAGE="usage: heal.sh [--dev DIR | --docker PROJECT]
Remove the partition partition.sh made in this cluster. Needs root."
chaos_init "$@"
((${#ARGS[@]} == 0)) || usage_error "heal.sh takes no arguments besides the target, got: ${ARGS[*]}"
need_root heal

case $TARGET in
dev)
	sides=$(dev_partition_sides)
	if dev_unpartition; then
		say "healed the partition ${sides/ / | } in $DEV_DIR"
	else
		say "no partition to heal in $DEV_DIR"
	fi
	;;
docker)
	sides=$(docker_partition_sides)
	if docker_unpartition; then
		say "healed the partition ${sides/ / | } in compose project $PROJECT"
	else
		say "no partition to heal in compose project $PROJECT"
	fi
	;;
esac

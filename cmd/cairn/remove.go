package main

import (
	"fmt"

	"github.com/cairnkv/cairn/client"
	"github.com/spf13/cobra"
)

func newRemoveCommand() *cobra.Command {
	var force bool
	cmd := adminCommand("remove NODE", "Take a member out of the ring for good", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, args []string) error {
			version, err := c.RemoveMember(cmd.Context(), args[0], force)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"removed": args[0], "ring_version": version})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s; ring version %016x\n", args[0], version)
			return nil
		})
	cmd.Long = `Take a member out of the ring for good. Its partitions move to the other
members (their replicas are rebuilt by read repair and anti-entropy), and the
name never owns partitions again: a node returning to service needs a new name
and an empty data directory. A member the asked node sees alive is refused
unless --force is given, because its replicas would leave the ring without
being handed off: stop the node first.`
	cmd.Flags().BoolVar(&force, "force", false, "remove a member even though it is alive")
	return cmd
}

package main

import (
	"fmt"
	"strings"

	"github.com/cairnkv/cairn/client"
	"github.com/spf13/cobra"
)

func newRemoveCommand() *cobra.Command {
	var force, dry bool
	cmd := adminCommand("remove NODE", "Take a member out of the ring for good", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, args []string) error {
			if dry {
				return printPlan(cmd, c, cf, client.Change{Op: "remove", Node: args[0]})
			}
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
	dryRunFlag(cmd, &dry)
	return cmd
}

func newLeaveCommand() *cobra.Command {
	var dry bool
	cmd := adminCommand("leave NODE", "Move every partition away from a live member, then take it out of the ring", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, args []string) error {
			if dry {
				return printPlan(cmd, c, cf, client.Change{Op: "leave", Node: args[0]})
			}
			if err := c.Leave(cmd.Context(), args[0]); err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"leaving": args[0]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is leaving: its partitions move to the other members (cairn transfers); it exits once it owns none\n", args[0])
			return nil
		})
	cmd.Long = `Make a live member leave the ring. Its partitions are streamed to the members
that will own them while it keeps serving; reads of each partition move once
the new owners hold it; when none is left the member is removed (its name
never owns partitions again) and its process exits. Use remove for a member
that is dead.`
	dryRunFlag(cmd, &dry)
	return cmd
}

func newReplaceCommand() *cobra.Command {
	var dry bool
	cmd := adminCommand("replace OLD NEW", "Move every partition of a member, dead or alive, to a new node in one change", cobra.ExactArgs(2),
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, args []string) error {
			if dry {
				return printPlan(cmd, c, cf, client.Change{Op: "replace", Node: args[0], New: args[1]})
			}
			if err := c.Replace(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"replaced": args[0], "by": args[1]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is taking %s's place: its partitions move to %s (cairn transfers); %s is removed once they all have\n",
				args[1], args[0], args[1], args[0])
			return nil
		})
	cmd.Long = `Make NEW take OLD's place in the ring. NEW is a node started with --join and
without --bootstrap (or with --replace OLD, which does this at its start) that
is not active yet. Exactly OLD's partitions move, and all of them move to NEW:
each is streamed from the first of its current owners that is up, so OLD may
be dead. Reads of each partition move to NEW once it holds it; when all have,
NEW is active, OLD owns nothing and is removed (its name never owns partitions
again). Every other member keeps what it owns.`
	dryRunFlag(cmd, &dry)
	return cmd
}

func newJoinCommand() *cobra.Command {
	return adminCommand("join SEED[,SEED...]", "Make the node at --addr, started alone and empty, join the cluster of SEED (a member's gossip address)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, args []string) error {
			var seeds []string
			for _, s := range strings.Split(args[0], ",") {
				if s = strings.TrimSpace(s); s != "" {
					seeds = append(seeds, s)
				}
			}
			if err := c.Join(cmd.Context(), seeds...); err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"joining": cf.addr, "seeds": seeds})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "the node at %s is joining: each partition it is to own is streamed to it first (cairn transfers)\n", cf.addr)
			return nil
		})
}

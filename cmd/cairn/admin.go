package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/spf13/cobra"
)

// adminCommand builds a command that dials --addr and runs fn with a
// bounded context.
func adminCommand(use, short string, args cobra.PositionalArgs, fn func(cmd *cobra.Command, c *client.Client, cf *connFlags, args []string) error) *cobra.Command {
	var cf connFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx, cancel := contextWithTimeout(cmd, 10*time.Second)
			defer cancel()
			c, err := cf.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			cmd.SetContext(ctx)
			return fn(cmd, c, &cf, a)
		},
	}
	cf.register(cmd)
	return cmd
}

func newMembersCommand() *cobra.Command {
	return adminCommand("members", "List the ring's members and whether each is alive", cobra.NoArgs,
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, _ []string) error {
			ms, err := c.Members(cmd.Context())
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"members": ms})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tADDR\tGOSSIP\tSTATUS\tALIVE\tVERSION")
			for _, m := range ms {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%d\n", m.Name, m.Addr, m.Gossip, m.Status, m.Alive, m.Version)
			}
			return tw.Flush()
		})
}

func newRingCommand() *cobra.Command {
	return adminCommand("ring", "Show the ring: Q, N and partitions owned per node", cobra.NoArgs,
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, _ []string) error {
			r, err := c.Ring(cmd.Context())
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "partitions (Q): %d\nreplicas (N):   %d\nversion:        %016x\n", r.Partitions, r.N, r.Version)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tPARTITIONS\tSHARE")
			for _, m := range r.Members {
				fmt.Fprintf(tw, "%s\t%d\t%.1f%%\n", m, r.Owned[m], 100*float64(r.Owned[m])/float64(r.Partitions))
			}
			return tw.Flush()
		})
}

func newStatusCommand() *cobra.Command {
	return adminCommand("status", "Show a node's view of itself and the cluster", cobra.NoArgs,
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, _ []string) error {
			s, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node:     %s (%s)\ncluster:  %s\nuptime:   %s\nmembers:  %d (%d alive)\nring:     Q=%d N=%d version %016x\ndisk:     %d bytes\n",
				s.Node, s.Addr, s.Cluster, s.Uptime.Round(time.Second), s.Members, s.Alive, s.Partitions, s.N, s.RingVersion, s.DiskBytes)
			return nil
		})
}

func newDebugCommand() *cobra.Command {
	debug := &cobra.Command{Use: "debug", Short: "Inspect internals (read-only)"}
	debug.AddCommand(adminCommand("replicas BUCKET KEY", "Show each replica's own copy of a key: siblings with dots, and context", cobra.ExactArgs(2),
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, args []string) error {
			p, copies, err := c.DebugReplicas(cmd.Context(), args[0], []byte(args[1]))
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"partition": p, "replicas": copies})
			}
			printReplicas(cmd.OutOrStdout(), p, copies)
			return nil
		}))
	return debug
}

func printReplicas(out io.Writer, p uint32, copies []client.ReplicaCopy) {
	fmt.Fprintf(out, "partition %d\n", p)
	for _, c := range copies {
		role := "primary"
		if !c.Primary {
			role = "fallback"
		}
		switch {
		case c.Error != "":
			fmt.Fprintf(out, "%s (%s): error: %s\n", c.Node, role, c.Error)
			continue
		case !c.Found:
			fmt.Fprintf(out, "%s (%s): missing\n", c.Node, role)
			continue
		}
		var ctx []string
		for a, n := range c.Context {
			ctx = append(ctx, fmt.Sprintf("%s:%d", a, n))
		}
		slices.Sort(ctx)
		fmt.Fprintf(out, "%s (%s): %d sibling(s), context {%s}\n", c.Node, role, len(c.Siblings), strings.Join(ctx, " "))
		for _, s := range c.Siblings {
			v := fmt.Sprintf("%q", s.Value)
			if s.Tombstone {
				v = "<tombstone>"
			}
			fmt.Fprintf(out, "    (%s,%d) %s  written %s\n", s.Actor, s.Counter, v, time.Unix(0, s.WrittenAt).UTC().Format(time.RFC3339Nano))
		}
	}
}

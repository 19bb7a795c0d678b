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
			admin := s.Admin
			if admin == "" {
				admin = "none"
			}
			reaping := "running"
			if s.ReapPaused != "" {
				reaping = "paused: " + s.ReapPaused
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node:     %s (%s)\ncluster:  %s\nuptime:   %s\nmembers:  %d (%d alive)\nring:     Q=%d N=%d version %016x\ndisk:     %d bytes (objects %d)\nreaped:   %d tombstones (%s)\nadmin:    %s\n",
				s.Node, s.Addr, s.Cluster, s.Uptime.Round(time.Second), s.Members, s.Alive, s.Partitions, s.N, s.RingVersion, s.DiskBytes, s.ObjectBytes, s.Reaped, reaping, admin)
			return nil
		})
}

func newHintsCommand() *cobra.Command {
	return adminCommand("hints", "Show the hints a node keeps for owners it stood in for, per owner", cobra.NoArgs,
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, _ []string) error {
			node, queues, err := c.Hints(cmd.Context())
			if err != nil {
				return err
			}
			slices.SortFunc(queues, func(a, b client.HintQueue) int { return strings.Compare(a.Owner, b.Owner) })
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"node": node, "owners": queues})
			}
			out := cmd.OutOrStdout()
			if len(queues) == 0 {
				fmt.Fprintf(out, "%s keeps no hints\n", node)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "OWNER\tPENDING\tDELIVERED\tBYTES\tBACKLOG\tDELIVERING\tFAILURES\n")
			for _, q := range queues {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%v\t%d\n", q.Owner, q.Pending, q.Delivered, q.Bytes, q.Backlog.Round(time.Second), q.Delivering, q.Failures)
			}
			return tw.Flush()
		})
}

func newTransfersCommand() *cobra.Command {
	return adminCommand("transfers", "Show the membership change in flight: partitions streamed to their next owners, progress, rate and ETA", cobra.NoArgs,
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, _ []string) error {
			ts, err := c.Transfers(cmd.Context())
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), ts)
			}
			printTransfers(cmd.OutOrStdout(), ts)
			return nil
		})
}

func printTransfers(out io.Writer, ts client.Transfers) {
	if !ts.Changing {
		fmt.Fprintf(out, "no membership change in flight; ring: %s\n", strings.Join(ts.Members, ", "))
	} else {
		fmt.Fprintf(out, "moving from: %s\nmoving to:   %s\nflipped:     %d of %d partitions\n",
			strings.Join(ts.Members, ", "), strings.Join(ts.Next, ", "), ts.Flipped, ts.Moving)
	}
	if len(ts.Unreachable) > 0 {
		fmt.Fprintf(out, "not answering: %s\n", strings.Join(ts.Unreachable, ", "))
	}
	if len(ts.Transfers) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tFROM\tTO\tSTATE\tKEYS\tBYTES\tRATE\tETA")
	for _, t := range ts.Transfers {
		eta := "-"
		if t.ETA >= 0 {
			eta = t.ETA.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d/%d\t%d/%d\t%.0f keys/s %.2f MB/s\t%s\n", t.Partition, t.From, t.To, t.State,
			t.Keys, t.TotalKeys, t.Bytes, t.TotalBytes, t.KeysPerSec, t.BytesPerSec/1e6, eta)
	}
	_ = tw.Flush()
}

func newAAECommand() *cobra.Command {
	aae := &cobra.Command{Use: "aae", Short: "Anti-entropy: Merkle-tree exchanges between replicas"}
	var trees bool
	status := adminCommand("status", "Show a node's anti-entropy: partitions in sync, last exchange age, repairs, trees", cobra.NoArgs,
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, _ []string) error {
			s, err := c.AAEStatus(cmd.Context(), trees)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), s)
			}
			printAAEStatus(cmd.OutOrStdout(), s)
			return nil
		})
	status.Flags().BoolVar(&trees, "trees", false, "list every partition's tree: root, keys, readiness, last exchange")
	aae.AddCommand(status)
	return aae
}

func printAAEStatus(out io.Writer, s *client.AAEStatus) {
	if !s.Enabled {
		fmt.Fprintf(out, "%s: anti-entropy is off\n", s.Node)
		return
	}
	age := func(d time.Duration) string {
		if d < 0 {
			return "never"
		}
		return d.Round(time.Second).String() + " ago"
	}
	fmt.Fprintf(out, "node:         %s\npartitions:   %d replicated, %d in sync at their last exchange, %d never exchanged\n",
		s.Node, s.Partitions, s.InSync, s.NeverExchanged)
	fmt.Fprintf(out, "trees:        %d (%d being rebuilt), %d rebuilds\noldest:       %s\n", s.Trees, s.NotReady, s.Rebuilds, age(s.OldestExchange))
	fmt.Fprintf(out, "exchanges:    %d completed, %d failed, %d running\nrepaired:     %d keys fetched, %d keys pushed\nbytes:        %d sent, %d received\n",
		s.Exchanges, s.Failures, s.Running, s.KeysFetched, s.KeysPushed, s.BytesSent, s.BytesReceived)
	if s.TreeList == nil {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tROOT\tKEYS\tREADY\tREPLICATED\tLAST EXCHANGE\tIN SYNC")
	for _, t := range s.TreeList {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%v\t%v\t%s\t%v\n", t.Partition, t.Root, t.Keys, t.Ready, t.Replicated, age(t.LastExchange), t.InSync)
	}
	_ = tw.Flush()
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

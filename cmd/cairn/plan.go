package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/cairnkv/cairn/client"
	"github.com/spf13/cobra"
)

func newPlanCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show which partitions a membership change would move where, and roughly how much data, changing nothing",
		Long: `Show what a membership change would do before doing it: the members before and
after, the partitions each member owns, every partition copy to stream (from
its first live current owner to its new owner) and about how many keys and
bytes that is, from the nodes' anti-entropy trees and disk use. It uses the
ring's own rule on the asked node's ring state, so it is what the nodes will
do if nothing else changes first. leave, remove and replace also take
--dry-run, which prints the same.`,
	}
	planOf := func(use, short string, args cobra.PositionalArgs, change func(args []string) client.Change) *cobra.Command {
		return adminCommand(use, short, args, func(cmd *cobra.Command, c *client.Client, cf *connFlags, args []string) error {
			return printPlan(cmd, c, cf, change(args))
		})
	}
	cmd.AddCommand(
		planOf("join NODE", "Plan a new node joining", cobra.ExactArgs(1),
			func(a []string) client.Change { return client.Change{Op: "join", Node: a[0]} }),
		planOf("leave NODE", "Plan a live member leaving", cobra.ExactArgs(1),
			func(a []string) client.Change { return client.Change{Op: "leave", Node: a[0]} }),
		planOf("remove NODE", "Plan a member's removal", cobra.ExactArgs(1),
			func(a []string) client.Change { return client.Change{Op: "remove", Node: a[0]} }),
		planOf("replace OLD NEW", "Plan a new node taking a member's place", cobra.ExactArgs(2),
			func(a []string) client.Change { return client.Change{Op: "replace", Node: a[0], New: a[1]} }),
	)
	return cmd
}

// dryRunFlag adds --dry-run to a membership command.
func dryRunFlag(cmd *cobra.Command, dry *bool) {
	cmd.Flags().BoolVar(dry, "dry-run", false, "print what the change would move (as cairn plan) and change nothing")
}

func printPlan(cmd *cobra.Command, c *client.Client, cf *connFlags, ch client.Change) error {
	p, err := c.Plan(cmd.Context(), ch)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		return writeJSON(cmd.OutOrStdout(), p)
	}
	writePlan(cmd.OutOrStdout(), p)
	return nil
}

func writePlan(out io.Writer, p *client.Plan) {
	fmt.Fprintf(out, "plan: %s (changes nothing)\n", p.Change)
	fmt.Fprintf(out, "members: %s -> %s (N=%d, Q=%d)\n", strings.Join(p.Before, " "), strings.Join(p.After, " "), p.N, p.Partitions)
	if p.InFlight != "" {
		fmt.Fprintf(out, "a change is in flight (%s): it completes first, and this plan assumes it has not started\n", p.InFlight)
	}
	fmt.Fprintf(out, "partitions gaining an owner: %d of %d; partition copies to stream: %d\n", p.Moving, p.Partitions, len(p.Moves))
	data := fmt.Sprintf("about %d keys", p.Keys)
	switch {
	case p.Bytes >= 1e6:
		data += fmt.Sprintf(", %.1f MB", float64(p.Bytes)/1e6)
	case p.Bytes > 0:
		data += fmt.Sprintf(", %.1f kB", float64(p.Bytes)/1e3)
	}
	fmt.Fprintf(out, "data to stream: %s (from the nodes' anti-entropy trees)\n", data)
	if len(p.Unreachable) > 0 {
		fmt.Fprintf(out, "not counted (did not answer): %s\n", strings.Join(p.Unreachable, " "))
	}
	sends, receives := map[string]int{}, map[string]int{}
	for _, m := range p.Moves {
		sends[m.From]++
		receives[m.To]++
	}
	names := slices.Clone(p.Before)
	for _, n := range p.After {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tOWNS NOW\tOWNS AFTER\tSENDS\tRECEIVES")
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", n, p.OwnedBefore[n], p.OwnedAfter[n], sends[n], receives[n])
	}
	if sends[""] > 0 {
		fmt.Fprintf(tw, "(no live owner)\t\t\t%d\t\n", sends[""])
	}
	_ = tw.Flush()
}

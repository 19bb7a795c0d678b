package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newCounterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "counter",
		Short: "Increment and read counters (buckets created with --datatype counter)",
		Long: `A counter bucket (cairn bucket create NAME --datatype counter) holds counters:
every increment, from any client through any node, counts exactly once in
the value once it was acknowledged, whatever the order the replicas hear of
it, and concurrent increments never conflict. put, get and delete refuse a
counter bucket.

An increment that fails (timeout, quorum, unavailable) may or may not have
been applied: running it again may count it twice. See docs/CLIENT.md.`,
	}
	cmd.AddCommand(counterIncrCommand(), counterGetCommand())
	return cmd
}

// negative is an argument that is a negative number, which cobra would
// take for a flag.
var negative = regexp.MustCompile(`^-[0-9]+$`)

func counterIncrCommand() *cobra.Command {
	var cf connFlags
	var qf consistencyFlags
	cmd := &cobra.Command{
		Use:   "incr BUCKET KEY [N]",
		Short: "Add N (default 1; negative to decrement) to a counter and print its value at the coordinator",
		Long: `Add N to the counter (default 1; N may be negative: cairn counter incr b k -3).
It prints the counter's value in the coordinating replica's copy after the
increment: every increment that copy has seen. Read the whole cluster's with
cairn counter get --r all.`,
		// A negative N looks like a flag to the parser: flags are parsed
		// here, after taking such arguments out.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, raw []string) error {
			var nums, rest []string
			for _, a := range raw {
				if negative.MatchString(a) {
					nums = append(nums, a)
				} else {
					rest = append(rest, a)
				}
			}
			if err := cmd.Flags().Parse(rest); err != nil {
				if errors.Is(err, pflag.ErrHelp) {
					return cmd.Help()
				}
				return err
			}
			args := append(cmd.Flags().Args(), nums...)
			if len(args) < 2 || len(args) > 3 {
				return fmt.Errorf("invalid argument: want BUCKET KEY [N], got %d arguments", len(args))
			}
			delta := int64(1)
			if len(args) == 3 {
				var err error
				if delta, err = strconv.ParseInt(args[2], 10, 64); err != nil {
					return fmt.Errorf("invalid argument: N %q: want an integer", args[2])
				}
			}
			if err := checkOutput(cf.output); err != nil {
				return err
			}
			ctx, c, opts, done, err := startCall(cmd, &cf, &qf)
			if err != nil {
				return err
			}
			defer done()
			v, err := c.CounterIncr(ctx, args[0], []byte(args[1]), delta, opts...)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"ok": true, "value": v})
			}
			fmt.Fprintln(cmd.OutOrStdout(), v)
			return nil
		},
	}
	cf.register(cmd)
	qf.write = true
	qf.registerWriteQuorums(cmd)
	cmd.Flags().DurationVar(&qf.timeout, "timeout", 0, "request deadline (default: the node's)")
	cmd.Flags().BoolVar(&qf.noSloppy, "no-sloppy", false, "count primary replicas only (no fallbacks)")
	return cmd
}

func counterGetCommand() *cobra.Command {
	var cf connFlags
	var qf consistencyFlags
	cmd := &cobra.Command{
		Use:   "get BUCKET KEY",
		Short: "Print a counter's value (0 for one never incremented)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, opts, done, err := startCall(cmd, &cf, &qf)
			if err != nil {
				return err
			}
			defer done()
			got, err := c.CounterGet(ctx, args[0], []byte(args[1]), opts...)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"found": got.Found, "value": got.Value, "replicas": got.Replicas})
			}
			fmt.Fprintln(cmd.OutOrStdout(), got.Value)
			return nil
		},
	}
	cf.register(cmd)
	qf.register(cmd, false)
	return cmd
}

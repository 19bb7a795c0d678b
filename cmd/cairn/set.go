package main

import (
	"encoding/base64"
	"fmt"

	"github.com/cairnkv/cairn/client"
	"github.com/spf13/cobra"
)

func newSetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Add, remove and list the elements of sets (buckets created with --datatype set)",
		Long: `A set bucket (cairn bucket create NAME --datatype set) holds sets of elements
(byte strings). Concurrent adds and removes never conflict: an add wins over
a remove that had not seen it, and a remove takes away the adds of the
element that its read saw. put, get and delete refuse a set bucket.`,
	}
	cmd.AddCommand(setUpdateCommand(false), setUpdateCommand(true), setGetCommand())
	return cmd
}

func setUpdateCommand(remove bool) *cobra.Command {
	var cf connFlags
	var qf consistencyFlags
	use, short := "add BUCKET KEY ELEMENT", "Add an element to a set"
	if remove {
		use, short = "remove BUCKET KEY ELEMENT", "Remove an element from a set: the adds of it a read sees now, or that --context saw"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, opts, done, err := startCall(cmd, &cf, &qf)
			if err != nil {
				return err
			}
			defer done()
			bucket, key, elem := args[0], []byte(args[1]), []byte(args[2])
			var cc client.Context
			if !remove {
				cc, err = c.SetAdd(ctx, bucket, key, elem, opts...)
			} else {
				if qf.context == "" {
					// Remove what a read sees now, as delete does: without a
					// context the coordinator would remove only what its own
					// copy holds.
					readOpts, err := qf.readOptions()
					if err != nil {
						return err
					}
					cur, err := c.SetGet(ctx, bucket, key, readOpts...)
					if err != nil {
						return fmt.Errorf("read before remove: %w", err)
					}
					opts = append(opts, client.Causal(cur.Context))
				}
				cc, err = c.SetRemove(ctx, bucket, key, elem, opts...)
			}
			if err != nil {
				return err
			}
			return printWrite(cmd.OutOrStdout(), cf.output, cc)
		},
	}
	cf.register(cmd)
	qf.register(cmd, true)
	if remove {
		cmd.Flags().StringVar(&qf.r, "r", "", "read quorum of the read before the remove: a number or one|quorum|all")
		cmd.Flags().StringVar(&qf.pr, "pr", "", "primary read quorum of the read before the remove")
	}
	return cmd
}

func setGetCommand() *cobra.Command {
	var cf connFlags
	var qf consistencyFlags
	cmd := &cobra.Command{
		Use:   "get BUCKET KEY",
		Short: "List a set's elements, one per line (nothing for a set never added to)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, opts, done, err := startCall(cmd, &cf, &qf)
			if err != nil {
				return err
			}
			defer done()
			s, err := c.SetGet(ctx, args[0], []byte(args[1]), opts...)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				elems := make([]string, 0, len(s.Elements))
				for _, e := range s.Elements {
					elems = append(elems, string(e))
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"found": s.Found, "elements": elems,
					"context": base64.StdEncoding.EncodeToString(s.Context), "replicas": s.Replicas})
			}
			for _, e := range s.Elements {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", e)
			}
			return nil
		},
	}
	cf.register(cmd)
	qf.register(cmd, false)
	return cmd
}

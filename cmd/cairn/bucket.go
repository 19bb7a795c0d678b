package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/cairnkv/cairn/client"
	"github.com/spf13/cobra"
)

func newBucketCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bucket",
		Short: "Create, change and show buckets' properties (n, default quorums, notfound_ok, conflict mode, sibling limit)",
		Long: `Buckets' properties live in the cluster metadata, gossiped to every node, which
applies them to requests that do not set their own: n (the replicas of each
key, fixed at creation), the default r, w, pr, pw and dw, notfound_ok, the
conflict mode and the sibling limit. A bucket never configured takes the
cluster's defaults.

--conflict siblings (the default) keeps concurrent writes side by side for
the application to merge: no acknowledged write is lost. --conflict lww keeps
only the write with the latest timestamp (a hybrid logical clock: a write made
with the context of a read beats what that read saw, however the nodes' clocks
disagree) and silently drops concurrent ones, acknowledged or not: two
clients that read the same value and both write lose one write. See
docs/CLIENT.md. The mode can change at any time; objects resolve by the new
one at their next write, read or repair.

--datatype counter makes a counter bucket: its keys hold counters, incremented
and read with cairn counter incr|get (plain put, get and delete are refused),
merged by adding every increment once. --datatype set makes a set bucket
(cairn set add|remove|get): add-wins sets of elements. A delete grace other
than keep is refused by this version.`,
	}
	cmd.AddCommand(bucketSetCommand(true), bucketSetCommand(false),
		adminCommand("get NAME", "Show a bucket's properties (the defaults for one never configured)", cobra.ExactArgs(1),
			func(cmd *cobra.Command, c *client.Client, cf *connFlags, args []string) error {
				b, err := c.Bucket(cmd.Context(), args[0])
				return printBucket(cmd, cf, b, err)
			}),
		adminCommand("list", "List the configured buckets and their properties", cobra.NoArgs,
			func(cmd *cobra.Command, c *client.Client, cf *connFlags, _ []string) error {
				bs, err := c.Buckets(cmd.Context())
				if err != nil {
					return err
				}
				if cf.output == "json" {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"buckets": bs})
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "BUCKET\tN\tR\tW\tPR\tPW\tDW\tNOTFOUND_OK\tCONFLICT\tDATATYPE\tSIBLING_LIMIT\tDELETE_GRACE")
				for _, b := range bs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, orDefault(b.N), b.R, b.W, b.PR, b.PW, b.DW,
						boolOrDefault(b.NotFoundOK), b.Conflict, b.Datatype, orDefault(b.SiblingLimit), b.DeleteGrace)
				}
				return tw.Flush()
			}))
	return cmd
}

func bucketSetCommand(create bool) *cobra.Command {
	var n, siblingLimit int
	var r, w, pr, pw, dw, conflict, datatype, grace string
	var notFoundOK bool
	use, short := "set NAME", "Change a configured bucket's properties (all but n and the datatype)"
	if create {
		use, short = "create NAME", "Configure a new bucket; its n and datatype are fixed from then on"
	}
	cmd := adminCommand(use, short, cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, args []string) error {
			fl := cmd.Flags()
			var ch client.BucketChange
			if fl.Changed("n") {
				ch.N = &n
			}
			for _, q := range []struct {
				name string
				v    string
				dst  **client.Quorum
			}{{"r", r, &ch.R}, {"w", w, &ch.W}, {"pr", pr, &ch.PR}, {"pw", pw, &ch.PW}, {"dw", dw, &ch.DW}} {
				if !fl.Changed(q.name) {
					continue
				}
				v, err := client.ParseQuorum(q.v)
				if err != nil {
					return fmt.Errorf("invalid argument: --%s: %w", q.name, err)
				}
				*q.dst = &v
			}
			if fl.Changed("notfound-ok") {
				ch.NotFoundOK = &notFoundOK
			}
			if fl.Changed("conflict") {
				ch.Conflict = &conflict
			}
			if fl.Changed("datatype") {
				ch.Datatype = &datatype
			}
			if fl.Changed("sibling-limit") {
				ch.SiblingLimit = &siblingLimit
			}
			if fl.Changed("delete-grace") {
				ch.DeleteGrace = &grace
			}
			set := c.SetBucket
			if create {
				set = c.CreateBucket
			}
			b, err := set(cmd.Context(), args[0], ch)
			return printBucket(cmd, cf, b, err)
		})
	fl := cmd.Flags()
	// set takes --n and --datatype too, so that changing them meets the
	// node's reason for refusing it rather than an unknown flag.
	fl.IntVar(&n, "n", 0, "replicas of each key (up to the cluster's size); fixed at creation (default: the cluster's N)")
	fl.StringVar(&datatype, "datatype", "", "counter or set; fixed at creation")
	for _, q := range []struct {
		name string
		dst  *string
	}{{"r", &r}, {"w", &w}, {"pr", &pr}, {"pw", &pw}, {"dw", &dw}} {
		fl.StringVar(q.dst, q.name, "", "default "+q.name+" of the bucket's requests: a number or one|quorum|all (default: the cluster's)")
	}
	fl.BoolVar(&notFoundOK, "notfound-ok", true, "whether a replica's not-found counts toward R")
	fl.StringVar(&conflict, "conflict", "siblings", "siblings (keep concurrent writes) or lww (keep the latest; concurrent writes are lost)")
	fl.IntVar(&siblingLimit, "sibling-limit", 0, "most siblings a client write may leave an object of this bucket with (default: the node's)")
	fl.StringVar(&grace, "delete-grace", "keep", "how long tombstones are kept: keep (reclaiming them is not supported yet)")
	return cmd
}

// printBucket prints a bucket's properties as the command's output
// asks, or returns err.
func printBucket(cmd *cobra.Command, cf *connFlags, b client.Bucket, err error) error {
	if err != nil {
		return err
	}
	if cf.output == "json" {
		return writeJSON(cmd.OutOrStdout(), b)
	}
	writeBucket(cmd.OutOrStdout(), b)
	return nil
}

func writeBucket(out io.Writer, b client.Bucket) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	created := "yes"
	if !b.Created {
		created = "no (the cluster's defaults)"
	}
	for _, kv := range [][2]string{
		{"bucket", b.Name}, {"configured", created}, {"n", orDefault(b.N)},
		{"r", b.R}, {"w", b.W}, {"pr", b.PR}, {"pw", b.PW}, {"dw", b.DW},
		{"notfound_ok", boolOrDefault(b.NotFoundOK)}, {"conflict", b.Conflict}, {"datatype", b.Datatype},
		{"sibling_limit", orDefault(b.SiblingLimit)}, {"delete_grace", b.DeleteGrace},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	_ = tw.Flush()
}

func orDefault(v int) string {
	if v == 0 {
		return "default"
	}
	return fmt.Sprint(v)
}

func boolOrDefault(v *bool) string {
	if v == nil {
		return "default"
	}
	return fmt.Sprint(*v)
}

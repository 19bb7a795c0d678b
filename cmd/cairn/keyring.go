package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/node"
	"github.com/spf13/cobra"
)

func newKeyringCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keyring",
		Short: "List and rotate the gossip encryption keys of a live cluster",
		Long: `Gossip between nodes started with --gossip-key-file is encrypted (AES-GCM)
with the keyring's primary key; any installed key decrypts. To rotate without
downtime:

  cairn keyring generate                 # prints a new key
  cairn keyring install NEWKEY           # every member can now read it
  cairn keyring use NEWKEY               # every member now writes with it
  cairn keyring remove OLDKEY            # the old key is gone everywhere

Each change goes to every member through the node asked, and each node
rewrites its key file. A member that could not be reached is named in the
error: repeat the step once it is back (every step can be repeated).`,
	}
	change := func(op, short string) *cobra.Command {
		args := cobra.ExactArgs(1)
		use := op + " KEY"
		if op == "list" {
			args, use = cobra.NoArgs, op
		}
		return adminCommand(use, short, args, func(cmd *cobra.Command, c *client.Client, cf *connFlags, a []string) error {
			key := ""
			if len(a) == 1 {
				key = strings.TrimSpace(a[0])
				if _, err := node.DecodeGossipKey(key); err != nil {
					return fmt.Errorf("invalid argument: %w", err)
				}
			}
			nodes, err := c.Keyring(cmd.Context(), op, key)
			if nodes == nil {
				return err
			}
			if cf.output == "json" {
				if werr := writeJSON(cmd.OutOrStdout(), map[string]any{"nodes": nodes}); werr != nil {
					return werr
				}
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tIN USE\tINSTALLED\tERROR")
			for _, n := range nodes {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", n.Node, n.Primary, len(n.Keys), n.Error)
			}
			if werr := tw.Flush(); werr != nil {
				return werr
			}
			if op == "list" && err == nil {
				for _, k := range nodes[0].Keys {
					fmt.Fprintln(cmd.OutOrStdout(), "key", k)
				}
			}
			return err
		})
	}
	var out string
	generate := &cobra.Command{
		Use:   "generate",
		Short: "Print a new random gossip key (32 bytes, base64), or start a key file with it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k := make([]byte, 32)
			if _, err := rand.Read(k); err != nil {
				return err
			}
			key := base64.StdEncoding.EncodeToString(k)
			if out != "" {
				if err := node.WriteGossipKeyFile(out, []string{key}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", out)
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), key)
			return nil
		},
	}
	generate.Flags().StringVar(&out, "out", "", "write a key file (for --gossip-key-file) holding the new key instead of printing it")
	cmd.AddCommand(generate,
		change("list", "Show every member's keys"),
		change("install", "Add a key to every member's keyring"),
		change("use", "Make an installed key the one every member encrypts with"),
		change("remove", "Remove a key from every member's keyring"))
	return cmd
}

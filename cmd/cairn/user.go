package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/cairnkv/cairn/client"
	"github.com/spf13/cobra"
)

func newUserCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage the users of a secure cluster and their roles",
		Long: `On a node started with --certs-dir every client request is checked
against the roles of the user it comes from: the user of its client
certificate (cairn cert create-client USER), or of the token it presents
(--token, $CAIRN_TOKEN).

Roles: read (get, and the status commands), write (read, put, delete),
admin (write, membership changes, keyring, debug commands, users). The
certificate user root is always admin, so a fresh cluster can be set up.

Users live in cluster metadata, gossiped to every node; a token is shown
once by add --token (or token) and stored only as its SHA-256 hash.`,
	}
	var roles []string
	var token bool
	add := adminCommand("add NAME", "Add a user, with roles (--role, repeated) and a token (--new-token)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, a []string) error {
			tok, err := c.AddUser(cmd.Context(), a[0], roles, token)
			if err != nil {
				return err
			}
			return printUserChange(cmd, cf, client.User{Name: a[0], Roles: roles, Token: token}, tok)
		})
	add.Flags().StringSliceVar(&roles, "role", nil, "a role to grant: read, write or admin (repeat or comma-separate)")
	add.Flags().BoolVar(&token, "new-token", false, "make the user a token and print it (once: it is stored only as a hash)")

	remove := adminCommand("remove NAME", "Remove a user: its certificate and token give no role any more", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, a []string) error {
			if err := c.RemoveUser(cmd.Context(), a[0]); err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"removed": a[0]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed user %s\n", a[0])
			return nil
		})

	list := adminCommand("list", "List the users, their roles and whether each has a token", cobra.NoArgs,
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, _ []string) error {
			us, err := c.Users(cmd.Context())
			if err != nil {
				return err
			}
			if us == nil {
				us = []client.User{}
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"users": us})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLES\tTOKEN")
			for _, u := range us {
				fmt.Fprintf(tw, "%s\t%s\t%v\n", u.Name, strings.Join(u.Roles, ","), u.Token)
			}
			return tw.Flush()
		})

	roleChange := func(op, short string) *cobra.Command {
		return adminCommand(op+" NAME ROLE...", short, cobra.MinimumNArgs(2),
			func(cmd *cobra.Command, c *client.Client, cf *connFlags, a []string) error {
				var u client.User
				var err error
				if op == "grant" {
					u, err = c.GrantRoles(cmd.Context(), a[0], a[1:]...)
				} else {
					u, err = c.RevokeRoles(cmd.Context(), a[0], a[1:]...)
				}
				if err != nil {
					return err
				}
				return printUserChange(cmd, cf, u, "")
			})
	}

	newToken := adminCommand("token NAME", "Give a user a new token, replacing its old one, and print it (once)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client.Client, cf *connFlags, a []string) error {
			tok, err := c.NewUserToken(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			return printUserChange(cmd, cf, client.User{Name: a[0], Token: true}, tok)
		})

	cmd.AddCommand(add, remove, list,
		roleChange("grant", "Grant a user roles"),
		roleChange("revoke", "Take roles from a user"),
		newToken)
	return cmd
}

// printUserChange shows a user after a change, and the token made for it,
// which nothing shows again.
func printUserChange(cmd *cobra.Command, cf *connFlags, u client.User, token string) error {
	if u.Roles == nil {
		u.Roles = []string{}
	}
	if cf.output == "json" {
		out := map[string]any{"user": u}
		if token != "" {
			out["token"] = token
		}
		return writeJSON(cmd.OutOrStdout(), out)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "user %s: roles %s\n", u.Name, strings.Join(u.Roles, ","))
	if token != "" {
		fmt.Fprintf(cmd.OutOrStdout(), "token (shown once, keep it secret): %s\n", token)
	}
	return nil
}

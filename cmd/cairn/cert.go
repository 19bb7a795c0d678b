package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cairnkv/cairn/internal/certs"
	"github.com/spf13/cobra"
)

// certFlags are shared by the cert subcommands.
type certFlags struct {
	dir       string
	caKey     string
	lifetime  time.Duration
	overwrite bool
}

func (f *certFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "certs-dir", os.Getenv("CAIRN_CERTS_DIR"), "certificates directory to write into (default $CAIRN_CERTS_DIR)")
	fl.StringVar(&f.caKey, "ca-key", "", "the CA's private key (default CERTS-DIR/ca.key); keep it off the nodes")
	fl.DurationVar(&f.lifetime, "lifetime", 0, "how long the certificate is valid (default 10 years for a CA, 2 years otherwise)")
	fl.BoolVar(&f.overwrite, "overwrite", false, "replace files that exist (to rotate a certificate)")
}

func (f *certFlags) options() (certs.Options, error) {
	if f.dir == "" {
		return certs.Options{}, fmt.Errorf("invalid argument: --certs-dir (or $CAIRN_CERTS_DIR) is required")
	}
	if f.lifetime < 0 {
		return certs.Options{}, fmt.Errorf("invalid argument: --lifetime %v: must be positive", f.lifetime)
	}
	return certs.Options{Dir: f.dir, CAKeyPath: f.caKey, Lifetime: f.lifetime, Overwrite: f.overwrite}, nil
}

func newCertCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Create the certificates of a secure cluster",
		Long: `Create a certificate authority, node certificates and client certificates
(ECDSA P-256, TLS 1.3) in a certificates directory:

  cairn cert create-ca     --certs-dir DIR              DIR/ca.crt, DIR/ca.key
  cairn cert create-node   --certs-dir DIR NAME [HOST]  DIR/node.crt, DIR/node.key
  cairn cert create-client --certs-dir DIR USER         DIR/client.USER.crt, .key

A node runs with --certs-dir holding ca.crt, node.crt and node.key; a
client (the CLI, the SDK's TLSFromCertsDir) with ca.crt and its
client.USER files. Nothing is overwritten unless --overwrite is given;
rewriting a node's files rotates its certificate without a restart.`,
	}
	var ca, node, cl certFlags
	createCA := &cobra.Command{
		Use:   "create-ca",
		Short: "Create the cluster's certificate authority",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := ca.options()
			if err != nil {
				return err
			}
			if err := certs.CreateCA(o); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s\n", filepath.Join(o.Dir, certs.CAFile), caKeyPath(o))
			return nil
		},
	}
	ca.register(createCA)
	createNode := &cobra.Command{
		Use:   "create-node NAME [HOST...]",
		Short: "Create node NAME's certificate, valid for the given hosts (names or IPs)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := node.options()
			if err != nil {
				return err
			}
			if err := certs.CreateNode(o, args[0], args[1:]); err != nil {
				return fmt.Errorf("invalid argument: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s for node %s\n",
				filepath.Join(o.Dir, certs.NodeCert), filepath.Join(o.Dir, certs.NodeKey), args[0])
			return nil
		},
	}
	node.register(createNode)
	createClient := &cobra.Command{
		Use:   "create-client USER",
		Short: "Create USER's client certificate",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := cl.options()
			if err != nil {
				return err
			}
			if err := certs.CreateClient(o, args[0]); err != nil {
				return fmt.Errorf("invalid argument: %w", err)
			}
			crt, key := certs.ClientFiles(args[0])
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s\n", filepath.Join(o.Dir, crt), filepath.Join(o.Dir, key))
			return nil
		},
	}
	cl.register(createClient)
	cmd.AddCommand(createCA, createNode, createClient)
	return cmd
}

func caKeyPath(o certs.Options) string {
	if o.CAKeyPath != "" {
		return o.CAKeyPath
	}
	return filepath.Join(o.Dir, certs.CAKey)
}

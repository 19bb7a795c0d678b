package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
  cairn cert create-cluster --certs-dir DIR NODE...     all of the above and a gossip key

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
	cmd.AddCommand(createCA, createNode, createClient, newCreateClusterCommand())
	return cmd
}

func newCreateClusterCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "create-cluster NODE[=HOST,...]...",
		Short: "Create everything a secure cluster needs in one directory: CA, root's certificate, node certificates, gossip key",
		Long: `Create, in --certs-dir DIR, all of a cluster's security material at once,
keeping whatever exists (run it again to add nodes):

  DIR/ca/         ca.crt, ca.key, client.root.crt/.key   the CLI's --certs-dir
  DIR/gossip.keys the cluster's gossip key
  DIR/NODE/       ca.crt, node.crt, node.key, gossip.keys  a node's --certs-dir
                  and --gossip-key-file

Each NODE's certificate is valid for the hosts after its = (names or IPs,
comma-separated) and for localhost and the loopback addresses. A node
certificate is made again when the CA is new. For a throw-away or a
container cluster whose nodes start from one volume (docker-compose.yml
runs it in a one-shot container); a production CA's key belongs on
another machine (create-ca, create-node --ca-key).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return fmt.Errorf("invalid argument: --certs-dir (or $CAIRN_CERTS_DIR) is required")
			}
			var names []string
			hosts := map[string][]string{}
			for _, a := range args {
				name, list, _ := strings.Cut(a, "=")
				if err := certs.CheckName(name); err != nil {
					return fmt.Errorf("invalid argument: %s: %w", a, err)
				}
				if _, dup := hosts[name]; dup {
					return fmt.Errorf("invalid argument: node %s named twice", name)
				}
				hosts[name] = nil
				for _, h := range strings.Split(list, ",") {
					if h = strings.TrimSpace(h); h != "" {
						hosts[name] = append(hosts[name], h)
					}
				}
				names = append(names, name)
			}
			m := clusterMaterial{
				caDir:       filepath.Join(dir, "ca"),
				gossipKeys:  filepath.Join(dir, "gossip.keys"),
				nodeDir:     func(name string) string { return filepath.Join(dir, name) },
				nodeKeyFile: func(name string) string { return filepath.Join(dir, name, "gossip.keys") },
			}
			if err := m.make(names, hosts); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cluster material in %s: CA and root's certificate in %s; nodes %s in %s/NODE\n",
				dir, m.caDir, strings.Join(names, ", "), dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "certs-dir", os.Getenv("CAIRN_CERTS_DIR"), "directory to write into (default $CAIRN_CERTS_DIR)")
	return cmd
}

func caKeyPath(o certs.Options) string {
	if o.CAKeyPath != "" {
		return o.CAKeyPath
	}
	return filepath.Join(o.Dir, certs.CAKey)
}

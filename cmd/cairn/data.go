package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairnkv/cairn/client"
	"github.com/cairnkv/cairn/internal/certs"
	"github.com/spf13/cobra"
)

// connFlags are shared by every command that talks to a node.
type connFlags struct {
	addr     string
	cluster  string
	output   string
	certsDir string
	user     string
	token    string
}

func (c *connFlags) register(cmd *cobra.Command) {
	def := os.Getenv("CAIRN_ADDR")
	if def == "" {
		def = "127.0.0.1:7101"
	}
	cmd.Flags().StringVar(&c.addr, "addr", def, "node data address host:port, or several comma-separated (tried in order) (default $CAIRN_ADDR, else 127.0.0.1:7101)")
	cmd.Flags().StringVar(&c.cluster, "cluster", "cairn", "cluster name")
	cmd.Flags().StringVar(&c.certsDir, "certs-dir", defaultCertsDir(), "directory holding ca.crt and client.USER.crt/.key, for nodes that speak TLS (default $CAIRN_CERTS_DIR when set, else ./data/certs when it holds a `cairn dev` CA; empty: plain TCP)")
	user := os.Getenv("CAIRN_USER")
	if user == "" {
		user = "root"
	}
	cmd.Flags().StringVar(&c.user, "user", user, "identity whose client certificate to present (default $CAIRN_USER, else root)")
	cmd.Flags().StringVar(&c.token, "token", os.Getenv("CAIRN_TOKEN"), "a user's token (printed by cairn user add --new-token or cairn user token) to act as that user; with --certs-dir but no client certificate for --user, only the CA is used (the node must run with --token-only-clients) (default $CAIRN_TOKEN)")
	outputFlag(cmd, &c.output)
}

// config is the client configuration the flags describe, TLS included.
func (c *connFlags) config(seeds []string) (client.Config, error) {
	cfg := client.Config{Seeds: seeds, Cluster: c.cluster}
	cfg.Token = strings.TrimSpace(c.token)
	if c.certsDir != "" {
		load := func() (*tls.Config, error) { return client.TLSFromCertsDir(c.certsDir, c.user) }
		if crt, _ := certs.ClientFiles(c.user); cfg.Token != "" && !fileExists(filepath.Join(c.certsDir, crt)) {
			load = func() (*tls.Config, error) { return client.TLSFromCA(c.certsDir) }
		}
		t, err := load()
		if err != nil {
			return client.Config{}, fmt.Errorf("invalid argument: --certs-dir: %w", err)
		}
		cfg.TLS = t
	}
	return cfg, nil
}

// dial connects to --addr only (SeedsOnly): a one-shot command saves
// nothing by routing to a replica itself (learning the ring and dialling
// another node cost more than the node's forwarding hop), and an operator
// who names a node means that node.
func (c *connFlags) dial(ctx context.Context) (*client.Client, error) {
	if err := checkOutput(c.output); err != nil {
		return nil, err
	}
	var seeds []string
	for _, a := range strings.Split(c.addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			seeds = append(seeds, a)
		}
	}
	cfg, err := c.config(seeds)
	if err != nil {
		return nil, err
	}
	cfg.Routing = client.SeedsOnly
	return client.New(ctx, cfg)
}

// consistencyFlags are the per-request options of DESIGN section 11.
type consistencyFlags struct {
	r, w, pr, pw, dw string
	timeout          time.Duration
	noSloppy         bool
	context          string
	write            bool
}

func (f *consistencyFlags) register(cmd *cobra.Command, write bool) {
	f.write = write
	fl := cmd.Flags()
	if write {
		f.registerWriteQuorums(cmd)
		fl.StringVar(&f.context, "context", "", "causal context (base64) from an earlier get")
	}
	if !write || cmd.Name() == "delete" {
		fl.StringVar(&f.r, "r", "", "read quorum: a number or one|quorum|all")
		fl.StringVar(&f.pr, "pr", "", "primary read quorum: a number or one|quorum|all")
	}
	fl.DurationVar(&f.timeout, "timeout", 0, "request deadline (default: the node's)")
	fl.BoolVar(&f.noSloppy, "no-sloppy", false, "count primary replicas only (no fallbacks)")
}

// registerReadWrite adds the read and the write quorum flags but no
// --context, for a command that sends both reads and writes (bench): build
// its options with readOptions and writeOptions.
func (f *consistencyFlags) registerReadWrite(cmd *cobra.Command) {
	f.register(cmd, false)
	f.registerWriteQuorums(cmd)
}

func (f *consistencyFlags) registerWriteQuorums(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.w, "w", "", "write quorum: a number or one|quorum|all")
	fl.StringVar(&f.pw, "pw", "", "primary write quorum: a number or one|quorum|all")
	fl.StringVar(&f.dw, "dw", "", "durable write quorum: a number or one|quorum|all")
}

// writeOptions are the options of the writes of a registerReadWrite command.
func (f *consistencyFlags) writeOptions() ([]client.Option, error) {
	return f.build(true)
}

// options are the flags as client options for the command's own request:
// r/pr for a get, w/pw/dw and the context for a put or delete.
func (f *consistencyFlags) options() ([]client.Option, error) {
	return f.build(f.write)
}

// readOptions are the options of the read a delete without --context makes.
func (f *consistencyFlags) readOptions() ([]client.Option, error) {
	return f.build(false)
}

func (f *consistencyFlags) build(write bool) ([]client.Option, error) {
	type quorumFlag struct {
		name, v string
		opt     func(client.Quorum) client.Option
	}
	flags := []quorumFlag{{"r", f.r, client.R}, {"pr", f.pr, client.PR}}
	if write {
		flags = []quorumFlag{{"w", f.w, client.W}, {"pw", f.pw, client.PW}, {"dw", f.dw, client.DW}}
	}
	var opts []client.Option
	for _, q := range flags {
		if q.v == "" {
			continue
		}
		n, err := client.ParseQuorum(q.v)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", q.name, err)
		}
		opts = append(opts, q.opt(n))
	}
	if f.timeout != 0 {
		opts = append(opts, client.Timeout(f.timeout))
	}
	if f.noSloppy {
		opts = append(opts, client.NoSloppy())
	}
	if write && f.context != "" {
		raw, err := base64.StdEncoding.DecodeString(f.context)
		if err != nil {
			return nil, fmt.Errorf("invalid argument: --context is not base64: %w", err)
		}
		opts = append(opts, client.Causal(raw))
	}
	return opts, nil
}

// callContext bounds a command by its --timeout (plus a margin for the
// network), or by a generous default, so the CLI never hangs.
// startCall begins a command's one request: its consistency options, its
// deadline and a connection to --addr; done releases the last two.
func startCall(cmd *cobra.Command, cf *connFlags, qf *consistencyFlags) (ctx context.Context, c *client.Client, opts []client.Option, done func(), err error) {
	if opts, err = qf.options(); err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, cancel := qf.callContext(cmd.Context())
	if c, err = cf.dial(ctx); err != nil {
		cancel()
		return nil, nil, nil, nil, err
	}
	return ctx, c, opts, func() {
		_ = c.Close()
		cancel()
	}, nil
}

func (f *consistencyFlags) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := 30 * time.Second
	if f.timeout > 0 {
		d = f.timeout + 2*time.Second
	}
	return context.WithTimeout(ctx, d)
}

// The -o json shapes of DESIGN section 11; bytes are standard base64.
type jsonSibling struct {
	Value     string `json:"value"`
	Tombstone bool   `json:"tombstone"`
}

type jsonGet struct {
	Found    bool          `json:"found"`
	Siblings []jsonSibling `json:"siblings"`
	Context  string        `json:"context"`
	// Present only when the node left the values out (too large to send
	// in one answer): siblings is then empty and sibling_count says how
	// many there are.
	ValuesOmitted bool `json:"values_omitted,omitempty"`
	SiblingCount  int  `json:"sibling_count,omitempty"`
}

type jsonWrite struct {
	OK      bool   `json:"ok"`
	Context string `json:"context"`
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func newGetCommand() *cobra.Command {
	var cf connFlags
	var qf consistencyFlags
	cmd := &cobra.Command{
		Use:   "get BUCKET KEY",
		Short: "Read a key: every live sibling and the causal context",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, opts, done, err := startCall(cmd, &cf, &qf)
			if err != nil {
				return err
			}
			defer done()
			obj, err := c.Get(ctx, args[0], []byte(args[1]), opts...)
			if err != nil {
				return err
			}
			return printGet(cmd.OutOrStdout(), cmd.ErrOrStderr(), cf.output, obj)
		},
	}
	cf.register(cmd)
	qf.register(cmd, false)
	return cmd
}

func printGet(out, errOut io.Writer, format string, obj *client.Object) error {
	if format == "json" {
		j := jsonGet{Found: obj.Found, Siblings: []jsonSibling{}, Context: b64(obj.Context)}
		for _, s := range obj.Siblings {
			j.Siblings = append(j.Siblings, jsonSibling{Value: b64(s.Value)})
		}
		if obj.ValuesOmitted {
			j.ValuesOmitted, j.SiblingCount = true, obj.SiblingCount
		}
		return writeJSON(out, j)
	}
	if !obj.Found {
		fmt.Fprintln(errOut, "not found")
	}
	if obj.ValuesOmitted {
		fmt.Fprintf(errOut, "values omitted: %d siblings, too large to send in one answer; put or delete with the context below to replace them all\n", obj.SiblingCount)
	}
	for i, s := range obj.Siblings {
		if len(obj.Siblings) > 1 {
			fmt.Fprintf(out, "[sibling %d] ", i+1)
		}
		if _, err := out.Write(s.Value); err != nil {
			return err
		}
		fmt.Fprintln(out)
	}
	if len(obj.Context) > 0 {
		fmt.Fprintf(errOut, "context: %s\n", b64(obj.Context))
	}
	if len(obj.Fallbacks) > 0 {
		fmt.Fprintf(errOut, "answered by fallbacks: %s\n", strings.Join(obj.Fallbacks, ", "))
	}
	return nil
}

func newPutCommand() *cobra.Command {
	var cf connFlags
	var qf consistencyFlags
	cmd := &cobra.Command{
		Use:   "put BUCKET KEY [VALUE|-]",
		Short: "Write a value (from the argument, or stdin when it is - or absent)",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := qf.options()
			if err != nil {
				return err
			}
			var value []byte
			if len(args) == 3 && args[2] != "-" {
				value = []byte(args[2])
			} else if value, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<20+1)); err != nil {
				return fmt.Errorf("read value from stdin: %w", err)
			}
			ctx, cancel := qf.callContext(cmd.Context())
			defer cancel()
			c, err := cf.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			cc, err := c.Put(ctx, args[0], []byte(args[1]), value, opts...)
			if err != nil {
				return err
			}
			return printWrite(cmd.OutOrStdout(), cf.output, cc)
		},
	}
	cf.register(cmd)
	qf.register(cmd, true)
	return cmd
}

func newDeleteCommand() *cobra.Command {
	var cf connFlags
	var qf consistencyFlags
	cmd := &cobra.Command{
		Use:   "delete BUCKET KEY",
		Short: "Delete a key: the siblings --context covers, or without it, what a read sees now",
		Long: `Delete a key. With --context (from an earlier get) the delete removes exactly
the siblings that get returned; a value written concurrently survives as a
sibling. Without --context, delete first reads the key (with the given --r)
and deletes what that read saw.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, opts, done, err := startCall(cmd, &cf, &qf)
			if err != nil {
				return err
			}
			defer done()
			if qf.context == "" {
				readOpts, err := qf.readOptions()
				if err != nil {
					return err
				}
				cur, err := c.Get(ctx, args[0], []byte(args[1]), readOpts...)
				if err != nil {
					return fmt.Errorf("read before delete: %w", err)
				}
				opts = append(opts, client.Causal(cur.Context))
			}
			cc, err := c.Delete(ctx, args[0], []byte(args[1]), opts...)
			if err != nil {
				return err
			}
			return printWrite(cmd.OutOrStdout(), cf.output, cc)
		},
	}
	cf.register(cmd)
	qf.register(cmd, true)
	return cmd
}

func printWrite(out io.Writer, format string, cc client.Context) error {
	if format == "json" {
		return writeJSON(out, jsonWrite{OK: true, Context: b64(cc)})
	}
	fmt.Fprintf(out, "ok\ncontext: %s\n", b64(cc))
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// defaultDevCertsDir is where `cairn dev`, run with its default --data,
// keeps the CA and user root's certificate.
const defaultDevCertsDir = "data/certs"

// defaultCertsDir is --certs-dir's default: $CAIRN_CERTS_DIR when it is
// set (set and empty means plain TCP), else the certificates of a secure
// `cairn dev` started from this directory, so that `make run` and the
// README's commands need no set-up.
func defaultCertsDir() string {
	if dir, ok := os.LookupEnv("CAIRN_CERTS_DIR"); ok {
		return dir
	}
	if fileExists(filepath.Join(defaultDevCertsDir, certs.CAFile)) {
		return defaultDevCertsDir
	}
	return ""
}

package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cairnkv/cairn/node"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"
)

// serverFlags mirror node.Config. Precedence: flag, then CAIRN_<FLAG> in the
// environment (dashes as underscores), then the --config file, then defaults.
type serverFlags struct {
	config    string
	logFormat string
	logLevel  string
	cfg       node.Config
	join      []string
}

func newServerCommand() *cobra.Command {
	var f serverFlags
	f.cfg = node.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a cairn node",
		Long: `Run a cairn node. Settings come from flags, then CAIRN_* environment
variables (CAIRN_NAME, CAIRN_DATA, CAIRN_LISTEN, CAIRN_JOIN, ...), then the
YAML file given with --config, then the defaults shown below.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.resolve(cmd.Flags())
			if err != nil {
				return err
			}
			return runServer(cmd.Context(), cfg, f.logFormat, f.logLevel)
		},
	}
	fl := cmd.Flags()
	d := f.cfg
	fl.StringVar(&f.config, "config", "", "YAML configuration file")
	fl.StringVar(&f.cfg.Name, "name", d.Name, "node name, stable across restarts")
	fl.StringVar(&f.cfg.DataDir, "data", d.DataDir, "data directory")
	fl.StringVar(&f.cfg.Listen, "listen", d.Listen, "data address host:port (clients and peers)")
	fl.StringVar(&f.cfg.Gossip, "gossip", d.Gossip, "gossip address host:port")
	fl.StringVar(&f.cfg.Admin, "admin", d.Admin, "admin HTTP address host:port (metrics, health, pprof); empty to disable")
	fl.StringVar(&f.cfg.Advertise, "advertise", d.Advertise, "host or IP peers and clients use to reach this node (default: the listen host, or a private IP when listening on 0.0.0.0)")
	fl.StringSliceVar(&f.join, "join", nil, "gossip addresses of nodes to join, comma separated")
	fl.StringVar(&f.cfg.Cluster, "cluster", d.Cluster, "cluster name; every connection must carry it")
	fl.IntVar(&f.cfg.Partitions, "partitions", d.Partitions, "ring partitions Q (power of two, fixed at cluster creation)")
	fl.IntVar(&f.cfg.N, "n", d.N, "default replication factor")
	fl.IntVar(&f.cfg.R, "r", d.R, "default read quorum")
	fl.IntVar(&f.cfg.W, "w", d.W, "default write quorum")
	fl.DurationVar(&f.cfg.RequestTimeout, "request-timeout", d.RequestTimeout, "default request deadline")
	fl.DurationVar(&f.cfg.MaxRequestTimeout, "max-request-timeout", d.MaxRequestTimeout, "longest deadline a request may ask for; tombstones are never reaped sooner after their delete")
	fl.IntVar(&f.cfg.MaxValueSize, "max-value-size", d.MaxValueSize, "largest value accepted, bytes")
	fl.IntVar(&f.cfg.MaxKeySize, "max-key-size", d.MaxKeySize, "largest key accepted, bytes")
	fl.IntVar(&f.cfg.SiblingLimit, "sibling-limit", d.SiblingLimit, "most siblings a client put or delete may leave an object with; a write that would grow one past it is refused (merges between replicas never are)")
	fl.IntVar(&f.cfg.MaxObjectSize, "max-object-size", d.MaxObjectSize, "largest object, bytes, a client put or delete may leave (all siblings encoded); 0 is 4 x --max-value-size")
	fl.Int64Var(&f.cfg.MaxHintBytesPerOwner, "max-hint-bytes-per-owner", d.MaxHintBytesPerOwner, "bytes of hints this node keeps for one unreachable node; a hinted write past it is refused (the coordinator tries the next fallback), none is ever dropped")
	fl.Int64Var(&f.cfg.MaxHintBytes, "max-hint-bytes", d.MaxHintBytes, "bytes of hints this node keeps for all unreachable nodes together; 0 for no node-wide cap")
	fl.BoolVar(&f.cfg.NoSyncWrites, "no-sync-writes", d.NoSyncWrites, "skip fsync for writes with dw=0 (a crash or power loss may lose acknowledged writes)")
	fl.StringVar(&f.cfg.GossipProfile, "gossip-profile", d.GossipProfile, "failure detection timings: lan (about 5s) or local (loopback clusters, about 2s)")
	fl.DurationVar(&f.cfg.RejoinInterval, "rejoin-interval", d.RejoinInterval, "how often to re-join seeds and members not seen alive (heals long partitions)")
	fl.IntVar(&f.cfg.MaxConns, "max-conns", d.MaxConns, "open client connections allowed (peers have --max-peer-conns)")
	fl.IntVar(&f.cfg.MaxPeerConns, "max-peer-conns", d.MaxPeerConns, "open connections from other nodes allowed, apart from the clients'")
	fl.IntVar(&f.cfg.MaxConnsPerSource, "max-conns-per-source", d.MaxConnsPerSource, "open client connections allowed from one IP address")
	fl.DurationVar(&f.cfg.HandshakeTimeout, "handshake-timeout", d.HandshakeTimeout, "close a connection whose hello has not arrived within this")
	fl.IntVar(&f.cfg.MaxConnBytes, "max-conn-bytes", d.MaxConnBytes, "bytes one client connection may hold (requests being served, answers not yet read) before the node stops reading it")
	fl.Int64Var(&f.cfg.MaxInFlightBytes, "max-inflight-bytes", d.MaxInFlightBytes, "bytes all client connections may hold together; beyond it requests are answered overloaded")
	fl.Int64Var(&f.cfg.MaxPeerInFlightBytes, "max-peer-inflight-bytes", d.MaxPeerInFlightBytes, "bytes connections from other nodes may hold together, apart from the clients'")
	fl.BoolVar(&f.cfg.VerifyPeerAddress, "verify-peer-address", d.VerifyPeerAddress, "refuse a connection naming a member unless it comes from an address that member advertises (off only behind address translation)")
	fl.StringVar(&f.cfg.CertsDir, "certs-dir", d.CertsDir, "directory of the node's TLS material (ca.crt, node.crt, node.key from cairn cert create-node): the data port then speaks only TLS 1.3 with client certificates; reloaded when the files change and on SIGHUP")
	fl.StringVar(&f.cfg.GossipKeyFile, "gossip-key-file", d.GossipKeyFile, "JSON array of base64 gossip keys, the one in use first (cairn keyring generate --out FILE): gossip is then encrypted; cairn keyring rotates the keys and the node rewrites the file")
	fl.BoolVar(&f.cfg.TokenOnlyClients, "token-only-clients", d.TokenOnlyClients, "with --certs-dir, also accept clients without a certificate that present a user's token (cairn user add --new-token)")
	fl.BoolVar(&f.cfg.Insecure, "insecure", d.Insecure, "run on an address other machines can reach without TLS and gossip encryption (refused otherwise)")
	fl.Int64Var(&f.cfg.Handoff.ReceiveBytesPerSecond, "handoff-receive-rate", d.Handoff.ReceiveBytesPerSecond, "bytes per second of hinted handoff this node accepts from all fallbacks together")
	fl.DurationVar(&f.cfg.Handoff.Interval, "handoff-interval", d.Handoff.Interval, "how often to look for owners to hand hints back to")
	fl.BoolVar(&f.cfg.Bootstrap, "bootstrap", false, "this node is one of a cluster being created: own partitions at once, with no transfer (never for a node joining a cluster holding data)")
	fl.StringVar(&f.cfg.Replace, "replace", "", "joining with --join, take this member's place: exactly its partitions move here, then it is removed (as cairn replace OLD NEW)")
	fl.Int64Var(&f.cfg.Transfer.BytesPerSecond, "transfer-rate", d.Transfer.BytesPerSecond, "bytes per second this node sends in all its ownership transfers together")
	fl.IntVar(&f.cfg.Transfer.MaxConcurrent, "transfer-max-concurrent", d.Transfer.MaxConcurrent, "partition streams this node sends at once during a membership change")
	fl.BoolVar(&f.cfg.HintedHandoff, "hinted-handoff", d.HintedHandoff, "hand hints back to their owners (false: fallbacks keep them)")
	fl.BoolVar(&f.cfg.ReadRepair, "read-repair", d.ReadRepair, "repair replicas a get found missing or behind")
	fl.BoolVar(&f.cfg.ReadAll, "read-all", d.ReadAll, "ask every replica on each get, not only as many as R needs (more read repair, more messages)")
	fl.BoolVar(&f.cfg.AAE.Enabled, "aae", d.AAE.Enabled, "active anti-entropy: Merkle trees and exchanges between replicas")
	fl.DurationVar(&f.cfg.AAE.Interval, "aae-interval", d.AAE.Interval, "least time between two routine exchanges of a partition")
	fl.Float64Var(&f.cfg.AAE.ExchangesPerSecond, "aae-exchange-rate", d.AAE.ExchangesPerSecond, "anti-entropy exchanges this node starts per second, at most")
	fl.IntVar(&f.cfg.AAE.MaxConcurrent, "aae-max-concurrent", d.AAE.MaxConcurrent, "anti-entropy exchanges this node runs at once, at most")
	fl.Float64Var(&f.cfg.AAE.RepairKeysPerSecond, "aae-repair-rate", d.AAE.RepairKeysPerSecond, "keys per second anti-entropy repairs, at most")
	fl.Float64Var(&f.cfg.AAE.UrgentExchangesPerSecond, "aae-urgent-exchange-rate", d.AAE.UrgentExchangesPerSecond, "urgent anti-entropy exchanges (partitions shared with a peer that came back) this node starts per second, at most")
	fl.IntVar(&f.cfg.AAE.UrgentMaxConcurrent, "aae-urgent-max-concurrent", d.AAE.UrgentMaxConcurrent, "urgent anti-entropy exchanges this node runs at once, at most")
	fl.Float64Var(&f.cfg.AAE.UrgentRepairKeysPerSecond, "aae-urgent-repair-rate", d.AAE.UrgentRepairKeysPerSecond, "keys per second urgent anti-entropy exchanges repair, at most")
	fl.DurationVar(&f.cfg.AAE.RetryAfter, "aae-retry-after", d.AAE.RetryAfter, "wait before retrying an exchange that failed")
	fl.DurationVar(&f.cfg.AAE.BusyRetryAfter, "aae-busy-retry-after", d.AAE.BusyRetryAfter, "wait before retrying an exchange that found its partition busy with another")
	fl.DurationVar(&f.cfg.AAE.PruneInterval, "aae-prune-interval", d.AAE.PruneInterval, "time between two passes pruning the version-vector entries of actors this node retired (0: never prune)")
	fl.DurationVar(&f.cfg.AAE.PruneSettle, "aae-prune-settle", d.AAE.PruneSettle, "wait between a pruning pass's two looks at every copy of its keys; longer than any copy takes to travel between nodes")
	fl.Float64Var(&f.cfg.AAE.RebuildKeysPerSecond, "aae-rebuild-rate", d.AAE.RebuildKeysPerSecond, "keys per second read when rebuilding trees from storage")
	fl.DurationVar(&f.cfg.Reap.Interval, "reap-interval", d.Reap.Interval, "time between two passes removing tombstones past their bucket's delete grace (0: this node reaps none)")
	fl.Float64Var(&f.cfg.Reap.KeysPerSecond, "reap-rate", d.Reap.KeysPerSecond, "tombstones per second this node reaps, at most")
	fl.StringVar(&f.logFormat, "log-format", "json", "log format: json or console")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

// resolve applies the configuration file, then the environment, then flags.
func (f *serverFlags) resolve(fl *pflag.FlagSet) (node.Config, error) {
	if err := applyEnv(fl); err != nil {
		return node.Config{}, err
	}
	cfg := node.DefaultConfig()
	if f.config != "" {
		raw, err := os.ReadFile(f.config)
		if err != nil {
			return node.Config{}, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return node.Config{}, fmt.Errorf("config %s: %w", f.config, err)
		}
	}
	// Only flags that were set (on the command line or through the
	// environment) override the file.
	set := func(name string, apply func()) {
		if fl.Changed(name) {
			apply()
		}
	}
	set("name", func() { cfg.Name = f.cfg.Name })
	set("data", func() { cfg.DataDir = f.cfg.DataDir })
	set("listen", func() { cfg.Listen = f.cfg.Listen })
	set("gossip", func() { cfg.Gossip = f.cfg.Gossip })
	set("admin", func() { cfg.Admin = f.cfg.Admin })
	set("join", func() { cfg.Join = f.join })
	set("advertise", func() { cfg.Advertise = f.cfg.Advertise })
	set("cluster", func() { cfg.Cluster = f.cfg.Cluster })
	set("partitions", func() { cfg.Partitions = f.cfg.Partitions })
	set("n", func() { cfg.N = f.cfg.N })
	set("r", func() { cfg.R = f.cfg.R })
	set("w", func() { cfg.W = f.cfg.W })
	set("request-timeout", func() { cfg.RequestTimeout = f.cfg.RequestTimeout })
	set("max-request-timeout", func() { cfg.MaxRequestTimeout = f.cfg.MaxRequestTimeout })
	set("max-value-size", func() { cfg.MaxValueSize = f.cfg.MaxValueSize })
	set("max-key-size", func() { cfg.MaxKeySize = f.cfg.MaxKeySize })
	set("sibling-limit", func() { cfg.SiblingLimit = f.cfg.SiblingLimit })
	set("max-object-size", func() { cfg.MaxObjectSize = f.cfg.MaxObjectSize })
	set("max-hint-bytes-per-owner", func() { cfg.MaxHintBytesPerOwner = f.cfg.MaxHintBytesPerOwner })
	set("max-hint-bytes", func() { cfg.MaxHintBytes = f.cfg.MaxHintBytes })
	set("no-sync-writes", func() { cfg.NoSyncWrites = f.cfg.NoSyncWrites })
	set("gossip-profile", func() { cfg.GossipProfile = f.cfg.GossipProfile })
	set("rejoin-interval", func() { cfg.RejoinInterval = f.cfg.RejoinInterval })
	set("max-conns", func() { cfg.MaxConns = f.cfg.MaxConns })
	set("max-peer-conns", func() { cfg.MaxPeerConns = f.cfg.MaxPeerConns })
	set("max-conns-per-source", func() { cfg.MaxConnsPerSource = f.cfg.MaxConnsPerSource })
	set("handshake-timeout", func() { cfg.HandshakeTimeout = f.cfg.HandshakeTimeout })
	set("max-conn-bytes", func() { cfg.MaxConnBytes = f.cfg.MaxConnBytes })
	set("max-inflight-bytes", func() { cfg.MaxInFlightBytes = f.cfg.MaxInFlightBytes })
	set("max-peer-inflight-bytes", func() { cfg.MaxPeerInFlightBytes = f.cfg.MaxPeerInFlightBytes })
	set("verify-peer-address", func() { cfg.VerifyPeerAddress = f.cfg.VerifyPeerAddress })
	set("certs-dir", func() { cfg.CertsDir = f.cfg.CertsDir })
	set("gossip-key-file", func() { cfg.GossipKeyFile = f.cfg.GossipKeyFile })
	set("insecure", func() { cfg.Insecure = f.cfg.Insecure })
	set("token-only-clients", func() { cfg.TokenOnlyClients = f.cfg.TokenOnlyClients })
	set("handoff-receive-rate", func() { cfg.Handoff.ReceiveBytesPerSecond = f.cfg.Handoff.ReceiveBytesPerSecond })
	set("handoff-interval", func() { cfg.Handoff.Interval = f.cfg.Handoff.Interval })
	set("hinted-handoff", func() { cfg.HintedHandoff = f.cfg.HintedHandoff })
	set("bootstrap", func() { cfg.Bootstrap = f.cfg.Bootstrap })
	set("replace", func() { cfg.Replace = f.cfg.Replace })
	set("transfer-rate", func() { cfg.Transfer.BytesPerSecond = f.cfg.Transfer.BytesPerSecond })
	set("transfer-max-concurrent", func() { cfg.Transfer.MaxConcurrent = f.cfg.Transfer.MaxConcurrent })
	set("read-repair", func() { cfg.ReadRepair = f.cfg.ReadRepair })
	set("read-all", func() { cfg.ReadAll = f.cfg.ReadAll })
	set("aae", func() { cfg.AAE.Enabled = f.cfg.AAE.Enabled })
	set("aae-interval", func() { cfg.AAE.Interval = f.cfg.AAE.Interval })
	set("aae-exchange-rate", func() { cfg.AAE.ExchangesPerSecond = f.cfg.AAE.ExchangesPerSecond })
	set("aae-max-concurrent", func() { cfg.AAE.MaxConcurrent = f.cfg.AAE.MaxConcurrent })
	set("aae-repair-rate", func() { cfg.AAE.RepairKeysPerSecond = f.cfg.AAE.RepairKeysPerSecond })
	set("aae-urgent-exchange-rate", func() { cfg.AAE.UrgentExchangesPerSecond = f.cfg.AAE.UrgentExchangesPerSecond })
	set("aae-urgent-max-concurrent", func() { cfg.AAE.UrgentMaxConcurrent = f.cfg.AAE.UrgentMaxConcurrent })
	set("aae-urgent-repair-rate", func() { cfg.AAE.UrgentRepairKeysPerSecond = f.cfg.AAE.UrgentRepairKeysPerSecond })
	set("aae-retry-after", func() { cfg.AAE.RetryAfter = f.cfg.AAE.RetryAfter })
	set("aae-prune-interval", func() { cfg.AAE.PruneInterval = f.cfg.AAE.PruneInterval })
	set("aae-prune-settle", func() { cfg.AAE.PruneSettle = f.cfg.AAE.PruneSettle })
	set("aae-busy-retry-after", func() { cfg.AAE.BusyRetryAfter = f.cfg.AAE.BusyRetryAfter })
	set("aae-rebuild-rate", func() { cfg.AAE.RebuildKeysPerSecond = f.cfg.AAE.RebuildKeysPerSecond })
	set("reap-interval", func() { cfg.Reap.Interval = f.cfg.Reap.Interval })
	set("reap-rate", func() { cfg.Reap.KeysPerSecond = f.cfg.Reap.KeysPerSecond })
	if err := cfg.Validate(); err != nil {
		return node.Config{}, fmt.Errorf("invalid argument: %w", err)
	}
	return cfg, nil
}

// applyEnv sets every flag not given on the command line from CAIRN_<NAME>.
func applyEnv(fl *pflag.FlagSet) error {
	var errs []string
	fl.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		env := "CAIRN_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		if err := fl.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q: %v", env, v, err))
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("invalid argument: %s", strings.Join(errs, "; "))
	}
	return nil
}

func newLogger(format, level string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.Set(level); err != nil {
		return nil, fmt.Errorf("invalid argument: --log-level %q: %w", level, err)
	}
	var zc zap.Config
	switch format {
	case "json":
		zc = zap.NewProductionConfig()
	case "console":
		zc = zap.NewDevelopmentConfig()
		zc.DisableStacktrace = true
	default:
		return nil, fmt.Errorf("invalid argument: --log-format %q: want json or console", format)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.OutputPaths = []string{"stderr"}
	return zc.Build()
}

func runServer(ctx context.Context, cfg node.Config, logFormat, logLevel string) error {
	log, err := newLogger(logFormat, logLevel)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	cfg.Logger = log
	n, err := node.Start(ctx, cfg)
	if err != nil {
		log.Error("start failed", zap.Error(err))
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var runErr error
wait:
	for {
		select {
		case <-hup:
			n.ReloadTLS()
		case <-ctx.Done():
			log.Info("signal received, shutting down")
			break wait
		case runErr = <-n.Failed():
			log.Error("node failed", zap.Error(runErr))
			break wait
		case <-n.Left():
			log.Info("left the ring: every partition moved to the other members; shutting down")
			break wait
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		log.Error("shutdown", zap.Error(err))
		if runErr == nil {
			runErr = err
		}
	}
	return runErr
}

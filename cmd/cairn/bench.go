package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cairnkv/cairn/bench"
	"github.com/cairnkv/cairn/client"
	"github.com/spf13/cobra"
)

// benchFlags are the flags of `cairn bench` that do not map one to one
// onto bench.Config.
type benchFlags struct {
	workload     string
	mix          string
	distribution string
	skipLoad     bool
	out          string
	plot         string
	admin        string
	adminToken   string
}

func newBenchCommand() *cobra.Command {
	var (
		cf  connFlags
		qf  consistencyFlags
		bf  benchFlags
		cfg = bench.DefaultConfig()
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test a cluster with YCSB workloads and report throughput and latency",
		Long: `Load-test a cluster: insert --records keys (unless --skip-load), then run a
YCSB core workload or a custom --mix for --duration or --ops requests, with
--concurrency workers sharing one client.

Workloads (YCSB's, E excepted):
  a  read 50%, update 50%, zipfian     b  read 95%, update 5%, zipfian
  c  read 100%, zipfian                d  read 95%, insert 5%, latest
  f  read 50%, read-modify-write 50%, zipfian

An update carries the causal context of the harness's last read or write of
the key, so it replaces the value instead of adding a sibling; a
read-modify-write is a get and a put with its context, timed as one request.
With --skip-load and updates in the mix, every key is read once first,
unmeasured, to learn its context.

Without --rate the workers loop closed (each sends when its last request
returns). With --rate R they loop open: each has a fixed schedule of R/C
requests per second, and latency counts from when a request was due, so a
stall shows as latency (no coordinated omission); requests still due at the
end are reported as backlog.

Latencies (p50/p95/p99/p99.9/max) are those of successful requests, from
HDR histograms; failed requests are counted by kind (timeout, quorum,
unavailable, overloaded, invalid_argument, other), never dropped. A progress
line goes to stderr every second, the summary to stdout (-o json for the
whole result), the result to --out and a plot (per operation: throughput,
and p50/p99/p99.9 latency, over time) to --plot, as .svg or .png.

Cost: the run's summary and result also say what the measured run (not the
load, not the warmup) cost the cluster's nodes per request, failed ones
included: node CPU (run.cost.cpu: seconds, us_per_op, from each node's
process_cpu_seconds_total) and transport bytes (run.cost.traffic:
bytes_sent, bytes_sent_per_op, bytes_received, bytes_received_per_op, from
cairn_transport_bytes_sent_total and _received_total), summed over the
nodes and read from their admin HTTP ports (/metrics) when measuring starts
and when the run ends; run.cost.nodes has each node's share. The admin
ports are learnt from the cluster (each member's status names its own), or
named with --admin. A figure that could not be measured (a node down, no
admin port, a node restarted) is left out, and run.cost.unavailable says
why. Beside it, the harness's own CPU over the same span
(run.cost.harness_cpu: seconds, us_per_op): on a machine shared with the
nodes, the two together bound the throughput.

Exit status: 0 when the run completed, even if requests failed (they are in
the result); non-zero only when the harness itself failed: bad flags, no
node reachable, a file it could not write, or an interruption (the partial
result is still written), or a cluster that answered nothing successfully
for --give-up-after (1m by default; the partial result is written too).`,
		Example: `  cairn bench --workload a --records 100000 --duration 20s --concurrency 50 --out a.json --plot a.svg
  cairn bench --addr 127.0.0.1:7101,127.0.0.1:7102 --mix read=90,insert=10 --distribution latest --ops 100000 --out mix.json
  cairn bench --workload b --rate 5000 --concurrency 64 --w all --r one --out b.json --plot b.png`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd, &cf, &qf, &bf, cfg)
		},
	}
	cf.register(cmd)
	cmd.Flags().Lookup("addr").Usage = "node data addresses host:port[,host:port...] ($CAIRN_ADDR when set)"
	qf.registerReadWrite(cmd)
	fl := cmd.Flags()
	fl.StringVar(&bf.workload, "workload", "a", "YCSB workload: a, b, c, d or f")
	fl.StringVar(&bf.mix, "mix", "", "custom operation weights, e.g. read=50,update=30,insert=10,rmw=10 (replaces the workload's)")
	fl.StringVar(&bf.distribution, "distribution", "", "key distribution: uniform, zipfian or latest (default: the workload's)")
	fl.IntVar(&cfg.Records, "records", cfg.Records, "number of keys to load and address")
	fl.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "bytes per written value")
	fl.StringVar(&cfg.Bucket, "bucket", cfg.Bucket, "bucket the benchmark's keys live in")
	fl.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "number of workers (requests in flight at most)")
	fl.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the measured run (0 with --ops: until the ops are sent)")
	fl.Int64Var(&cfg.Ops, "ops", 0, "stop after this many requests (0: only --duration bounds the run)")
	fl.Float64Var(&cfg.Rate, "rate", 0, "target requests per second across all workers: open loop (0: closed loop)")
	fl.DurationVar(&cfg.Warmup, "warmup", 0, "run this long before measuring")
	fl.DurationVar(&cfg.GiveUpAfter, "give-up-after", cfg.GiveUpAfter, "stop, with an error and the partial result, when no request has succeeded for this long (0: never)")
	fl.BoolVar(&bf.skipLoad, "skip-load", false, "do not insert the records first (they are already there; with updates, read each once first for its context)")
	fl.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the key and operation choices")
	fl.StringVar(&bf.out, "out", "cairn-bench.json", "file to write the JSON result to")
	fl.StringVar(&bf.plot, "plot", "", "file to draw the plot in, .svg or .png (default: none)")
	fl.StringVar(&bf.admin, "admin", "", "every node's admin HTTP address host:port[,host:port...] to read the run's cost from (default: asked of the cluster)")
	fl.StringVar(&bf.adminToken, "admin-token", os.Getenv("CAIRN_ADMIN_TOKEN"), "an admin user's token for the admin ports of a secure cluster, to read the run's cost (default $CAIRN_ADMIN_TOKEN, else the console.token that cairn dev keeps in --certs-dir)")
	return cmd
}

func runBench(cmd *cobra.Command, cf *connFlags, qf *consistencyFlags, bf *benchFlags, cfg bench.Config) error {
	if err := checkOutput(cf.output); err != nil {
		return err
	}
	if err := bf.apply(cmd, &cfg); err != nil {
		return fmt.Errorf("invalid argument: %w", err)
	}
	var err error
	if cfg.ReadOptions, err = qf.readOptions(); err != nil {
		return err
	}
	if cfg.WriteOptions, err = qf.writeOptions(); err != nil {
		return err
	}
	if qf.timeout > 0 {
		// The node answers within --timeout; give the network a margin
		// before the harness gives up on its own.
		cfg.RequestTimeout = qf.timeout + time.Second
	}
	cfg.Settings.Consistency = consistencySettings(qf)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid argument: %w", err)
	}
	if err := bf.checkFiles(); err != nil {
		return fmt.Errorf("invalid argument: %w", err)
	}
	for _, a := range splitList(bf.admin) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("invalid argument: --admin %q: want host:port", a)
		}
	}
	seeds := splitList(cf.addr)
	cfg.Settings.Targets = seeds
	ccfg, err := cf.config(seeds)
	if err != nil {
		return err
	}
	cfg.Meter = &bench.AdminMeter{Seeds: seeds, Cluster: cf.cluster, TLS: ccfg.TLS, Admin: splitList(bf.admin), Token: bf.adminTokenOr(cf.certsDir)}

	dialCtx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
	defer cancel()
	ccfg.RequestTimeout = cfg.RequestTimeout
	c, err := client.New(dialCtx, ccfg)
	if err != nil {
		return err
	}
	defer c.Close()

	errOut := cmd.ErrOrStderr()
	cfg.Progress = errOut
	if f, ok := errOut.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			cfg.ProgressInPlace = true
		}
	}
	res, err := bench.Run(cmd.Context(), c, cfg)
	if err != nil {
		return err
	}
	if err := res.WriteJSON(bf.out); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	if bf.plot != "" {
		if err := res.WritePlot(bf.plot); err != nil {
			return fmt.Errorf("write plot: %w", err)
		}
	}
	out := cmd.OutOrStdout()
	if cf.output == "json" {
		if err := writeJSON(out, res); err != nil {
			return err
		}
	} else {
		if err := res.WriteSummary(out); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nresult: %s\n", bf.out)
		if bf.plot != "" {
			fmt.Fprintf(out, "plot:   %s\n", bf.plot)
		}
	}
	if res.Aborted != "" {
		return fmt.Errorf("%s: partial result written to %s", res.Aborted, bf.out)
	}
	return nil
}

// apply turns the workload, mix, distribution and load flags into cfg.
func (bf *benchFlags) apply(cmd *cobra.Command, cfg *bench.Config) error {
	w, err := bench.LookupWorkload(bf.workload)
	if err != nil {
		return err
	}
	cfg.Workload, cfg.Mix, cfg.Distribution = w.Name, w.Mix, w.Distribution
	if bf.mix != "" {
		if cfg.Mix, err = bench.ParseMix(bf.mix); err != nil {
			return err
		}
		cfg.Workload = ""
		if !cmd.Flags().Changed("workload") {
			// A custom mix without a named workload takes YCSB's
			// default distribution rather than workload a's by accident.
			cfg.Distribution = bench.Zipfian
		}
	}
	if bf.distribution != "" {
		if cfg.Distribution, err = bench.ParseDistribution(bf.distribution); err != nil {
			return err
		}
		if bf.mix == "" && cfg.Distribution != w.Distribution {
			cfg.Workload = "" // no longer the YCSB workload of that name
		}
	}
	if cmd.Flags().Changed("ops") && !cmd.Flags().Changed("duration") {
		cfg.Duration = 0 // --ops alone: run until the ops are sent
	}
	cfg.Load = !bf.skipLoad
	return nil
}

// checkFiles refuses names the run could not write to before the run
// rather than after it.
func (bf *benchFlags) checkFiles() error {
	if bf.out == "" {
		return errors.New("--out: a file name is required")
	}
	for _, p := range []string{bf.out, bf.plot} {
		if p == "" {
			continue
		}
		if st, err := os.Stat(filepath.Dir(p)); err != nil || !st.IsDir() {
			return fmt.Errorf("%s: directory %s does not exist", p, filepath.Dir(p))
		}
	}
	if bf.plot != "" {
		return bench.PlotFormatOK(bf.plot)
	}
	return nil
}

// settings records the consistency flags that were given, for the result.
func consistencySettings(f *consistencyFlags) map[string]string {
	m := map[string]string{}
	for name, v := range map[string]string{"r": f.r, "w": f.w, "pr": f.pr, "pw": f.pw, "dw": f.dw} {
		if v != "" {
			m[name] = v
		}
	}
	if f.timeout > 0 {
		m["timeout"] = f.timeout.String()
	}
	if f.noSloppy {
		m["no_sloppy"] = strconv.FormatBool(true)
	}
	return m
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// adminTokenOr is --admin-token, else the token `cairn dev` keeps for its
// console user next to the certificates the client uses.
func (bf *benchFlags) adminTokenOr(certsDir string) string {
	if bf.adminToken != "" || certsDir == "" {
		return strings.TrimSpace(bf.adminToken)
	}
	raw, err := os.ReadFile(filepath.Join(certsDir, devConsoleTokenFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(raw))
}

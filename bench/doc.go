// Package bench is cairn's load-test harness, run as `cairn bench`: YCSB
// core workloads and custom operation mixes against a live cluster through
// the client SDK, measured with HDR histograms and reported as a summary, a
// JSON result and a plot.
//
// A run has an optional load phase (insert the records) and a measured run
// phase. Workers (Config.Concurrency of them, sharing one client) either
// loop closed (the next request leaves when the previous one returns) or,
// with Config.Rate, open: each worker has a fixed schedule of intended send
// times, and latency is measured from the intended time, not the actual one,
// so a stalled cluster shows up as latency instead of silently lowering the
// offered load (no coordinated omission).
//
// Every worker records into its own histogram per operation; a reporter
// swaps them out once per interval, merges them into the time series and
// the totals, and prints a progress line.
//
// The run's cost to the cluster is read from the nodes' own counters (CPU
// time, transport bytes) through a Meter, when measuring starts and when
// the run ends, and divided by the requests sent: node CPU per request
// is the figure that a noisy machine moves least. AdminMeter reads them
// from each node's admin port (/metrics), learnt from the node's status
// answer. A figure that could not be read is absent, with the reason.
//
// The plot (gonum.org/v1/plot, as SVG or PNG from one layout) stacks
// panels on one time axis: throughput of all operations, then each
// operation's throughput and latency percentiles.
//
// The key generators (uniform, YCSB's scrambled zipfian and skewed latest)
// and the open-loop schedule are pure: they take a seeded *rand.Rand or a
// start time and never read a clock.
//
// The harness must never hide an error: every failed request is counted by
// kind (timeout, quorum, unavailable, overloaded, invalid argument, other)
// and reported beside the latencies, which are those of successful
// requests. It must never write anything but its own keys, in its own
// bucket.
package bench

package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Meter reads the cumulative counters of every node of the cluster. Run
// reads it when measuring starts and when the run ends, and charges the
// difference to the requests sent in between.
type Meter interface {
	Read(ctx context.Context) ([]NodeCounters, error)
}

// NodeCounters are one node's cumulative counters at one moment.
type NodeCounters struct {
	Node  string
	Admin string // where they were read
	// CPUSeconds is the process's user and system CPU time.
	CPUSeconds float64
	// BytesSent and BytesReceived are the bytes of frames its transport
	// wrote and read, every connection counted (clients and peers).
	BytesSent, BytesReceived float64
	// HasCPU and HasBytes say whether the node exported those counters.
	HasCPU, HasBytes bool
}

// Cost is what the measured run cost the cluster's nodes, from their own
// counters read when measuring started and when the run ended, summed over
// the nodes and divided by the requests sent (failed ones included). It
// also holds whatever else the nodes did meanwhile (gossip, anti-entropy),
// which is little next to a loaded run. A figure that could not be
// measured is absent, and Unavailable says why: it is never a zero.
type Cost struct {
	Nodes   []NodeCost   `json:"nodes,omitempty"`
	CPU     *CPUCost     `json:"cpu,omitempty"`
	Traffic *TrafficCost `json:"traffic,omitempty"`
	// HarnessCPU is this process's own CPU time over the same span: what
	// generating the load cost. When the harness shares the machine with
	// the nodes (cairn dev), the two together bound the throughput: a
	// request cannot take less than their sum over the cores.
	HarnessCPU  *CPUCost `json:"harness_cpu,omitempty"`
	Unavailable string   `json:"unavailable,omitempty"`
}

// CPUCost is the nodes' CPU time.
type CPUCost struct {
	Seconds     float64 `json:"seconds"`
	MicrosPerOp float64 `json:"us_per_op"`
}

// TrafficCost is the bytes the nodes' transports wrote and read (data
// connections: the harness's requests and the replicas' messages; not
// gossip).
type TrafficCost struct {
	BytesSent          float64 `json:"bytes_sent"`
	BytesSentPerOp     float64 `json:"bytes_sent_per_op"`
	BytesReceived      float64 `json:"bytes_received"`
	BytesReceivedPerOp float64 `json:"bytes_received_per_op"`
}

// NodeCost is one node's share; a counter it does not export is absent.
type NodeCost struct {
	Node          string   `json:"node"`
	Admin         string   `json:"admin"`
	CPUSeconds    *float64 `json:"cpu_s,omitempty"`
	BytesSent     *float64 `json:"bytes_sent,omitempty"`
	BytesReceived *float64 `json:"bytes_received,omitempty"`
}

// meterTimeout bounds one reading of every node.
const meterTimeout = 10 * time.Second

// costProbe takes the reading at the start of the measured run, in a
// goroutine of its own when that start is after a warmup.
type costProbe struct {
	meter  Meter
	ended  chan struct{} // closed by finish: the run is over
	done   chan struct{} // closed once before and err are set
	before []NodeCounters
	// harness is this process's CPU time when measuring started, if the
	// system told it.
	harness   time.Duration
	harnessOK bool
	err       error
}

// startCostProbe reads meter at time at: now, before returning, if at has
// come; otherwise in a goroutine that finish waits for. A cancelled ctx
// stops the wait.
func startCostProbe(ctx context.Context, meter Meter, at time.Time) *costProbe {
	c := &costProbe{meter: meter, ended: make(chan struct{}), done: make(chan struct{})}
	read := func() {
		defer close(c.done)
		rctx, cancel := context.WithTimeout(ctx, meterTimeout)
		defer cancel()
		c.before, c.err = meter.Read(rctx)
		// After the reading, as the end's is taken before its own: the
		// harness's figure leaves the meter's HTTP calls out.
		c.harness, c.harnessOK = processCPU()
	}
	wait := time.Until(at)
	if wait <= 0 {
		read()
		return c
	}
	go func() {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
			read()
		case <-ctx.Done():
			c.err = errors.New("interrupted before measuring started")
			close(c.done)
		case <-c.ended:
			c.err = errors.New("the run ended before measuring started")
			close(c.done)
		}
	}()
	return c
}

// finish takes the reading at the end and works out the cost of requests.
// It reads even when ctx was cancelled, so an interrupted run still has a
// cost.
func (c *costProbe) finish(ctx context.Context, requests int64) *Cost {
	close(c.ended)
	<-c.done
	if c.err != nil {
		return &Cost{Unavailable: "could not read the nodes' counters when measuring started: " + c.err.Error()}
	}
	harness, harnessOK := processCPU()
	var cost *Cost
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), meterTimeout)
	defer cancel()
	if after, err := c.meter.Read(rctx); err != nil {
		cost = &Cost{Unavailable: "could not read the nodes' counters when the run ended: " + err.Error()}
	} else {
		cost = costOf(c.before, after, requests)
	}
	if c.harnessOK && harnessOK && requests > 0 && harness >= c.harness {
		d := (harness - c.harness).Seconds()
		cost.HarnessCPU = &CPUCost{Seconds: d, MicrosPerOp: d * 1e6 / float64(requests)}
	}
	return cost
}

// processCPU is the user and system CPU time this process has used.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// costOf charges the growth of the counters from before to after to
// requests. A counter that some node lacks, or that went back (the node
// restarted), leaves that figure out, with the reason.
func costOf(before, after []NodeCounters, requests int64) *Cost {
	c := &Cost{}
	var why []string
	prev := map[string]NodeCounters{}
	for _, b := range before {
		prev[b.Node] = b
	}
	var cpu, sent, recv float64
	cpuOK, bytesOK := true, true
	for _, a := range after {
		b, ok := prev[a.Node]
		nc := NodeCost{Node: a.Node, Admin: a.Admin}
		if !ok {
			why = append(why, fmt.Sprintf("%s was not read when measuring started", a.Node))
			cpuOK, bytesOK = false, false
			c.Nodes = append(c.Nodes, nc)
			continue
		}
		delete(prev, a.Node)
		switch {
		case !a.HasCPU || !b.HasCPU:
			why = append(why, a.Node+" exports no process_cpu_seconds_total")
			cpuOK = false
		case a.CPUSeconds < b.CPUSeconds:
			why = append(why, a.Node+"'s CPU time went back: it restarted during the run")
			cpuOK = false
		default:
			d := a.CPUSeconds - b.CPUSeconds
			nc.CPUSeconds, cpu = &d, cpu+d
		}
		switch {
		case !a.HasBytes || !b.HasBytes:
			why = append(why, a.Node+" exports no cairn_transport_bytes_sent_total (a cairn from before it was added?)")
			bytesOK = false
		case a.BytesSent < b.BytesSent || a.BytesReceived < b.BytesReceived:
			why = append(why, a.Node+"'s byte counters went back: it restarted during the run")
			bytesOK = false
		default:
			s, r := a.BytesSent-b.BytesSent, a.BytesReceived-b.BytesReceived
			nc.BytesSent, nc.BytesReceived = &s, &r
			sent, recv = sent+s, recv+r
		}
		c.Nodes = append(c.Nodes, nc)
	}
	for _, name := range slices.Sorted(maps.Keys(prev)) {
		why = append(why, name+" could not be read when the run ended")
		cpuOK, bytesOK = false, false
	}
	if len(after) == 0 {
		why = append(why, "no node was read")
		cpuOK, bytesOK = false, false
	}
	if requests <= 0 {
		why = append(why, "no request was sent")
		cpuOK, bytesOK = false, false
	}
	n := float64(requests)
	if cpuOK {
		c.CPU = &CPUCost{Seconds: cpu, MicrosPerOp: cpu * 1e6 / n}
	}
	if bytesOK {
		c.Traffic = &TrafficCost{BytesSent: sent, BytesSentPerOp: sent / n, BytesReceived: recv, BytesReceivedPerOp: recv / n}
	}
	c.Unavailable = strings.Join(why, "; ")
	return c
}

// summary is the cost in one line for a person.
func (c *Cost) summary() string {
	var parts []string
	if c.CPU != nil {
		parts = append(parts, fmt.Sprintf("%.0f µs of node CPU", c.CPU.MicrosPerOp))
	}
	if c.Traffic != nil {
		parts = append(parts, fmt.Sprintf("%.0f B sent", c.Traffic.BytesSentPerOp))
	}
	harness := ""
	if c.HarnessCPU != nil {
		harness = fmt.Sprintf("; the harness itself: %.0f µs of CPU per request", c.HarnessCPU.MicrosPerOp)
	}
	if len(parts) == 0 {
		return "cost: not measured: " + c.Unavailable + harness
	}
	var totals []string
	if c.CPU != nil {
		totals = append(totals, fmt.Sprintf("%.2f s CPU", c.CPU.Seconds))
	}
	if c.Traffic != nil {
		totals = append(totals, fmt.Sprintf("%s sent, %s received", byteSize(c.Traffic.BytesSent), byteSize(c.Traffic.BytesReceived)))
	}
	nodes := fmt.Sprintf("%d nodes", len(c.Nodes))
	if len(c.Nodes) == 1 {
		nodes = "1 node"
	}
	line := fmt.Sprintf("cost: %s per request (%s: %s)%s", strings.Join(parts, " and "), nodes, strings.Join(totals, ", "), harness)
	if c.Unavailable != "" {
		line += "; the rest not measured: " + c.Unavailable
	}
	return line
}

// byteSize prints a byte count in the unit a person reads at a glance.
func byteSize(b float64) string {
	switch {
	case b >= 1e9:
		return fmt.Sprintf("%.2f GB", b/1e9)
	case b >= 1e6:
		return fmt.Sprintf("%.1f MB", b/1e6)
	case b >= 1e3:
		return fmt.Sprintf("%.1f kB", b/1e3)
	}
	return fmt.Sprintf("%.0f B", b)
}

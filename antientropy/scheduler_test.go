package antientropy

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/cockroachdb/datadriven"
	"github.com/stretchr/testify/require"
)

// TestScheduler runs testdata/scheduler. Times are in seconds.
//
//	scheduler [max=2] [interval=300] [retry=30] [busy-retry=1] [rate=4] [burst=8] [repair-rate=2000] [repair-burst=20000]
//	          [urgent-max=8] [urgent-rate=200] [urgent-burst=200] [urgent-repair-rate=50000] [urgent-repair-burst=100000] [origin=0]
//	assign                       one partition a line: "P: peer peer ..."
//	next t=T [n=1]               Next up to n times; a refusal shows Wake
//	finish P/peer t=T [keys=K] [truncated]
//	fail P/peer t=T
//	busy P/peer t=T
//	touch peer
//	stats
func TestScheduler(t *testing.T) {
	var s *Scheduler
	datadriven.RunTest(t, "testdata/scheduler", func(t *testing.T, d *datadriven.TestData) string {
		if d.Cmd != "scheduler" && s == nil {
			d.Fatalf(t, "no scheduler yet")
		}
		switch d.Cmd {
		case "scheduler":
			cfg := DefaultSchedulerConfig()
			secs := func(name string, dst *int64) {
				var f float64
				if d.MaybeScanArgs(t, name, &f) {
					*dst = seconds(f)
				}
			}
			d.MaybeScanArgs(t, "max", &cfg.MaxConcurrent)
			secs("interval", &cfg.MinInterval)
			secs("retry", &cfg.RetryAfter)
			secs("busy-retry", &cfg.BusyRetryAfter)
			d.MaybeScanArgs(t, "rate", &cfg.ExchangesPerSecond)
			d.MaybeScanArgs(t, "burst", &cfg.ExchangeBurst)
			d.MaybeScanArgs(t, "repair-rate", &cfg.RepairsPerSecond)
			d.MaybeScanArgs(t, "repair-burst", &cfg.RepairBurst)
			d.MaybeScanArgs(t, "urgent-max", &cfg.UrgentMaxConcurrent)
			d.MaybeScanArgs(t, "urgent-rate", &cfg.UrgentExchangesPerSecond)
			d.MaybeScanArgs(t, "urgent-burst", &cfg.UrgentExchangeBurst)
			d.MaybeScanArgs(t, "urgent-repair-rate", &cfg.UrgentRepairsPerSecond)
			d.MaybeScanArgs(t, "urgent-repair-burst", &cfg.UrgentRepairBurst)
			origin := 0
			d.MaybeScanArgs(t, "origin", &origin)
			var err error
			if s, err = NewScheduler(cfg, uint32(origin)); err != nil {
				return err.Error()
			}
			return "ok"

		case "assign":
			var as []Assignment
			for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
				part, peers, ok := strings.Cut(line, ":")
				if !ok {
					d.Fatalf(t, "bad assignment %q", line)
				}
				p, err := strconv.ParseUint(strings.TrimSpace(part), 10, 32)
				if err != nil {
					d.Fatalf(t, "bad partition in %q", line)
				}
				as = append(as, Assignment{Partition: uint32(p), Peers: strings.Fields(peers)})
			}
			if err := s.SetPartitions(as); err != nil {
				return err.Error()
			}
			return "ok"

		case "next":
			now := scanTime(t, d)
			n := 1
			d.MaybeScanArgs(t, "n", &n)
			var out []string
			for range n {
				p, ok := s.Next(now)
				if !ok {
					out = append(out, "none, "+wake(s, now))
					break
				}
				out = append(out, "start "+p.String())
			}
			return strings.Join(out, "\n")

		case "finish", "fail", "busy":
			p := scanPair(t, d)
			now := scanTime(t, d)
			switch d.Cmd {
			case "fail":
				s.Fail(p, now)
			case "busy":
				s.Busy(p, now)
			default:
				var st ExchangeStats
				d.MaybeScanArgs(t, "keys", &st.KeysDiffering)
				st.Truncated = d.HasArg("truncated")
				s.Finish(p, now, st)
			}
			return fmt.Sprintf("running %v", s.Running())

		case "touch":
			if arg, ok := d.Arg("partitions"); ok {
				var parts []uint32
				for _, v := range arg.Vals {
					n, err := strconv.ParseUint(v, 10, 32)
					if err != nil {
						d.Fatalf(t, "partitions: %v", err)
					}
					parts = append(parts, uint32(n))
				}
				s.TouchPartitions(d.CmdArgs[0].Key, parts)
			} else {
				s.Touch(d.CmdArgs[0].Key)
			}
			return fmt.Sprintf("urgent %d", s.Stats().Urgent)

		case "stats":
			st := s.Stats()
			return fmt.Sprintf("partitions=%d pairs=%d running=%d (urgent %d) urgent=%d started=%d completed=%d failed=%d busy=%d truncated=%d keys=%d never=%d oldest=%gs",
				st.Partitions, st.Pairs, st.Running, st.RunningUrgent, st.Urgent, st.Started, st.Completed, st.Failed, st.Busy, st.Truncated,
				st.KeysRepaired, st.NeverExchanged, float64(st.OldestExchange)/1e9)
		}
		d.Fatalf(t, "unknown command %q", d.Cmd)
		return ""
	})
}

func seconds(f float64) int64 { return int64(f * 1e9) }

func scanTime(t *testing.T, d *datadriven.TestData) int64 {
	var f float64
	d.ScanArgs(t, "t", &f)
	return seconds(f)
}

func scanPair(t *testing.T, d *datadriven.TestData) Pair {
	part, peer, ok := strings.Cut(d.CmdArgs[0].Key, "/")
	p, err := strconv.ParseUint(part, 10, 32)
	if !ok || err != nil {
		d.Fatalf(t, "bad pair %q", d.CmdArgs[0].Key)
	}
	return Pair{Partition: uint32(p), Peer: peer}
}

func wake(s *Scheduler, now int64) string {
	at, ok := s.Wake(now)
	if !ok {
		return "wait for an exchange to end"
	}
	return fmt.Sprintf("wake at %gs", float64(at)/1e9)
}

func TestSchedulerConfigValidate(t *testing.T) {
	require.NoError(t, DefaultSchedulerConfig().Validate())
	err := SchedulerConfig{MinInterval: -1, RetryAfter: -1}.Validate()
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	for _, want := range []string{"max concurrent 0", "urgent max concurrent 0", "min interval -1", "retry after -1",
		"exchange rate 0", "exchange burst 0", "repair rate 0", "repair burst 0", "urgent exchange rate 0", "urgent repair burst 0"} {
		require.ErrorContains(t, err, want)
	}
}

// TestSchedulerBadAssignment: a bad assignment is refused and changes
// nothing.
func TestSchedulerBadAssignment(t *testing.T) {
	s, err := NewScheduler(DefaultSchedulerConfig(), 0)
	require.NoError(t, err)
	require.NoError(t, s.SetPartitions([]Assignment{{Partition: 1, Peers: []string{"n2"}}}))
	for _, bad := range [][]Assignment{
		{{Partition: 1, Peers: []string{"n2"}}, {Partition: 1, Peers: []string{"n3"}}},
		{{Partition: 2, Peers: []string{"n2", ""}}},
	} {
		require.ErrorIs(t, s.SetPartitions(bad), cairn.ErrInvalidArgument)
		require.Equal(t, 1, s.Stats().Pairs)
	}
	p, ok := s.Next(0)
	require.True(t, ok)
	require.Equal(t, Pair{1, "n2"}, p)
}

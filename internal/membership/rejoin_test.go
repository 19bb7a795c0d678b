package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, l.Close())
	return l.Addr().String()
}

func TestRejoinTargets(t *testing.T) {
	defer goleak.VerifyNone(t)
	seedAlive, seedDead := closedAddr(t), closedAddr(t)
	gone, removed, behind, current := closedAddr(t), closedAddr(t), closedAddr(t), closedAddr(t)
	c := bareCluster(t)
	cfg := c.config("n1", "127.0.0.1:0", []string{seedAlive, seedDead})
	cfg.RejoinInterval = time.Hour // the test calls rejoinTargets itself
	m, err := Start(context.Background(), cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Shutdown()) }()
	d := &delegate{m}

	member := func(name, gossip string, s Status) Member {
		return Member{Name: name, Addr: "127.0.0.1:1", Gossip: gossip, Status: s, Version: 1}
	}
	d.NotifyMsg(encodeState("test", 64, []Member{
		member("gone", gone, StatusActive),
		member("removed", removed, StatusRemoved),
		member("behind", behind, StatusActive),
		member("current", current, StatusActive),
		member("seed", seedAlive, StatusActive),
	}))
	join := func(name, addr string, ringVersion uint64) {
		host, port, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		p, err := strconv.Atoi(port)
		require.NoError(t, err)
		d.NotifyJoin(&memberlist.Node{Name: name, Addr: net.ParseIP(host), Port: uint16(p),
			Meta: encodeMeta(nodeMeta{Addr: "127.0.0.1:1", RingVersion: ringVersion})})
	}
	v := m.Ring().Version()
	join("seed", seedAlive, v)
	join("current", current, v)
	join("behind", behind, v+1)
	require.Equal(t, []string{seedDead, gone, behind}, m.rejoinTargets(),
		"dead seeds, then members not alive (removed ones aside), then peers advertising another ring")
}

func TestPersistFailures(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := bareCluster(t)
	cfg := c.config("n1", "127.0.0.1:0", nil)
	broken := errors.New("disk on fire")
	cfg.Persist = func([]byte) error { return broken }
	_, err := Start(context.Background(), cfg)
	require.ErrorIs(t, err, broken, "a node that cannot record its own entry must not start")

	fail := make(chan bool, 1)
	fail <- false
	persisted := make(chan []byte, 16)
	cfg.Persist = func(b []byte) error {
		f := <-fail
		fail <- f
		if f {
			return broken
		}
		persisted <- b
		return nil
	}
	m, err := Start(context.Background(), cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Shutdown()) }()
	<-persisted
	(&delegate{m}).NotifyMsg(encodeState("test", 64, []Member{entry("n2", StatusActive, 1)}))
	<-fail
	fail <- true
	err = m.Remove("n2")
	require.ErrorIs(t, err, broken)
	require.Equal(t, []string{"n1"}, m.Ring().Members(), "the removal holds even though persisting it failed")
	<-fail
	fail <- false
	// The notifier retries until the removal is on disk.
	deadline := time.After(convergeTimeout)
	for {
		select {
		case b := <-persisted:
			msg, err := decodeState(b)
			require.NoError(t, err)
			if len(msg.members) == 2 && msg.members[1].Status == StatusRemoved {
				return
			}
		case <-deadline:
			t.Fatal("the removal was never persisted")
		}
	}
}

func TestSampleKeepsSeedsAndBoundsTheRest(t *testing.T) {
	m := &Membership{cfg: Config{Join: []string{"seed:1", "seed:2"}}}
	var others []string
	for i := range 3 * maxJoinsPerRound {
		others = append(others, fmt.Sprintf("member:%d", i))
	}
	got := m.sample(append([]string{"seed:2", "seed:1"}, others...))
	require.Equal(t, []string{"seed:2", "seed:1"}, got[:2])
	require.Len(t, got, 2+maxJoinsPerRound)
	for _, g := range got[2:] {
		require.Contains(t, others, g)
	}
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(got))), len(got), "no target twice")

	few := others[:3]
	require.Equal(t, few, m.sample(slices.Clone(few)), "small rounds join everyone")
}

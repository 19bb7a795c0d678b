package node

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
)

// helloFrom says hello naming node, from the local IP from, and returns
// the handshake's answer.
func helloFrom(t *testing.T, addr, from, node string) wire.Frame {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	hello, err := wire.AppendFrame(append([]byte(nil), wire.Preamble[:]...), 1, wire.TypeHello,
		wire.Hello{Cluster: "cairn", Node: node}, 4<<10)
	require.NoError(t, err)
	_, err = c.Write(hello)
	require.NoError(t, err)
	var pre [5]byte
	_, err = io.ReadFull(c, pre[:])
	require.NoError(t, err)
	payload, err := wire.ReadFrame(c, 4<<10)
	require.NoError(t, err)
	f, err := wire.ParseFrame(payload)
	require.NoError(t, err)
	return f
}

func requireUnauthorized(t *testing.T, f wire.Frame) {
	t.Helper()
	require.Equal(t, wire.TypeError, f.Type)
	var e wire.ErrorResp
	require.NoError(t, wire.Decode(f.Body, &e))
	require.ErrorIs(t, e.Err(), cairn.ErrUnauthorized, e.Message)
}

// TestHelloNamingAMemberMustComeFromItsAddress: until connections carry
// TLS identities, a connection naming a member is taken for it only from
// an address the member advertises. Every node here is on 127.0.0.1, so a
// connection from 127.0.0.2 naming n2 is an impostor, as is one naming a
// node nobody knows.
func TestHelloNamingAMemberMustComeFromItsAddress(t *testing.T) {
	tc := startCluster(t, 2, nil)
	n1 := tc.nodes["n1"]

	requireUnauthorized(t, helloFrom(t, n1.Addr(), "127.0.0.2", "n2"))
	requireUnauthorized(t, helloFrom(t, n1.Addr(), "127.0.0.1", "ghost"))
	require.Equal(t, 2.0, counterValue(t, n1.metrics.refusals.WithLabelValues("peer_unverified")))

	// The real n2 and plain clients are served.
	require.Equal(t, wire.TypeHelloOK, helloFrom(t, n1.Addr(), "127.0.0.1", "n2").Type)
	require.Equal(t, wire.TypeHelloOK, helloFrom(t, n1.Addr(), "127.0.0.2", "").Type)
	_, err := tc.client("n2").Put(t.Context(), "b", []byte("k"), []byte("v"))
	require.NoError(t, err)
}

func TestRefusalLogLetsOneLinePerReasonThroughPerPeriod(t *testing.T) {
	var l refusalLog
	at := time.Unix(1000, 0)
	n, ok := l.allow("a", at)
	require.True(t, ok)
	require.Zero(t, n)
	for range 5 {
		_, ok = l.allow("a", at.Add(time.Second))
		require.False(t, ok)
	}
	_, ok = l.allow("b", at.Add(time.Second))
	require.True(t, ok, "each reason has its own allowance")
	n, ok = l.allow("a", at.Add(refusalLogEvery))
	require.True(t, ok)
	require.Equal(t, 5, n, "the next line says how many were not logged")
}

func TestConfigRefusesLimitsThatCannotWork(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxPeerConns = 0
	cfg.MaxConnsPerSource = 0
	cfg.HandshakeTimeout = 0
	cfg.MaxConnBytes = 1024
	cfg.MaxInFlightBytes = 1 << 10
	err := cfg.Validate()
	for _, want := range []string{"max_peer_conns", "max_conns_per_source", "handshake_timeout", "max_conn_bytes", "max_inflight_bytes"} {
		require.ErrorContains(t, err, want)
	}
	require.NoError(t, DefaultConfig().Validate())
}

func TestHostCacheResolvesNamesAndKeepsTheAnswer(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newHostCache(func() time.Time { return now })
	require.True(t, net.ParseIP("10.1.2.3").Equal(c.lookup(t.Context(), "10.1.2.3")[0]), "an IP is itself")
	ips := c.lookup(t.Context(), "localhost")
	require.True(t, slices.ContainsFunc(ips, net.IPv4(127, 0, 0, 1).Equal), "%v", ips)
	c.mu.Lock()
	c.m["localhost"] = hostEntry{ips: []net.IP{net.IPv4(10, 9, 9, 9)}, until: now.Add(time.Second)}
	c.mu.Unlock()
	require.Equal(t, []net.IP{net.IPv4(10, 9, 9, 9)}, c.lookup(t.Context(), "localhost"), "kept until it expires")
	now = now.Add(2 * time.Second)
	require.True(t, slices.ContainsFunc(c.lookup(t.Context(), "localhost"), net.IPv4(127, 0, 0, 1).Equal), "then resolved again")
}

package node

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/cairnkv/cairn/internal/certs"
	"github.com/cairnkv/cairn/internal/transport"
)

// verifyPeer is the transport's check of a hello that names a node. With
// TLS, the name must be the one the connection's certificate carries (the
// CA vouched for it), and a member's. Without TLS, the name is believed
// only from an address the member advertises: its data host or its gossip
// host. A node that just joined may dial before gossip has told this one
// about it, so an unknown name or an address that does not match is looked
// up again until ctx ends (shortly before the handshake's deadline). A
// refusal costs nothing a write relies on: the caller sees a replica it
// could not reach, which a coordinator fails over from, and hints wait for
// a later delivery.
func (n *Node) verifyPeer(ctx context.Context, name string, remote net.Addr, cert *x509.Certificate) error {
	check := func() error { return n.peerAt(ctx, name, remote) }
	if n.tls != nil {
		id, ok := certs.IdentityOf(cert)
		if want := (certs.Identity{Kind: certs.KindNode, Name: name}); !ok || id != want {
			return fmt.Errorf("the connection's certificate is not node %s's (it is for %v)", name, id)
		}
		check = func() error {
			if _, ok := n.members.Member(name); !ok {
				return fmt.Errorf("no member named %q is known to %s", name, n.cfg.Name)
			}
			return nil
		}
	}
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(peerRecheck):
		}
	}
}

// peerRecheck is how often verifyPeer looks again at membership.
const peerRecheck = 50 * time.Millisecond

func (n *Node) peerAt(ctx context.Context, name string, remote net.Addr) error {
	ta, ok := remote.(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("connection from %v, not TCP", remote)
	}
	ip := ta.IP
	m, ok := n.members.Member(name)
	if !ok {
		return fmt.Errorf("no member named %q is known to %s", name, n.cfg.Name)
	}
	for _, addr := range []string{m.Addr, m.Gossip} {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			continue
		}
		if slices.ContainsFunc(n.peerAddrs.lookup(ctx, host), ip.Equal) {
			return nil
		}
	}
	return fmt.Errorf("member %s advertises %s, and the connection comes from %s", name, m.Addr, ip)
}

// hostCache resolves member hosts (IP literals, or names such as a docker
// service's) for verifyPeer. Only members' hosts are looked up, so the
// cache stays as small as the cluster, and an answer is kept for a while:
// a handshake waits for the resolver at most once per host per period.
type hostCache struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]hostEntry
}

type hostEntry struct {
	ips   []net.IP
	until time.Time
}

const (
	hostCacheFor     = 30 * time.Second
	hostLookupBudget = time.Second
)

func newHostCache(now func() time.Time) *hostCache {
	return &hostCache{now: now, m: map[string]hostEntry{}}
}

func (c *hostCache) lookup(ctx context.Context, host string) []net.IP {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}
	}
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[host]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.ips
	}
	ctx, cancel := context.WithTimeout(ctx, hostLookupBudget)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil && ok {
		return e.ips // keep the last answer while the resolver fails
	}
	ips := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		ips = append(ips, a.IP)
	}
	c.mu.Lock()
	c.m[host] = hostEntry{ips: ips, until: now.Add(hostCacheFor)}
	c.mu.Unlock()
	return ips
}

// refusalReason names a transport event that refused work to protect the
// node, for the refusals metric and log; "" for any other event.
func refusalReason(ev transport.Event) string {
	switch ev.Kind {
	case transport.EventRejectedLimit:
		return "client_conn_limit"
	case transport.EventRejectedPeerLimit:
		return "peer_conn_limit"
	case transport.EventRejectedSource:
		return "source_conn_limit"
	case transport.EventHandshakeEvicted:
		return "handshake_evicted"
	case transport.EventIdleEvicted:
		return "idle_client_evicted"
	case transport.EventPeerRefused:
		return "peer_unverified"
	case transport.EventTLSFailed:
		return "tls_handshake"
	case transport.EventOverloaded:
		if ev.Node != "" {
			return "peer_inflight_bytes"
		}
		return "client_inflight_bytes"
	}
	return ""
}

// refusalLog lets one line per reason through per period: a flood of
// refusals is itself what the node protects against, and logging each
// would be a second flood.
type refusalLog struct {
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

const refusalLogEvery = 10 * time.Second

// allow reports whether a refusal for reason may be logged now, and how
// many refusals for it were not logged since the last line.
func (l *refusalLog) allow(reason string, now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.suppressed = map[string]time.Time{}, map[string]int{}
	}
	if last, ok := l.last[reason]; ok && now.Sub(last) < refusalLogEvery {
		l.suppressed[reason]++
		return 0, false
	}
	n := l.suppressed[reason]
	l.last[reason], l.suppressed[reason] = now, 0
	return n, true
}

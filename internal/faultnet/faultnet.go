package faultnet

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Net cuts links between endpoints: packets are dropped and streams refused,
// in both directions, as a network partition does. Endpoints are whatever
// the caller names them; Alias maps another spelling (an address) to one.
type Net struct {
	mu      sync.Mutex
	aliases map[string]string
	cut     map[[2]string]bool
}

// Alias makes addr stand for the endpoint name.
func (n *Net) Alias(addr, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.aliases == nil {
		n.aliases = map[string]string{}
	}
	n.aliases[addr] = name
}

// Split cuts every link between a and b, replacing any earlier cut.
func (n *Net) Split(a, b []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[[2]string]bool{}
	for _, x := range a {
		for _, y := range b {
			n.cut[[2]string{x, y}] = true
			n.cut[[2]string{y, x}] = true
		}
	}
}

// Heal restores every link.
func (n *Net) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = nil
}

// Blocked reports whether from cannot reach to.
func (n *Net) Blocked(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if name, ok := n.aliases[from]; ok {
		from = name
	}
	if name, ok := n.aliases[to]; ok {
		to = name
	}
	return n.cut[[2]string{from, to}]
}

// Transport is memberlist's NetTransport with a Net in front of everything
// it sends. Both ends of every link filter, so filtering what a node sends
// is enough.
type Transport struct {
	*memberlist.NetTransport
	Net  *Net
	Self string
}

// WriteTo drops packets to a cut endpoint.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress drops packets to a cut endpoint.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.Net.Blocked(t.Self, a.Addr) {
		return time.Now(), nil
	}
	return t.NetTransport.WriteToAddress(b, a)
}

// DialTimeout refuses streams to a cut endpoint.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout refuses streams to a cut endpoint.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.Net.Blocked(t.Self, a.Addr) {
		return nil, fmt.Errorf("fault injection: %s -> %s refused", t.Self, a.Addr)
	}
	return t.NetTransport.DialAddressTimeout(a, timeout)
}

// FastTimings shortens memberlist's timings for loopback tests: a dead node
// is noticed in about a second.
func FastTimings(c *memberlist.Config) {
	c.TCPTimeout = time.Second
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.IndirectChecks = 1
	c.SuspicionMult = 2
	c.SuspicionMaxTimeoutMult = 2
	c.AwarenessMaxMultiplier = 2
	c.GossipInterval = 50 * time.Millisecond
	c.GossipToTheDeadTime = 2 * time.Second
	c.PushPullInterval = 2 * time.Second
}

package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairnkv/cairn/internal/certs"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/store"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/node/aae"
	"github.com/cairnkv/cairn/node/coord"
	"github.com/cairnkv/cairn/node/handoff"
	"github.com/cairnkv/cairn/node/transfer"
	"github.com/cairnkv/cairn/ring"
	"go.uber.org/zap"
)

// Node is a running cairn node. Start builds one; Shutdown stops it.
type Node struct {
	cfg     Config
	log     *zap.Logger
	store   *store.Store
	metrics *metrics
	now     func() time.Time

	server      *transport.Server
	listener    net.Listener
	admin       *http.Server
	adminLn     net.Listener
	peers       *transport.Pool
	members     *membership.Membership
	userCache   userCache
	bucketCache bucketCache
	handoff     *handoff.Handoff
	aae         *aae.AAE
	transfer    *transfer.Transfer
	reaper      *reaper
	// lastChange is the next ring version of the last membership change
	// logged.
	lastChange atomic.Uint64
	// left is closed once this node left the ring (cairn leave).
	left     chan struct{}
	leftOnce sync.Once
	// membersSet publishes members to membership's own goroutine.
	membersSet atomic.Bool
	aliveMu    sync.Mutex
	wasAlive   map[string]bool // peers alive at the last membership change
	live       *liveness
	dispatch   map[wire.Type]handler
	replicas   *replicaSet
	coord      *coord.Coordinator
	lastRing   atomic.Pointer[ring.Ring]
	maxFrame   int // the frame limit of the node's connections
	started    time.Time
	peerAddrs  *hostCache     // resolves members' hosts for verifyPeer
	tls        *certs.Source  // the data port's TLS material; nil without TLS
	keyring    *gossipKeyring // gossip encryption; nil when off
	reloadTLS  chan os.Signal
	refusals   refusalLog

	// lifetime ends when Shutdown begins; background work (replica calls
	// that outlive a client's answer, read repair) derives from it.
	lifetime context.Context
	stop     context.CancelFunc
	bg       sync.WaitGroup

	ready    atomic.Bool
	stopOnce sync.Once
	wg       sync.WaitGroup // the server goroutines Start launched
	serveErr chan error
}

// Start opens the node's storage, binds its ports and begins serving. It
// returns once the node accepts connections; the caller owns the node and
// must call Shutdown.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	n := &Node{cfg: cfg, log: log, now: time.Now, serveErr: make(chan error, 2), left: make(chan struct{})}
	n.started = n.now()
	n.lifetime, n.stop = context.WithCancel(context.Background())
	n.metrics = newMetrics(n)
	if cfg.CertsDir != "" {
		// Before anything is opened: a node that cannot speak TLS must
		// not start, or it would start without it.
		src, err := certs.LoadNode(cfg.CertsDir, cfg.Name)
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		n.tls, n.reloadTLS = src, make(chan os.Signal, 1)
	}
	if cfg.GossipKeyFile != "" {
		kr, err := loadGossipKeyring(cfg.GossipKeyFile)
		if err != nil {
			return nil, err
		}
		n.keyring = kr
	}

	sopts := store.DefaultOptions(cfg.DataDir, cfg.Name)
	sopts.NoSyncWrites = cfg.NoSyncWrites
	sopts.MaxHintBytesPerOwner = cfg.MaxHintBytesPerOwner
	sopts.MaxHintBytes = cfg.MaxHintBytes
	trees := n.newTrees(&sopts)
	st, err := store.Open(sopts)
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
	}
	n.store = st
	if err := errors.Join(n.startAAE(trees), n.startHandoff(), n.startTransfer()); err != nil {
		n.closeStore()
		return nil, err
	}

	var lc net.ListenConfig
	n.listener, err = lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		n.closeStore()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if cfg.Admin != "" {
		n.adminLn, err = lc.Listen(ctx, "tcp", cfg.Admin)
		if err != nil {
			_ = n.listener.Close()
			n.closeStore()
			return nil, fmt.Errorf("admin listen on %s: %w", cfg.Admin, err)
		}
	}

	tcfg := transport.DefaultConfig()
	tcfg.Cluster = cfg.Cluster
	tcfg.Node = cfg.Name
	// A replica message carries a whole object: every sibling's value.
	tcfg.MaxFrame = cfg.maxFrame()
	n.maxFrame = tcfg.MaxFrame
	tcfg.MaxConns = cfg.MaxConns
	tcfg.MaxPeerConns = cfg.MaxPeerConns
	tcfg.MaxConnsPerSource = cfg.MaxConnsPerSource
	tcfg.HandshakeTimeout = cfg.HandshakeTimeout
	tcfg.IdleTimeout = cfg.IdleTimeout
	tcfg.MaxConnBytes = cfg.MaxConnBytes
	// A peer connection carries the replica calls of many requests.
	tcfg.MaxPeerConnBytes = 4 * cfg.MaxConnBytes
	tcfg.MaxInFlightBytes = cfg.MaxInFlightBytes
	tcfg.MaxPeerInFlightBytes = cfg.MaxPeerInFlightBytes
	if n.tls != nil {
		tcfg.ServerTLS = n.tls.ServerConfig()
		if cfg.TokenOnlyClients {
			tcfg.ServerTLS = n.tls.ServerConfigCertOptional()
		}
		tcfg.ClientTLS = func(addr string) (*tls.Config, error) { return n.tls.ClientConfigFor(addr, n.memberAt(addr)) }
		tcfg.VerifyPeer = n.verifyPeer
		tcfg.Authenticate = n.authenticate
	} else if cfg.VerifyPeerAddress {
		n.peerAddrs = newHostCache(n.now)
		tcfg.VerifyPeer = n.verifyPeer
	}
	tcfg.OnEvent = n.onTransportEvent
	n.dispatch = n.handlers()
	n.server = transport.NewServer(tcfg, n)
	n.peers = transport.NewPool(tcfg)

	n.live = newLiveness(cfg.Name, func(node string) bool { return n.members.Alive(node) }, n.now)
	if err := n.startMembership(ctx); err != nil {
		n.abortStart()
		return nil, err
	}
	n.replicas = &replicaSet{self: cfg.Name, store: n.store, peers: peerCaller{n: n},
		noSync: cfg.NoSyncWrites, now: n.now, clock: newHLC(cfg.wallClock), mode: n.bucketMode,
		hintStored: n.handoff.HintStored, minted: n.checkSiblings,
		limits:      writeLimits{siblings: cfg.SiblingLimit, bytes: cfg.objectSizeLimit()},
		maxFrame:    tcfg.MaxFrame,
		refused:     func(reason string) { n.metrics.refused.WithLabelValues(reason).Inc() },
		hintRefused: n.hintRefused}
	n.replicas.batch = newReplicaBatcher(n.replicas.peers.Call, tcfg.MaxFrame)
	ccfg := coord.DefaultConfig(cfg.Name)
	ccfg.SyncWrites = !cfg.NoSyncWrites
	ccfg.ReadRepair = cfg.ReadRepair
	ccfg.ReadAll = cfg.ReadAll
	ccfg.RepairTimeout = cfg.RequestTimeout
	if n.coord, err = coord.New(ccfg, n.replicas, n.live, coordObserver{n.metrics, n.log}); err != nil {
		n.abortStart()
		return nil, err
	}
	n.onMembershipChange()
	n.reaper = newReaper(n, cfg.Reap)
	if err := n.checkWitness(ctx); err != nil {
		n.coord.Close()
		n.abortStart()
		return nil, err
	}
	n.background(func() { n.handoff.Run(n.lifetime) })
	n.background(func() { n.reaper.run(n.lifetime) })
	n.background(func() { n.aae.Run(n.lifetime) })
	if n.tls != nil {
		n.background(func() { n.tls.Watch(n.lifetime, tlsReloadInterval, n.reloadTLS, n.tlsReloaded) })
	}
	n.background(func() { n.transfer.Run(n.lifetime) })

	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.server.Serve(n.listener); err != nil {
			n.serveErr <- fmt.Errorf("data server: %w", err)
		}
	}()
	if n.adminLn != nil {
		n.admin = n.newAdminServer()
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			ln := n.adminLn
			if n.tls != nil {
				ln = newSniffListener(ln, n.tls.AdminServerConfig())
			}
			if err := n.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.serveErr <- fmt.Errorf("admin server: %w", err)
			}
		}()
	}
	n.ready.Store(true)
	log.Info("node started",
		zap.String("name", cfg.Name), zap.String("listen", n.Addr()),
		zap.String("admin", n.AdminAddr()), zap.String("data", cfg.DataDir))
	return n, nil
}

// tlsReloadInterval is how often a node looks whether its certificate
// files changed.
const tlsReloadInterval = 5 * time.Second

// ReloadTLS makes the node read its certificate files again now (the
// server does it on SIGHUP); a node without TLS ignores it.
func (n *Node) ReloadTLS() {
	if n.reloadTLS == nil {
		return
	}
	select {
	case n.reloadTLS <- syscall.SIGHUP:
	default:
	}
}

func (n *Node) tlsReloaded(changed bool, err error) {
	if err != nil {
		n.metrics.tlsReloads.WithLabelValues("failed").Inc()
		n.log.Error("TLS material not reloaded: the node keeps using the previous certificate", zap.String("dir", n.cfg.CertsDir), zap.Error(err))
		return
	}
	if changed {
		n.metrics.tlsReloads.WithLabelValues("ok").Inc()
		n.log.Info("TLS material reloaded: new connections use it", zap.String("dir", n.cfg.CertsDir),
			zap.Time("certificate_expires", n.tls.NotAfter()))
	}
}

// Addr is the data address the node listens on.
func (n *Node) Addr() string { return n.listener.Addr().String() }

// AdminAddr is the admin HTTP address, or "" when disabled.
func (n *Node) AdminAddr() string {
	if n.adminLn == nil {
		return ""
	}
	return n.adminLn.Addr().String()
}

// GossipAddr is the gossip address the node is bound to.
func (n *Node) GossipAddr() string { return n.members.GossipAddr() }

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Left is closed once the node left the ring (an operator's leave, its
// partitions moved to the other members): it owns nothing, and the daemon
// exits.
func (n *Node) Left() <-chan struct{} { return n.left }

// Failed delivers the error of a server goroutine that stopped on its own;
// the daemon exits on it.
func (n *Node) Failed() <-chan error { return n.serveErr }

// Shutdown stops accepting work, lets requests in flight finish until ctx is
// done, and closes storage. It is safe to call more than once.
func (n *Node) Shutdown(ctx context.Context) error {
	var errs []error
	n.stopOnce.Do(func() {
		n.ready.Store(false)
		n.log.Info("node stopping", zap.String("name", n.cfg.Name))
		var phase atomic.Pointer[string]
		step := func(name string) { phase.Store(&name) }
		step("data server")
		defer n.watchShutdown(ctx, &phase)()
		if err := n.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("data server: %w", err))
		}
		step("background work")
		n.stop()
		n.coord.Close()
		n.replicas.batch.close()
		n.bg.Wait()
		step("membership")
		if err := n.members.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("membership: %w", err))
		}
		step("peer connections")
		if err := n.peers.Close(); err != nil {
			errs = append(errs, fmt.Errorf("peer connections: %w", err))
		}
		step("admin server")
		if n.admin != nil {
			if err := n.admin.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("admin server: %w", err))
			}
		}
		n.wg.Wait()
		step("store")
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: %w", err))
		}
		n.log.Info("node stopped", zap.String("name", n.cfg.Name))
	})
	return errors.Join(errs...)
}

// shutdownGrace is how long a shutdown may outlive its context (requests
// cut off, then the rest closing) before it counts as stuck.
const shutdownGrace = 2 * time.Second

// watchShutdown logs, when a shutdown is still running shutdownGrace after
// its context ended, the phase it waits in and every goroutine's stack: a
// stop that hangs is then diagnosed from the log of the process that had
// to be killed. The returned function ends the watch.
func (n *Node) watchShutdown(ctx context.Context, phase *atomic.Pointer[string]) func() {
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		grace := time.NewTimer(shutdownGrace)
		defer grace.Stop()
		select {
		case <-done:
		case <-grace.C:
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			n.log.Error("shutdown is taking longer than allowed",
				zap.String("waiting_for", *phase.Load()), zap.ByteString("goroutines", buf))
		}
	}()
	return func() {
		close(done)
		<-watched
	}
}

// background runs fn on a goroutine that Shutdown waits for.
func (n *Node) background(fn func()) {
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		fn()
	}()
}

// abortStart undoes a start that failed once the ports were bound: what
// Start opened until then, membership included if it began.
func (n *Node) abortStart() {
	if n.members != nil {
		_ = n.members.Shutdown()
	}
	_ = n.listener.Close()
	if n.adminLn != nil {
		_ = n.adminLn.Close()
	}
	_ = n.peers.Close()
	n.closeStore()
}

func (n *Node) closeStore() {
	if err := n.store.Close(); err != nil {
		n.log.Warn("closing store after failed start", zap.Error(err))
	}
}

func (n *Node) onTransportEvent(ev transport.Event) {
	n.metrics.transportEvent(ev)
	reason := refusalReason(ev)
	if reason == "" {
		return
	}
	n.metrics.refusals.WithLabelValues(reason).Inc()
	if suppressed, ok := n.refusals.allow(reason, n.now()); ok {
		n.log.Warn("refused to protect the node", zap.String("reason", reason),
			zap.String("remote", ev.Remote), zap.String("peer", ev.Node), zap.Error(ev.Err),
			zap.Int("same_refusals_not_logged", suppressed))
	}
}

// memberAt names the member whose data address is addr, so that a
// connection to it checks that the certificate names that member; "" when
// no member or more than one (a seed dialled before gossip named it)
// advertises addr: then any node certificate of the CA is taken, and the
// hello names the node.
func (n *Node) memberAt(addr string) string {
	if n.members == nil {
		return ""
	}
	name := ""
	for _, m := range n.members.Members() {
		if m.Addr != addr || m.Status == membership.StatusRemoved {
			continue
		}
		if name != "" {
			return ""
		}
		name = m.Name
	}
	return name
}

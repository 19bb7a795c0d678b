package membership

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/cairnkv/cairn/ring"
	"github.com/hashicorp/memberlist"
)

// Config describes one node's place in the cluster. Build it from
// DefaultConfig and set at least Name, BindAddr and DataAddr.
type Config struct {
	// Name identifies the node in memberlist and in the ring. It must stay
	// the same across restarts: the ring state says which partitions a name
	// owns, so a node that comes back under another name is a new member.
	Name string

	// Cluster becomes memberlist's Label, so gossip of different clusters
	// never mixes, and is written into every encoded ring state, which is
	// refused when it names another cluster. Default "cairn".
	Cluster string

	// BindAddr is the gossip host:port, TCP and UDP. Port 0 picks a free port;
	// GossipAddr reports the one in use. With host 0.0.0.0 memberlist
	// advertises a private address of the machine instead.
	BindAddr string

	// DataAddr is this node's data (request) address, carried in the ring
	// state and in memberlist's node meta. An unspecified host (0.0.0.0,
	// ::) is replaced by the address memberlist advertises for gossip, so
	// peers get an address they can dial.
	DataAddr string

	// Advertise is the IP address gossiped to peers instead of the bind
	// address (for a node behind NAT, or bound to 0.0.0.0 with several
	// interfaces). Empty: memberlist's choice (the bind address, or a
	// private IP of the machine when bound to 0.0.0.0).
	Advertise string

	// Join lists gossip addresses of seeds. They are joined on start and
	// again every RejoinInterval while they are not alive members.
	Join []string

	// Partitions is the ring's Q, fixed at cluster creation. Ring state
	// encoded for another Q is refused: nodes that disagree on Q place keys
	// differently. Default ring.DefaultPartitions.
	Partitions int

	// State is the ring state an earlier run handed to Persist; nil on first
	// start. With it the node comes back with the same identity and view.
	State []byte

	// Persist receives the encoded ring state whenever it changed. It is
	// called from Start and Remove before they return (their errors carry its
	// error), and otherwise from a goroutine Membership owns, never from a
	// memberlist callback and never while Membership holds a lock. A failed
	// call is retried. Nil: nothing is persisted.
	Persist func(state []byte) error

	// OnChange is called after the ring state or the liveness of a member
	// changed. Calls are coalesced (one call may stand for many changes) and
	// made one at a time from a goroutine Membership owns, never while it
	// holds a lock, so OnChange may call back into Membership. It may run
	// before Start returns.
	OnChange func()

	// LogOutput receives memberlist's log and this package's, one line per
	// event. Nil discards them.
	LogOutput io.Writer

	// Keyring, when set, encrypts and authenticates gossip (AES-GCM with
	// its primary key; any of its keys decrypts): a node without one of
	// the keys can neither join nor read the cluster's gossip. Nil: plain
	// gossip. The caller may change the keys while the node runs.
	Keyring *memberlist.Keyring

	// Memberlist, when set, adjusts memberlist's configuration (built from
	// memberlist.DefaultLANConfig) before memberlist starts; tests shorten
	// timings and swap the Transport through it. Name, Label, Delegate and
	// Events belong to Membership and are overwritten afterwards.
	Memberlist func(*memberlist.Config)

	// RejoinInterval is how often the node joins the seeds and the ring
	// members it does not see alive. memberlist forgets dead nodes and never
	// contacts them again, so without this two sides of a long partition
	// would stay apart forever. Zero means the default, 10s.
	RejoinInterval time.Duration

	// LeaveTimeout bounds how long Shutdown waits for memberlist to announce
	// the leave, so peers see the node gone at once rather than after their
	// failure detector fires. Zero means the default, 500ms; negative skips
	// the announcement, as a crash would.
	LeaveTimeout time.Duration

	// Joining makes a node that is not yet in the ring state join as
	// joining rather than active: it takes its share of partitions only
	// after it has received their data (see Placement). A node already in
	// the state keeps the status it has there. False suits the first node
	// and the nodes of a cluster created together, which hold no data.
	Joining bool

	// Replaces, with Joining, makes the new node take the place of that
	// member in its one change: it receives exactly what the member owned
	// and the member owns nothing once the change completes (see
	// Membership.Replace). Ignored for a node already in the state.
	Replaces string

	// Now is the clock of cluster metadata versions (SetMeta, DeleteMeta).
	// Nil means time.Now.
	Now func() time.Time

	// Replicas is the replication factor N that decides which partitions
	// move in a change: a partition's owners are the first min(N, S) of its
	// preference list. Zero means 3.
	Replicas int
}

const (
	// DefaultCluster is the cluster name when none is configured.
	DefaultCluster = "cairn"
	// DefaultRejoinInterval is the default Config.RejoinInterval.
	DefaultRejoinInterval = 10 * time.Second
	// DefaultLeaveTimeout is the default Config.LeaveTimeout.
	DefaultLeaveTimeout = 500 * time.Millisecond
)

// DefaultConfig returns the defaults; Name, BindAddr and DataAddr still need
// setting.
func DefaultConfig() Config {
	return Config{
		Cluster:        DefaultCluster,
		Partitions:     ring.DefaultPartitions,
		RejoinInterval: DefaultRejoinInterval,
		LeaveTimeout:   DefaultLeaveTimeout,
	}
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := checkName(c.Name); err != nil {
		bad("name: %v", err)
	}
	if c.Cluster == "" || len(c.Cluster) > memberlist.LabelMaxSize {
		bad("cluster %q: must be 1 to %d bytes", c.Cluster, memberlist.LabelMaxSize)
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		bad("bind address %q: want host:port", c.BindAddr)
	}
	if err := checkAddr(c.DataAddr); err != nil {
		bad("data address: %v", err)
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			bad("join %q: want host:port", j)
		}
	}
	if _, err := ring.New(c.Partitions, nil); err != nil {
		bad("%v", err)
	}
	if c.RejoinInterval < 0 {
		bad("rejoin interval %v: must not be negative", c.RejoinInterval)
	}
	return errors.Join(errs...)
}

func (c Config) rejoinInterval() time.Duration {
	if c.RejoinInterval == 0 {
		return DefaultRejoinInterval
	}
	return c.RejoinInterval
}

func (c Config) replicas() int {
	if c.Replicas <= 0 {
		return 3
	}
	return c.Replicas
}

func (c Config) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

func (c Config) leaveTimeout() time.Duration {
	if c.LeaveTimeout == 0 {
		return DefaultLeaveTimeout
	}
	return c.LeaveTimeout
}

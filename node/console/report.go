package console

// NodeReport is one node's account of itself (GET /api/v1/node): what the
// console of any node needs from it to draw the cluster.
type NodeReport struct {
	Node    string `json:"node"`
	Addr    string `json:"addr"`
	Admin   string `json:"admin"`
	Cluster string `json:"cluster"`
	// Build is the binary's version: module version, VCS revision when the
	// build recorded one, and Go version.
	Build       string `json:"build"`
	UptimeMs    int64  `json:"uptime_ms"`
	RingVersion uint64 `json:"ring_version"`
	DiskBytes   int64  `json:"disk_bytes"`
	// Sees is every member's liveness as this node sees it.
	Sees  map[string]bool `json:"sees"`
	Hints []HintQueue     `json:"hints"`
	AAE   AAEReport       `json:"aae"`
	// Transfers is the membership change in flight as this node sees it,
	// and the partition streams it sends.
	Transfers TransferReport `json:"transfers"`
	// LatencyBounds are the upper bounds (seconds) of History's latency
	// buckets; History is the last few minutes, oldest first.
	LatencyBounds []float64 `json:"latency_bounds"`
	History       []Point   `json:"history"`
}

// HintQueue is the hints a node keeps for one owner. OldestMs is the age of
// the queue's backlog: how long hints for the owner have been waiting.
type HintQueue struct {
	Owner      string `json:"owner"`
	Pending    int    `json:"pending"`
	Delivered  int    `json:"delivered"`
	Bytes      int64  `json:"bytes"`
	OldestMs   int64  `json:"oldest_ms"`
	Delivering bool   `json:"delivering"`
	Failures   int    `json:"failures"`
}

// AAEReport is a node's anti-entropy. Grid holds one byte per partition:
// '.' not replicated here, 'n' never exchanged, 's' in sync, 'd' diverged
// (the last exchange repaired keys), 'r' repairing (an exchange holds the
// partition now).
type AAEReport struct {
	Enabled        bool   `json:"enabled"`
	Partitions     int    `json:"partitions"`
	InSync         int    `json:"in_sync"`
	NeverExchanged int    `json:"never_exchanged"`
	Running        int    `json:"running"`
	Exchanges      uint64 `json:"exchanges"`
	Failures       uint64 `json:"failures"`
	KeysRepaired   uint64 `json:"keys_repaired"`
	Grid           string `json:"grid"`
}

// Member is a ring member as the serving node sees it.
type Member struct {
	Name   string `json:"name"`
	Addr   string `json:"addr"`
	Status string `json:"status"`
	Alive  bool   `json:"alive"`
}

// Ring is the ring as the serving node sees it.
type Ring struct {
	Partitions int            `json:"partitions"`
	N          int            `json:"n"`
	Version    uint64         `json:"version"`
	Owned      map[string]int `json:"owned"`
}

// ClusterReport is the whole cluster as one node gathers it (GET
// /api/v1/cluster).
type ClusterReport struct {
	// Via is the node that gathered the report; At is when, Unix ms.
	Via     string `json:"via"`
	At      int64  `json:"at"`
	Cluster string `json:"cluster"`
	Ring    Ring   `json:"ring"`
	// Members are the ring's members, each with whether it answered.
	Members []MemberReport `json:"members"`
	// Unanswered names the members that did not answer, and why.
	Unanswered map[string]string `json:"unanswered"`
	Series     Series            `json:"series"`
	Hints      HintsReport       `json:"hints"`
	AAE        ClusterAAE        `json:"aae"`
	Transfers  TransferReport    `json:"transfers"`
}

// TransferReport is a membership change: the members before it and after
// it, how many partitions already flipped to their next owners and how
// many still move, and the partition streams. In a ClusterReport it is the
// serving node's view of the change with every answering node's streams.
type TransferReport struct {
	Changing bool             `json:"changing"`
	Members  []string         `json:"members"`
	Next     []string         `json:"next"`
	Flipped  int              `json:"flipped"`
	Moving   int              `json:"moving"`
	Streams  []TransferStream `json:"streams"`
}

// TransferStream is one partition streamed from one owner to a node that
// is to own it. State is waiting, streaming, done or failed; EtaMs is -1
// when unknown.
type TransferStream struct {
	Partition   uint32  `json:"partition"`
	From        string  `json:"from"`
	To          string  `json:"to"`
	State       string  `json:"state"`
	Keys        int64   `json:"keys"`
	Bytes       int64   `json:"bytes"`
	TotalKeys   int64   `json:"total_keys"`
	TotalBytes  int64   `json:"total_bytes"`
	KeysPerSec  float64 `json:"keys_per_sec"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	EtaMs       int64   `json:"eta_ms"`
	Error       string  `json:"error,omitempty"`
}

// MemberReport is one member in a ClusterReport: the serving node's view
// of it, and what it said of itself when it answered.
type MemberReport struct {
	Member
	Owned    int             `json:"owned"`
	Answered bool            `json:"answered"`
	Error    string          `json:"error,omitempty"`
	Admin    string          `json:"admin,omitempty"`
	UptimeMs int64           `json:"uptime_ms,omitempty"`
	Build    string          `json:"build,omitempty"`
	Sees     map[string]bool `json:"sees,omitempty"`
}

// HintsReport is the hints every answering node keeps.
type HintsReport struct {
	// Pending is the total over every queue.
	Pending int `json:"pending"`
	// Owners sums the queues per owner (the node the hints wait for).
	Owners []OwnerHints `json:"owners"`
	// Queues are the queues themselves, per holder and owner.
	Queues []HeldQueue `json:"queues"`
}

// OwnerHints is every answering node's hints for one owner; OldestMs is the
// oldest backlog among them.
type OwnerHints struct {
	Owner    string `json:"owner"`
	Pending  int    `json:"pending"`
	Bytes    int64  `json:"bytes"`
	OldestMs int64  `json:"oldest_ms"`
}

// HeldQueue is one holder's queue for one owner.
type HeldQueue struct {
	Holder string `json:"holder"`
	HintQueue
}

// ClusterAAE is anti-entropy across the answering nodes. Grid combines the
// nodes' grids partition by partition, the most pressing state winning:
// repairing, then diverged, then in sync, then never exchanged (by any
// answering node). Counts counts the grid's states by name.
type ClusterAAE struct {
	Enabled bool           `json:"enabled"`
	Grid    string         `json:"grid"`
	Counts  map[string]int `json:"counts"`
	// RepairsLastMinute is the keys repaired over the last minute by the
	// answering nodes.
	RepairsLastMinute uint64 `json:"repairs_last_minute"`
	Exchanges         uint64 `json:"exchanges"`
	Failures          uint64 `json:"failures"`
}

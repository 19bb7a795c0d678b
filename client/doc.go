// Package client is the Go SDK for cairn, a leaderless Dynamo-style
// key-value store.
//
// # Connecting
//
// One Client serves a whole process: it is safe for concurrent use, keeps a
// few multiplexed connections per node, and must be closed when done.
//
//	c, err := client.New(ctx, client.Config{Seeds: []string{"10.0.0.1:7101", "10.0.0.2:7101"}})
//	if err != nil { ... }
//	defer c.Close()
//
// New reads the ring (Q, the members, their data addresses and liveness)
// from the first seed that answers. From then on the client routes each call
// itself: it hashes the key as the nodes do, sends the call straight to a
// live replica of the key (so the receiving node coordinates it, with no
// forwarding hop), and falls back to the key's other replicas, then to the
// seeds. It refreshes the ring every RingRefreshInterval (1 s), at once
// when an answer carries another ring version, and when a node refuses a
// connection; such a node is skipped for a doubling pause rather than
// dialled on every call. Config.Routing chooses RoundRobin or SeedsOnly
// instead. Every Config field documents its default.
//
// # Reading and writing
//
// Every call takes a context.Context first: its deadline bounds the whole
// call, retries included, and the node is told to stop at that deadline
// too. Per-call options choose the consistency of that one call:
//
//	obj, err := c.Get(ctx, "users", []byte("ada"), client.R(client.All))
//	_, err = c.Put(ctx, "users", []byte("ada"), []byte("v2"), client.Causal(obj.Context), client.W(2))
//
// R, PR and NotFoundOK shape a Get; W, PW and DW a Put or Delete; Timeout
// and NoSloppy both. Quorums are counts or One, Majority, All. The client
// checks options, bucket, key, value and context before sending, and
// refuses what every node would (R above the replication factor, a key
// over the nodes' limit) with ErrInvalidArgument.
//
// A Get of a key never written succeeds with Object.Found false. The
// Object says which replicas answered, which of them were fallbacks
// standing in for a dead primary, and which node coordinated.
//
// # Siblings and contexts
//
// cairn never picks a winner between concurrent writes: each becomes a
// sibling, and a Get returns all of them with one causal context. A Put or
// Delete that passes that context (Causal) replaces exactly the siblings
// the Get saw; a Put without a context adds one.
//
// A Resolver (Config.Resolver, or WithResolver per call) merges siblings
// into the value the application means, and Update does the whole
// read-merge-modify-write with the right context:
//
//	_, err = c.Update(ctx, "counters", key, func(cur *client.Object) ([]byte, error) {
//		return increment(cur.Value, myID)
//	}, client.WithResolver(mergeCounters))
//
// There is no compare-and-set to retry: an Update that races another is not
// lost but kept as a sibling, which the next resolver merges. The value must
// therefore be mergeable (a set, a per-writer counter); docs/CLIENT.md says
// why a plain integer counter cannot be. Or let the store merge: a bucket
// created with datatype counter or set takes CounterIncr and CounterGet,
// or SetAdd, SetRemove and SetGet, and its replicas merge them by
// themselves (an increment is not idempotent: see CounterIncr).
//
// # Retries
//
// A Get that a node fails (unavailable, overloaded, timed out) is asked of
// another node, with jittered backoff, within Retry.MaxAttempts and a retry
// budget of about 10% of calls. A Put or Delete is sent to another node only
// when it never left, because the connection could not be made, or when a
// node refused it as overloaded, which a node does before anything else
// (it is sent again after the same backoff, within the same limits): once
// a write may have reached a replica, sending it again could make one
// write two siblings, so its error goes back to the caller, who knows
// whether the write is safe to repeat.
//
// # Errors
//
// A node's error crosses the wire as a code, and the client returns the
// same sentinel: errors.Is(err, client.ErrQuorum), client.ErrTimeout,
// client.ErrInvalidArgument, client.ErrOverloaded, client.ErrUnavailable,
// client.ErrUnauthorized and client.ErrNotFound work on whatever a call
// returns, and errors.As(err, &qe) with a *client.QuorumError gives the
// counts (needed, got, and each replica's outcome).
//
// # What the package must never do
//
// It never sends a write twice, never builds or alters a causal context,
// never picks a winner among siblings unless the application's Resolver
// does, and never blocks past the caller's context.
package client

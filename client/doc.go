// Package client is the Go SDK for cairn.
//
// A Client talks cairn's wire protocol to the nodes of one cluster. Every call
// takes a context.Context first; its deadline bounds the whole call, and
// per-call options choose the consistency of that one request:
//
//	c, err := client.New(ctx, client.Config{Seeds: []string{"127.0.0.1:7101"}})
//	...
//	obj, err := c.Get(ctx, "users", []byte("ada"), client.R(client.All))
//	ctx2, err := c.Put(ctx, "users", []byte("ada"), []byte("v2"), client.Causal(obj.Context))
//
// Concurrent writes without a causal context become siblings: Get returns all
// of them with one context, and a Put that passes that context replaces
// exactly the siblings it saw.
//
// Errors are the values of package cairn, re-exported here: errors.Is(err,
// client.ErrQuorum) and errors.As(err, new(*client.QuorumError)) work on
// whatever a call returns.
//
// The client must never turn one write into two: it retries nothing that may
// have reached a replica.
package client

package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// A gossip key file is a JSON array of base64 keys, the primary first (the
// format Consul and Serf use): the primary encrypts, every key decrypts.
// The node rewrites it after every change, so a restart comes back with
// the keyring the cluster uses now.

// gossipKeyring holds a node's keyring and the file it lives in.
type gossipKeyring struct {
	path string
	ring *memberlist.Keyring
	mu   sync.Mutex // serialises changes and their writes to the file
}

func loadGossipKeyring(path string) (*gossipKeyring, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip key file: %w (create it with `cairn keyring generate --out FILE`)", err)
	}
	var encoded []string
	if err := json.Unmarshal(raw, &encoded); err != nil {
		return nil, fmt.Errorf("gossip key file %s: want a JSON array of base64 keys: %w", path, err)
	}
	if len(encoded) == 0 {
		return nil, fmt.Errorf("gossip key file %s holds no key", path)
	}
	keys := make([][]byte, len(encoded))
	for i, e := range encoded {
		if keys[i], err = DecodeGossipKey(e); err != nil {
			return nil, fmt.Errorf("gossip key file %s: key %d: %w", path, i+1, err)
		}
	}
	ring, err := memberlist.NewKeyring(keys[1:], keys[0])
	if err != nil {
		return nil, fmt.Errorf("gossip key file %s: %w", path, err)
	}
	return &gossipKeyring{path: path, ring: ring}, nil
}

// DecodeGossipKey reads a base64 gossip key and checks its length (AES-128,
// -192 or -256).
func DecodeGossipKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("a gossip key is base64: %w", err)
	}
	if l := len(k); l != 16 && l != 24 && l != 32 {
		return nil, fmt.Errorf("a gossip key is 16, 24 or 32 bytes, not %d", l)
	}
	return k, nil
}

// WriteGossipKeyFile writes keys (base64, the primary first) as a key
// file, readable by its owner only, through a rename so that no reader
// sees half of it.
func WriteGossipKeyFile(path string, keys []string) error {
	raw, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := errors.Join(tmp.Chmod(0o600), writeAll(tmp, append(raw, '\n')), tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func writeAll(f *os.File, b []byte) error {
	_, err := f.Write(b)
	return err
}

// state lists the keys, the primary first.
func (g *gossipKeyring) state() (primary string, keys []string) {
	primary = base64.StdEncoding.EncodeToString(g.ring.GetPrimaryKey())
	keys = []string{primary}
	for _, k := range g.ring.GetKeys() {
		if e := base64.StdEncoding.EncodeToString(k); e != primary {
			keys = append(keys, e)
		}
	}
	return primary, keys
}

// apply makes one change to the keyring and saves it. install of a key
// already there, and use of the primary, change nothing and succeed, so
// that a cluster-wide change can be repeated after a partial failure.
func (g *gossipKeyring) apply(op, key string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if op == "list" {
		return nil
	}
	k, err := DecodeGossipKey(key)
	if err != nil {
		return cairn.InvalidArgument("keyring %s: %v", op, err)
	}
	primary, keys := g.state()
	switch op {
	case "install":
		if slices.Contains(keys, key) {
			return nil
		}
		err = g.ring.AddKey(k)
	case "use":
		if !slices.Contains(keys, key) {
			return cairn.InvalidArgument("keyring use: the key is not installed here: install it on every node first")
		}
		err = g.ring.UseKey(k)
	case "remove":
		if key == primary {
			return cairn.InvalidArgument("keyring remove: the key is the one in use: use another first")
		}
		if !slices.Contains(keys, key) {
			return nil
		}
		err = g.ring.RemoveKey(k)
	default:
		return cairn.InvalidArgument("keyring: unknown operation %q (list, install, use or remove)", op)
	}
	if err != nil {
		return cairn.InvalidArgument("keyring %s: %v", op, err)
	}
	_, keys = g.state()
	if err := WriteGossipKeyFile(g.path, keys); err != nil {
		return fmt.Errorf("%w: keyring %s applied but not saved to %s (a restart would lose it): %w", cairn.ErrInternal, op, g.path, err)
	}
	return nil
}

// keyringCallTimeout bounds one member's part of a cluster-wide keyring
// change.
const keyringCallTimeout = 5 * time.Second

// serveKeyring applies a keyring request here and, unless it is Local, on
// every other ring member, and reports each node's keyring or error.
func (n *Node) serveKeyring(ctx context.Context, _ transport.Peer, req wire.KeyringReq) (wire.KeyringResp, error) {
	if n.keyring == nil {
		return wire.KeyringResp{}, cairn.InvalidArgument("gossip encryption is off on %s: start every node with --gossip-key-file", n.cfg.Name)
	}
	if req.Op != "list" {
		if _, err := DecodeGossipKey(req.Key); err != nil {
			return wire.KeyringResp{}, cairn.InvalidArgument("keyring %s: %v", req.Op, err)
		}
	}
	local := func() wire.KeyringNode {
		res := wire.KeyringNode{Node: n.cfg.Name}
		if err := n.keyring.apply(req.Op, req.Key); err != nil {
			res.Error = err.Error()
			return res
		}
		if req.Op != "list" {
			n.log.Info("gossip keyring changed", zap.String("op", req.Op)) // never the key
		}
		res.Primary, res.Keys = n.keyring.state()
		return res
	}
	if req.Local {
		return wire.KeyringResp{Nodes: []wire.KeyringNode{local()}}, nil
	}
	members := n.ring().Members()
	results := make([]wire.KeyringNode, len(members))
	var g errgroup.Group
	for i, m := range members {
		if m == n.cfg.Name {
			results[i] = local()
			continue
		}
		g.Go(func() error {
			cctx, cancel := context.WithTimeout(ctx, keyringCallTimeout)
			defer cancel()
			var resp wire.KeyringResp
			fwd := req
			fwd.Local = true
			err := peerCaller{n: n}.Call(cctx, m, wire.TypeKeyring, fwd, &resp)
			switch {
			case err != nil:
				results[i] = wire.KeyringNode{Node: m, Error: err.Error()}
			case len(resp.Nodes) != 1:
				results[i] = wire.KeyringNode{Node: m, Error: "a malformed answer"}
			default:
				results[i] = resp.Nodes[0]
				results[i].Node = m
			}
			return nil
		})
	}
	_ = g.Wait()
	return wire.KeyringResp{Nodes: results}, nil
}

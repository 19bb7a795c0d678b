package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/access"
	"github.com/cairnkv/cairn/internal/certs"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"go.uber.org/zap"
)

// Users, roles and their enforcement on the data port. Security is on when
// the node speaks TLS: every client request is then checked against its
// identity's roles, that identity being the user a token in the hello
// belongs to, else the user the client certificate names. Nodes (a
// verified peer, or a node certificate) may send anything. Without TLS
// every request is allowed, as before users existed.

// userTable is the users as the cluster metadata held them at generation
// gen, decoded once per change rather than once per request.
type userTable struct {
	gen   uint64
	users map[string]access.User
	// byToken finds the user of a token by its hash. A map lookup is not
	// constant-time, but it compares SHA-256 hashes, which tell nothing
	// of the token; the match is then confirmed in constant time.
	byToken map[[sha256.Size]byte]string
}

type userCache struct{ cur atomic.Pointer[userTable] }

// users returns the current users, rebuilding the table when the metadata
// moved on since it was built.
func (n *Node) users() *userTable {
	gen := n.members.MetaGeneration()
	if t := n.userCache.cur.Load(); t != nil && t.gen == gen {
		return t
	}
	t := &userTable{gen: gen, users: map[string]access.User{}, byToken: map[[sha256.Size]byte]string{}}
	for _, e := range n.members.MetaPrefix(access.MetaPrefix) {
		u, err := access.DecodeUser(e.Key, e.Value)
		if err != nil {
			// Gossip validated the entry, not the record inside it: the
			// user holds no role until the record is written again.
			n.log.Warn("user record unreadable: the user holds no role", zap.String("user", e.Key), zap.Error(err))
			u = access.User{Name: e.Key}
		}
		t.users[e.Key] = u
		if len(u.TokenHash) == sha256.Size {
			t.byToken[[sha256.Size]byte(u.TokenHash)] = e.Key
		}
	}
	n.userCache.cur.Store(t)
	return t
}

// identity says who a client is: the user whose token its hello carried
// when it carried one, else the user its certificate names. node is set
// for a node's certificate.
type identity struct {
	user string
	node bool
	// tokenHash is set when the identity comes from a token; the user's
	// record must still hold it for each request.
	tokenHash []byte
}

var errNoIdentity = errors.New("no identity: present a client certificate (cairn cert create-client) or a user's token (--token)")

func (n *Node) identify(peer transport.Peer) (identity, error) {
	if len(peer.Auth) > 0 {
		if len(peer.Auth) > access.MaxTokenLen {
			return identity{}, errors.New("the token is longer than any token")
		}
		h := access.HashToken(peer.Auth)
		t := n.users()
		if name, ok := t.byToken[[sha256.Size]byte(h)]; ok && access.TokenMatches(h, t.users[name].TokenHash) {
			return identity{user: name, tokenHash: h}, nil
		}
		return identity{}, errors.New("the token matches no user's")
	}
	id, ok := certs.IdentityOf(peer.Cert)
	if !ok {
		return identity{}, errNoIdentity
	}
	if id.Kind == certs.KindNode {
		return identity{node: true}, nil
	}
	return identity{user: id.Name}, nil
}

// authenticate checks a client's hello on a TLS node, once per
// connection: refused at once when it proves no identity, so that a
// client learns why before any request; else the identity travels with
// every request of the connection.
func (n *Node) authenticate(peer transport.Peer) (any, error) {
	id, err := n.identify(peer)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// authorize refuses a request the peer's identity has no role for.
func (n *Node) authorize(peer transport.Peer, t wire.Type) error {
	if n.tls == nil || peer.Node != "" {
		// No security, or a peer whose node certificate VerifyPeer checked.
		return nil
	}
	id, ok := peer.Principal.(*identity)
	if !ok {
		// authenticate runs for every client of a TLS node: a request
		// without its result is a bug, refused rather than served.
		return fmt.Errorf("%w: %v", cairn.ErrUnauthorized, errNoIdentity)
	}
	if id.node {
		return nil
	}
	need := access.Required(t)
	if id.tokenHash == nil && id.user == access.Root {
		return nil // the bootstrap rule: root's certificate is always admin
	}
	u, ok := n.users().users[id.user]
	// The user's record is read again at every request: a removed user,
	// a revoked role or a replaced token takes effect on connections
	// already open.
	if ok && id.tokenHash != nil && !access.TokenMatches(id.tokenHash, u.TokenHash) {
		return fmt.Errorf("%w: user %s's token was replaced or removed since this connection opened", cairn.ErrUnauthorized, id.user)
	}
	if !ok {
		return fmt.Errorf("%w: user %s is not a user of this cluster (cairn user add %s)", cairn.ErrUnauthorized, id.user, id.user)
	}
	if !u.Has(need) {
		return fmt.Errorf("%w: %w", cairn.ErrUnauthorized, access.Refusal(id.user, need, t))
	}
	return nil
}

// serveUsers lists or changes the users. The change is made in cluster
// metadata here and gossip spreads it; the answer comes once it is
// persisted on this node.
func (n *Node) serveUsers(_ context.Context, _ transport.Peer, req wire.UsersReq) (wire.UsersResp, error) {
	if req.Op == "list" {
		var resp wire.UsersResp
		t := n.users()
		for _, name := range slices.Sorted(maps.Keys(t.users)) {
			resp.Users = append(resp.Users, userInfo(t.users[name]))
		}
		return resp, nil
	}
	if err := access.CheckName(req.Name); err != nil {
		return wire.UsersResp{}, cairn.InvalidArgument("user %s: %v", req.Op, err)
	}
	roles := make([]access.Role, 0, len(req.Roles))
	for _, s := range req.Roles {
		r, err := access.ParseRole(s)
		if err != nil {
			return wire.UsersResp{}, cairn.InvalidArgument("user %s %s: %v", req.Op, req.Name, err)
		}
		roles = append(roles, r)
	}
	if len(req.TokenHash) != 0 && len(req.TokenHash) != len(access.HashToken(nil)) {
		return wire.UsersResp{}, cairn.InvalidArgument("user %s %s: a token hash is %d bytes, not %d", req.Op, req.Name, len(access.HashToken(nil)), len(req.TokenHash))
	}
	u, exists := n.users().users[req.Name]
	switch req.Op {
	case "add":
		if exists {
			return wire.UsersResp{}, cairn.InvalidArgument("user add %s: the user exists (grant it roles with `cairn user grant`)", req.Name)
		}
		u = access.User{Name: req.Name, Roles: access.NormalRoles(roles), TokenHash: req.TokenHash}
	case "remove":
		if !exists {
			return wire.UsersResp{}, fmt.Errorf("user remove %s: no such user: %w", req.Name, cairn.ErrNotFound)
		}
		if err := n.members.DeleteMeta(access.MetaPrefix, req.Name); err != nil {
			return wire.UsersResp{}, err
		}
		n.log.Info("user removed", zap.String("user", req.Name))
		return wire.UsersResp{}, nil
	case "grant", "revoke", "token":
		if !exists {
			return wire.UsersResp{}, fmt.Errorf("user %s %s: no such user (add it with `cairn user add`): %w", req.Op, req.Name, cairn.ErrNotFound)
		}
		switch {
		case req.Op == "grant":
			u.Roles = access.NormalRoles(append(u.Roles, roles...))
		case req.Op == "revoke":
			u.Roles = slices.DeleteFunc(u.Roles, func(r access.Role) bool { return slices.Contains(roles, r) })
		case len(req.TokenHash) == 0:
			return wire.UsersResp{}, cairn.InvalidArgument("user token %s: no token hash given", req.Name)
		default:
			u.TokenHash = req.TokenHash
		}
	default:
		return wire.UsersResp{}, cairn.InvalidArgument("user: unknown operation %.32q (list, add, remove, grant, revoke or token)", req.Op)
	}
	if err := n.members.SetMeta(access.MetaPrefix, req.Name, u.Encode()); err != nil {
		return wire.UsersResp{}, err
	}
	// Never the token or its hash.
	n.log.Info("user changed", zap.String("op", req.Op), zap.String("user", req.Name), zap.Strings("roles", req.Roles))
	return wire.UsersResp{Users: []wire.UserInfo{userInfo(u)}}, nil
}

func userInfo(u access.User) wire.UserInfo {
	info := wire.UserInfo{Name: u.Name, Roles: []string{}, Token: len(u.TokenHash) > 0}
	for _, r := range u.Roles {
		info.Roles = append(info.Roles, string(r))
	}
	return info
}

package access

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"

	"github.com/cairnkv/cairn/internal/mpcheck"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// Role is a set of permissions. Each role includes the ones below it:
// admin can do all a writer can, a writer all a reader can.
type Role string

// The roles, weakest first.
const (
	RoleRead  Role = "read"
	RoleWrite Role = "write"
	RoleAdmin Role = "admin"
)

// Roles lists every role, weakest first.
var Roles = []Role{RoleRead, RoleWrite, RoleAdmin}

func (r Role) rank() int { return slices.Index(Roles, r) }

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if r.rank() < 0 {
		return "", fmt.Errorf("unknown role %.32q: want read, write or admin", s)
	}
	return r, nil
}

// MetaPrefix is the cluster metadata prefix user records live under, keyed
// by user name.
const MetaPrefix = "users"

// Root is the user whose certificate is always admin, whatever the user
// records say: without it nobody could add the first user of a fresh
// secure cluster. Holding root's certificate means holding the CA's trust.
const Root = "root"

// User is one user record.
type User struct {
	Name  string
	Roles []Role // sorted weakest first, no repeats
	// TokenHash is the SHA-256 of the user's token; nil when the user has
	// none (it then proves who it is by certificate only).
	TokenHash []byte
}

// Has reports whether the user holds role r, directly or through a
// stronger one.
func (u User) Has(r Role) bool {
	for _, have := range u.Roles {
		if have.rank() >= r.rank() {
			return true
		}
	}
	return false
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// CheckName reports whether name may name a user: the rule client
// certificates follow (1 to 128 letters, digits, '.', '_' or '-',
// starting with a letter or digit), so a certificate can exist for it.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("user name %.64q: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// NormalRoles sorts roles weakest first and drops repeats.
func NormalRoles(roles []Role) []Role {
	out := slices.Clone(roles)
	slices.SortFunc(out, func(a, b Role) int { return a.rank() - b.rank() })
	return slices.Compact(out)
}

// wireUser is a user record in cluster metadata:
//
//	{"r": [role names], "h": token hash (32 bytes; omitted when none)}
type wireUser struct {
	Roles []string `msgpack:"r"`
	Hash  []byte   `msgpack:"h,omitempty"`
}

// Encode gives the record's bytes for cluster metadata.
func (u User) Encode() []byte {
	w := wireUser{Roles: make([]string, 0, len(u.Roles)), Hash: u.TokenHash}
	for _, r := range NormalRoles(u.Roles) {
		w.Roles = append(w.Roles, string(r))
	}
	b, err := msgpack.Marshal(&w)
	if err != nil {
		panic(fmt.Sprintf("access: encode user: %v", err)) // strings and bytes always encode
	}
	return b
}

// DecodeUser reads the record of user name from cluster metadata. The bytes
// came through gossip: a record that does not validate is an error, and
// the caller treats its user as holding no role.
func DecodeUser(name string, b []byte) (User, error) {
	var w wireUser
	if err := mpcheck.Unmarshal(b, &w); err != nil {
		return User{}, fmt.Errorf("user %.64q: %w", name, err)
	}
	u := User{Name: name, TokenHash: w.Hash}
	if len(w.Roles) > len(Roles) {
		return User{}, fmt.Errorf("user %.64q: %d roles", name, len(w.Roles))
	}
	for _, s := range w.Roles {
		r, err := ParseRole(s)
		if err != nil {
			return User{}, fmt.Errorf("user %.64q: %w", name, err)
		}
		u.Roles = append(u.Roles, r)
	}
	if len(w.Hash) != 0 && len(w.Hash) != sha256.Size {
		return User{}, fmt.Errorf("user %.64q: a token hash of %d bytes", name, len(w.Hash))
	}
	u.Roles = NormalRoles(u.Roles)
	return u, nil
}

// tokenBytes is the size of a token's secret.
const tokenBytes = 32

// MaxTokenLen bounds a presented token: a node hashes nothing longer.
const MaxTokenLen = 256

// NewToken makes a token from 32 bytes of rand (crypto/rand.Reader in
// production): its text, to hand to the user once, and its hash, to store.
func NewToken(rand io.Reader) (token string, hash []byte, err error) {
	b := make([]byte, tokenBytes)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", nil, fmt.Errorf("access: make a token: %w", err)
	}
	token = "cairn_" + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken([]byte(token)), nil
}

// HashToken is what a user record stores of a token.
func HashToken(token []byte) []byte {
	h := sha256.Sum256(token)
	return h[:]
}

// TokenMatches reports, in time independent of where they differ, whether
// a presented token's hash is the one a record holds.
func TokenMatches(presentedHash, stored []byte) bool {
	return len(stored) == sha256.Size && subtle.ConstantTimeCompare(presentedHash, stored) == 1
}

// ErrNoRole is wrapped by refusals for want of a role.
var ErrNoRole = errors.New("lacks role")

// Required is the role a client needs to send a request of type t. A
// type not listed needs admin, so that a new request type is closed
// until someone decides otherwise. Node-to-node types (replica, handoff,
// anti-entropy, transfer) are not listed: only nodes send them, and their
// handlers refuse them from clients whatever the role.
func Required(t wire.Type) Role {
	switch t {
	case wire.TypeGet, wire.TypeMembers, wire.TypeRing, wire.TypeStatus, wire.TypeRingState,
		wire.TypeHints, wire.TypeTransfers, wire.TypeAAEStatus, wire.TypePing, wire.TypeBuckets, wire.TypeCounterGet, wire.TypeSetGet:
		return RoleRead
	case wire.TypePut, wire.TypeDelete, wire.TypeCounterIncr, wire.TypeSetUpdate:
		return RoleWrite
	}
	return RoleAdmin
}

// Refusal is the error for user name lacking role r, for a request of
// type t.
func Refusal(name string, r Role, t wire.Type) error {
	return fmt.Errorf("user %s %w %s (needed for %v)", name, ErrNoRole, r, t)
}

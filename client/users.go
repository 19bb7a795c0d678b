package client

import (
	"context"
	"crypto/rand"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/access"
	"github.com/cairnkv/cairn/internal/wire"
)

// User is a user of a secure cluster: its roles (read, write, admin) and
// whether it has a token.
type User struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
	Token bool     `json:"token"`
}

// Users lists the cluster's users (admin role).
func (c *Client) Users(ctx context.Context) ([]User, error) {
	return c.users(ctx, wire.UsersReq{Op: "list"})
}

// AddUser adds a user with roles (admin role). With token it makes the
// user a token here, sends the node only its hash, and returns the token:
// it is shown nowhere else and cannot be had again.
func (c *Client) AddUser(ctx context.Context, name string, roles []string, token bool) (string, error) {
	req := wire.UsersReq{Op: "add", Name: name, Roles: roles}
	var tok string
	if token {
		t, hash, err := access.NewToken(rand.Reader)
		if err != nil {
			return "", err
		}
		tok, req.TokenHash = t, hash
	}
	if _, err := c.users(ctx, req); err != nil {
		return "", err
	}
	return tok, nil
}

// NewUserToken gives a user a new token, replacing the one it had, and
// returns it (admin role). Connections opened with the old one are
// refused from their next request.
func (c *Client) NewUserToken(ctx context.Context, name string) (string, error) {
	t, hash, err := access.NewToken(rand.Reader)
	if err != nil {
		return "", err
	}
	if _, err := c.users(ctx, wire.UsersReq{Op: "token", Name: name, TokenHash: hash}); err != nil {
		return "", err
	}
	return t, nil
}

// RemoveUser removes a user (admin role); its certificate and token no
// longer give any role.
func (c *Client) RemoveUser(ctx context.Context, name string) error {
	_, err := c.users(ctx, wire.UsersReq{Op: "remove", Name: name})
	return err
}

// GrantRoles adds roles to a user (admin role) and returns the user.
func (c *Client) GrantRoles(ctx context.Context, name string, roles ...string) (User, error) {
	return c.changeRoles(ctx, "grant", name, roles)
}

// RevokeRoles takes roles from a user (admin role) and returns the user.
func (c *Client) RevokeRoles(ctx context.Context, name string, roles ...string) (User, error) {
	return c.changeRoles(ctx, "revoke", name, roles)
}

func (c *Client) changeRoles(ctx context.Context, op, name string, roles []string) (User, error) {
	if len(roles) == 0 {
		return User{}, cairn.InvalidArgument("user %s %s: name at least one role", op, name)
	}
	us, err := c.users(ctx, wire.UsersReq{Op: op, Name: name, Roles: roles})
	if err != nil {
		return User{}, err
	}
	if len(us) != 1 {
		return User{}, cairn.InvalidArgument("user %s %s: a malformed answer", op, name)
	}
	return us[0], nil
}

func (c *Client) users(ctx context.Context, req wire.UsersReq) ([]User, error) {
	var resp wire.UsersResp
	if _, err := c.callAt(ctx, wire.TypeUsers, req, &resp); err != nil {
		return nil, err
	}
	out := make([]User, len(resp.Users))
	for i, u := range resp.Users {
		out[i] = User(u)
	}
	return out, nil
}

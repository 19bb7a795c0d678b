package node

import (
	"context"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/stretchr/testify/require"
)

// rawClientCall makes one call as a plain client (its handshake names no
// node).
func rawClientCall(t *testing.T, addr string, typ wire.Type, req, resp any) error {
	t.Helper()
	p := transport.NewPool(transport.DefaultConfig())
	defer func() { require.NoError(t, p.Close()) }()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return p.Call(ctx, addr, typ, req, resp)
}

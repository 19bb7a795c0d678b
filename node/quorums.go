package node

import (
	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/buckets"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/quorum"
	"github.com/cairnkv/cairn/ring"
)

// resolveQuorums turns a request's options into numbers against the
// replication factor, rejecting impossible ones (R > N) as invalid arguments
// before any replica is asked. Defaults that exceed a small cluster's
// replication factor shrink to it (one node holds every replica of a
// one-node cluster); explicit values never do.
//
// A bucket's properties come between the request and the node: its n
// (up to the cluster's size) replaces the node's N, its quorums and
// notfound_ok are the defaults a request that names none gets, and its
// conflict mode is how the request merges copies. A bucket's
// quorum is explicit: one beyond the replicas a small cluster has is an
// error, not shrunk.
func (n *Node) resolveQuorums(op string, r *ring.Ring, b buckets.Props, o wire.Options) (quorum.Spec, error) {
	s := quorum.Spec{N: n.replicationFactor(r), NotFoundOK: !o.NotFoundStrict, Mode: b.Mode()}
	if b.N > 0 {
		s.N = min(b.N, len(r.Members()))
	}
	if !o.NotFoundStrict && b.NotFoundOK != nil {
		s.NotFoundOK = *b.NotFoundOK
	}
	for _, f := range []struct {
		name   string
		dst    *int
		v, bkt wire.Quorum
		def    int
	}{
		{"r", &s.R, o.R, b.R, n.cfg.R}, {"w", &s.W, o.W, b.W, n.cfg.W},
		{"pr", &s.PR, o.PR, b.PR, n.cfg.PR}, {"pw", &s.PW, o.PW, b.PW, n.cfg.PW}, {"dw", &s.DW, o.DW, b.DW, n.cfg.DW},
	} {
		q := f.v
		if q == wire.QuorumDefault {
			q = f.bkt
		}
		v, err := q.Resolve(s.N, min(f.def, s.N))
		if err != nil {
			return quorum.Spec{}, cairn.InvalidArgument("%s: %v", f.name, err)
		}
		*f.dst = v
	}
	if err := s.Validate(op); err != nil {
		return quorum.Spec{}, err
	}
	return s, nil
}

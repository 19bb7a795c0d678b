package node

import (
	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/wire"
	"github.com/cairnkv/cairn/quorum"
	"github.com/cairnkv/cairn/ring"
)

// resolveQuorums turns a request's options into numbers against the
// replication factor, rejecting impossible ones (R > N) as invalid arguments
// before any replica is asked. Defaults that exceed a small cluster's
// replication factor shrink to it (one node holds every replica of a
// one-node cluster); explicit values never do.
func (n *Node) resolveQuorums(op string, r *ring.Ring, o wire.Options) (quorum.Spec, error) {
	s := quorum.Spec{N: n.replicationFactor(r), NotFoundOK: !o.NotFoundStrict}
	for _, f := range []struct {
		name string
		dst  *int
		v    wire.Quorum
		def  int
	}{
		{"r", &s.R, o.R, n.cfg.R}, {"w", &s.W, o.W, n.cfg.W},
		{"pr", &s.PR, o.PR, n.cfg.PR}, {"pw", &s.PW, o.PW, n.cfg.PW}, {"dw", &s.DW, o.DW, n.cfg.DW},
	} {
		v, err := f.v.Resolve(s.N, min(f.def, s.N))
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

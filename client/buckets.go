package client

import (
	"context"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/wire"
)

// Bucket is a bucket's properties (DESIGN section 3). Quorums read as
// ParseQuorum writes them, "default" for the cluster's; N 0, SiblingLimit
// 0 and a nil NotFoundOK are the cluster's defaults too. Created is false
// for a bucket never configured, which takes every default.
type Bucket struct {
	Name       string `json:"name"`
	Created    bool   `json:"created"`
	N          int    `json:"n"`
	R          string `json:"r"`
	W          string `json:"w"`
	PR         string `json:"pr"`
	PW         string `json:"pw"`
	DW         string `json:"dw"`
	NotFoundOK *bool  `json:"notfound_ok,omitempty"`
	// Conflict is "siblings" (concurrent writes are kept for the
	// application to merge) or "lww" (the node keeps the latest write
	// only and drops concurrent ones: docs/CLIENT.md).
	Conflict     string `json:"conflict"`
	Datatype     string `json:"datatype"`
	SiblingLimit int    `json:"sibling_limit"`
	DeleteGrace  string `json:"delete_grace"`
}

// BucketChange is what CreateBucket or SetBucket changes: the fields set.
// N and Datatype are fixed once a bucket exists.
type BucketChange struct {
	N                  *int
	R, W, PR, PW, DW   *Quorum
	NotFoundOK         *bool
	Conflict, Datatype *string
	SiblingLimit       *int
	// DeleteGrace is a duration ("24h") or "keep".
	DeleteGrace *string
}

func bucketOf(b wire.BucketInfo) Bucket {
	out := Bucket{Name: b.Name, Created: b.Created, N: b.N, R: b.R.String(), W: b.W.String(), PR: b.PR.String(),
		PW: b.PW.String(), DW: b.DW.String(), NotFoundOK: b.NotFoundOK, Conflict: b.Conflict, Datatype: b.Datatype,
		SiblingLimit: b.SiblingLimit, DeleteGrace: b.DeleteGrace}
	if out.Conflict == "" {
		out.Conflict = "siblings"
	}
	if out.Datatype == "" {
		out.Datatype = "none"
	}
	if out.DeleteGrace == "" {
		out.DeleteGrace = "keep"
	}
	return out
}

// Bucket returns a bucket's properties: every default for a bucket never
// configured.
func (c *Client) Bucket(ctx context.Context, name string) (Bucket, error) {
	if name == "" {
		return Bucket{}, cairn.InvalidArgument("bucket: a name is required")
	}
	var resp wire.BucketsResp
	if err := c.call(ctx, wire.TypeBuckets, wire.BucketsReq{Name: name}, &resp); err != nil {
		return Bucket{}, err
	}
	if len(resp.Buckets) != 1 {
		return Bucket{}, cairn.InvalidArgument("bucket %s: the node answered %d buckets", name, len(resp.Buckets))
	}
	return bucketOf(resp.Buckets[0]), nil
}

// Buckets returns every configured bucket's properties, by name.
func (c *Client) Buckets(ctx context.Context) ([]Bucket, error) {
	var resp wire.BucketsResp
	if err := c.call(ctx, wire.TypeBuckets, wire.BucketsReq{}, &resp); err != nil {
		return nil, err
	}
	out := make([]Bucket, 0, len(resp.Buckets))
	for _, b := range resp.Buckets {
		out = append(out, bucketOf(b))
	}
	return out, nil
}

// CreateBucket configures a new bucket; a bucket configured already is an
// invalid argument. Its n and datatype are fixed from then on.
func (c *Client) CreateBucket(ctx context.Context, name string, ch BucketChange) (Bucket, error) {
	return c.setBucket(ctx, name, ch, true)
}

// SetBucket changes a configured bucket's properties (every one but n and
// the datatype).
func (c *Client) SetBucket(ctx context.Context, name string, ch BucketChange) (Bucket, error) {
	return c.setBucket(ctx, name, ch, false)
}

func (c *Client) setBucket(ctx context.Context, name string, ch BucketChange, create bool) (Bucket, error) {
	if name == "" {
		return Bucket{}, cairn.InvalidArgument("bucket: a name is required")
	}
	q := func(p *Quorum) *wire.Quorum {
		if p == nil {
			return nil
		}
		w := wire.Quorum(*p)
		return &w
	}
	req := wire.BucketSetReq{Name: name, Create: create, N: ch.N, R: q(ch.R), W: q(ch.W), PR: q(ch.PR), PW: q(ch.PW), DW: q(ch.DW),
		NotFoundOK: ch.NotFoundOK, Conflict: ch.Conflict, Datatype: ch.Datatype, SiblingLimit: ch.SiblingLimit, DeleteGrace: ch.DeleteGrace}
	var resp wire.BucketSetResp
	if err := c.call(ctx, wire.TypeBucketSet, req, &resp); err != nil {
		return Bucket{}, err
	}
	return bucketOf(resp.Bucket), nil
}

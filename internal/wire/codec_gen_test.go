package wire

import (
	"math"

	"github.com/cairnkv/cairn/internal/dvv"
	"pgregory.net/rapid"
)

// Generators of the hand-coded messages, as any sender might fill them:
// byte fields nil, empty or long enough to need wider headers, integers
// of every width, and objects as dvv makes them or not (unsorted
// siblings, repeated actors). Version vectors hold no zero counter, and
// omitempty slices are nil or non-empty: both decode as something else
// (a zero counter as a missing one, an empty slice as nil), which the
// comparisons below would take for a difference.

func genBytes(label string) *rapid.Generator[[]byte] {
	return rapid.Custom(func(t *rapid.T) []byte {
		switch rapid.IntRange(0, 4).Draw(t, label+"Kind") {
		case 0:
			return nil
		case 1:
			return []byte{}
		case 2:
			return rapid.SliceOfN(rapid.Byte(), 256, 300).Draw(t, label+"Long")
		}
		return rapid.SliceOfN(rapid.Byte(), 1, 40).Draw(t, label)
	})
}

func genString(label string) *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		if rapid.IntRange(0, 5).Draw(t, label+"Long") == 0 {
			return string(rapid.SliceOfN(rapid.Byte(), 32, 300).Draw(t, label))
		}
		return rapid.StringN(0, 8, -1).Draw(t, label)
	})
}

// genInt64 favours the edges of each msgpack width.
func genInt64(label string) *rapid.Generator[int64] {
	edges := []int64{0, 1, -1, 31, -32, -33, 127, 128, -128, -129, 255, 256, 32767, 32768, -32768, -32769,
		65535, 65536, math.MaxInt32, math.MinInt32, math.MaxInt32 + 1, math.MinInt32 - 1,
		math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64, math.MinInt64}
	return rapid.OneOf(rapid.SampledFrom(edges), rapid.Int64())
}

func genUint64(label string) *rapid.Generator[uint64] {
	edges := []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64}
	return rapid.OneOf(rapid.SampledFrom(edges), rapid.Uint64())
}

func genOptions(t *rapid.T) Options {
	q := func(label string) Quorum {
		return Quorum(rapid.OneOf(rapid.Int32Range(-4, 5), rapid.Int32()).Draw(t, label))
	}
	return Options{R: q("r"), W: q("w"), PR: q("pr"), PW: q("pw"), DW: q("dw"),
		TimeoutMs: rapid.Uint32().Draw(t, "timeout"), NoSloppy: rapid.Bool().Draw(t, "noSloppy"),
		NotFoundStrict: rapid.Bool().Draw(t, "notFoundStrict")}
}

func genStrings(t *rapid.T, label string, emptyOK bool) []string {
	n := rapid.IntRange(-1, 4).Draw(t, label+"Len")
	if n < 0 || (n == 0 && !emptyOK) {
		return nil
	}
	s := make([]string, n)
	for i := range s {
		s[i] = genString(label).Draw(t, label)
	}
	return s
}

func genVV(t *rapid.T) dvv.VV {
	n := rapid.IntRange(-1, 5).Draw(t, "vvLen")
	if n < 0 {
		return nil
	}
	vv := dvv.VV{}
	for range n {
		vv[genString("actor").Draw(t, "actor")] = rapid.OneOf(rapid.Uint64Range(1, 300), rapid.Uint64Min(1)).Draw(t, "counter")
	}
	return vv
}

func genObject(t *rapid.T) dvv.Object {
	o := dvv.Object{VV: genVV(t)}
	n := rapid.IntRange(-1, 4).Draw(t, "siblings")
	if n >= 0 {
		o.Siblings = make([]dvv.Sibling, n)
	}
	for i := range o.Siblings {
		o.Siblings[i] = dvv.Sibling{
			Dot:       dvv.Dot{Actor: genString("dotActor").Draw(t, "dotActor"), Counter: genUint64("dot").Draw(t, "dot")},
			Value:     genBytes("value").Draw(t, "value"),
			Tombstone: rapid.Bool().Draw(t, "tombstone"),
			WrittenAt: genInt64("writtenAt").Draw(t, "writtenAt"),
		}
	}
	return o
}

func genSiblings(t *rapid.T) []Sibling {
	n := rapid.IntRange(-1, 4).Draw(t, "siblings")
	if n < 0 {
		return nil
	}
	s := make([]Sibling, n)
	for i := range s {
		s[i] = Sibling{Value: genBytes("value").Draw(t, "value"), WrittenAt: genInt64("writtenAt").Draw(t, "writtenAt")}
	}
	return s
}

// handCodedMessages makes a random message of every hand-coded type.
var handCodedMessages = map[Type]func(t *rapid.T) any{
	TypeGet: func(t *rapid.T) any {
		return &GetReq{Bucket: genString("bucket").Draw(t, "bucket"), Key: genBytes("key").Draw(t, "key"), Opts: genOptions(t)}
	},
	TypeGetResp: func(t *rapid.T) any {
		return &GetResp{Found: rapid.Bool().Draw(t, "found"), Siblings: genSiblings(t), Context: genBytes("context").Draw(t, "context"),
			Replicas: genStrings(t, "replicas", true), Fallbacks: genStrings(t, "fallbacks", false), RingVersion: genUint64("rv").Draw(t, "rv"),
			ValuesOmitted: rapid.Bool().Draw(t, "omitted"), SiblingCount: rapid.Int().Draw(t, "count")}
	},
	TypePut: func(t *rapid.T) any {
		return &PutReq{Bucket: genString("bucket").Draw(t, "bucket"), Key: genBytes("key").Draw(t, "key"), Value: genBytes("value").Draw(t, "value"),
			Context: genBytes("context").Draw(t, "context"), Opts: genOptions(t), Forwarded: rapid.Bool().Draw(t, "forwarded")}
	},
	TypePutResp: func(t *rapid.T) any {
		return &PutResp{Context: genBytes("context").Draw(t, "context"), RingVersion: genUint64("rv").Draw(t, "rv")}
	},
	TypeDelete: func(t *rapid.T) any {
		return &DeleteReq{Bucket: genString("bucket").Draw(t, "bucket"), Key: genBytes("key").Draw(t, "key"),
			Context: genBytes("context").Draw(t, "context"), Opts: genOptions(t), Forwarded: rapid.Bool().Draw(t, "forwarded")}
	},
	TypeDeleteResp: func(t *rapid.T) any {
		return &DeleteResp{Context: genBytes("context").Draw(t, "context"), RingVersion: genUint64("rv").Draw(t, "rv")}
	},
	TypeReplicaGet: func(t *rapid.T) any {
		return &ReplicaGetReq{Partition: rapid.Uint32().Draw(t, "partition"), Bucket: genString("bucket").Draw(t, "bucket"),
			Key: genBytes("key").Draw(t, "key"), For: genString("for").Draw(t, "for"), AllHints: rapid.Bool().Draw(t, "allHints")}
	},
	TypeReplicaGetResp: func(t *rapid.T) any {
		return &ReplicaGetResp{Found: rapid.Bool().Draw(t, "found"), Object: genObject(t),
			Omitted: rapid.Bool().Draw(t, "omitted"), Live: rapid.Int().Draw(t, "live")}
	},
	TypeReplicaPut: func(t *rapid.T) any {
		return &ReplicaPutReq{Partition: rapid.Uint32().Draw(t, "partition"), Bucket: genString("bucket").Draw(t, "bucket"),
			Key: genBytes("key").Draw(t, "key"), Object: genObject(t), Sync: rapid.Bool().Draw(t, "sync"), For: genString("for").Draw(t, "for")}
	},
	TypeReplicaPutResp: func(t *rapid.T) any {
		return &ReplicaPutResp{Durable: rapid.Bool().Draw(t, "durable")}
	},
	TypeReplicaPutBatch: func(t *rapid.T) any {
		n := rapid.IntRange(-1, 3).Draw(t, "items")
		if n < 0 {
			return &ReplicaPutBatchReq{}
		}
		items := make([]ReplicaPutReq, n)
		for i := range items {
			items[i] = ReplicaPutReq{Partition: rapid.Uint32().Draw(t, "partition"), Bucket: genString("bucket").Draw(t, "bucket"),
				Key: genBytes("key").Draw(t, "key"), Object: genObject(t), Sync: rapid.Bool().Draw(t, "sync"), For: genString("for").Draw(t, "for")}
		}
		return &ReplicaPutBatchReq{Items: items}
	},
	TypeReplicaPutBatchResp: func(t *rapid.T) any {
		n := rapid.IntRange(-1, 3).Draw(t, "items")
		if n < 0 {
			return &ReplicaPutBatchResp{}
		}
		items := make([]ReplicaPutResult, n)
		for i := range items {
			items[i].Durable = rapid.Bool().Draw(t, "durable")
			if rapid.Bool().Draw(t, "refused") {
				items[i].Err = genErrorResp(t)
			}
		}
		return &ReplicaPutBatchResp{Items: items}
	},
}

// genErrorResp makes a replica's refusal, with a quorum error's counts or
// without.
func genErrorResp(t *rapid.T) *ErrorResp {
	e := &ErrorResp{Code: Code(rapid.Uint8().Draw(t, "code")), Message: genString("message").Draw(t, "message")}
	if !rapid.Bool().Draw(t, "quorum") {
		return e
	}
	q := &QuorumInfo{Op: genString("op").Draw(t, "op"), Kind: genString("kind").Draw(t, "kind"),
		Need: int(genInt64("need").Draw(t, "need")), Got: int(genInt64("got").Draw(t, "got")),
		Of: int(genInt64("of").Draw(t, "of")), TimedOut: rapid.Bool().Draw(t, "timedOut")}
	if n := rapid.IntRange(-1, 3).Draw(t, "replicas"); n >= 0 {
		q.Replicas = make([]ReplicaInfo, n)
		for i := range q.Replicas {
			q.Replicas[i] = ReplicaInfo{Node: genString("node").Draw(t, "node"), OK: rapid.Bool().Draw(t, "ok"),
				Primary: rapid.Bool().Draw(t, "primary"), Err: genString("err").Draw(t, "err")}
		}
	}
	e.Quorum = q
	return e
}

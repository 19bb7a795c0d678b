package wire

import (
	"fmt"
	"math"

	"github.com/cairnkv/cairn/internal/mpcodec"
)

// The hand-written codecs of the request path's messages (codec.go). Keys
// and field order follow the struct tags in messages.go; a field added
// there must be added here too (TestHandCodecsMatchLibrary fails until it
// is).

var (
	getReqFields         = []string{"bucket", "key", "opts"}
	siblingFields        = []string{"value", "written_at"}
	getRespFields        = []string{"found", "siblings", "context", "replicas", "fallbacks", "ring_version", "values_omitted", "sibling_count"}
	putReqFields         = []string{"bucket", "key", "value", "context", "opts", "forwarded"}
	writeRespFields      = []string{"context", "ring_version"}
	deleteReqFields      = []string{"bucket", "key", "context", "opts", "forwarded"}
	replicaGetReqFields  = []string{"partition", "bucket", "key", "for", "all_hints"}
	replicaGetRespFields = []string{"found", "object", "omitted", "live"}
	replicaPutReqFields  = []string{"partition", "bucket", "key", "object", "sync", "for"}
	replicaPutRespFields = []string{"durable"}
	replicaBatchFields   = []string{"items"}
	replicaResultFields  = []string{"durable", "err"}
	errorRespFields      = []string{"code", "message", "quorum"}
	quorumInfoFields     = []string{"op", "kind", "need", "got", "of", "timed_out", "replicas"}
	replicaInfoFields    = []string{"node", "ok", "primary", "err"}
)

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (m GetReq) appendBody(b []byte) []byte {
	b = append(b, 0x83)
	b = mpcodec.AppendString(appendKey(b, "bucket"), m.Bucket)
	b = mpcodec.AppendBytes(appendKey(b, "key"), m.Key)
	return m.Opts.appendMsgpack(appendKey(b, "opts"))
}

func (m *GetReq) readBody(r *mpcodec.Reader) error {
	isNil, err := r.Fields(1, getReqFields, func(i int) error {
		var err error
		switch i {
		case 0:
			m.Bucket, err = r.String()
		case 1:
			m.Key, err = r.Bytes()
		default:
			err = m.Opts.readMsgpack(r, 2)
		}
		return err
	})
	if isNil {
		*m = GetReq{}
	}
	return err
}

func (s *Sibling) appendMsgpack(b []byte) []byte {
	b = append(b, 0x82)
	b = mpcodec.AppendBytes(appendKey(b, "value"), s.Value)
	return mpcodec.AppendInt(appendKey(b, "written_at"), s.WrittenAt)
}

func (s *Sibling) readMsgpack(r *mpcodec.Reader, level int) error {
	isNil, err := r.Fields(level, siblingFields, func(i int) error {
		var err error
		if i == 0 {
			s.Value, err = r.Bytes()
		} else {
			s.WrittenAt, err = r.Int(math.MinInt64, math.MaxInt64)
		}
		return err
	})
	if isNil {
		*s = Sibling{}
	}
	return err
}

func (m GetResp) appendBody(b []byte) []byte {
	b = mpcodec.AppendMapLen(b, 4+b2i(len(m.Fallbacks) > 0)+b2i(m.RingVersion != 0)+b2i(m.ValuesOmitted)+b2i(m.SiblingCount != 0))
	b = mpcodec.AppendBool(appendKey(b, "found"), m.Found)
	b = appendKey(b, "siblings")
	if m.Siblings == nil {
		b = mpcodec.AppendNil(b)
	} else {
		b = mpcodec.AppendArrayLen(b, len(m.Siblings))
		for i := range m.Siblings {
			b = m.Siblings[i].appendMsgpack(b)
		}
	}
	b = mpcodec.AppendBytes(appendKey(b, "context"), m.Context)
	b = appendStrings(appendKey(b, "replicas"), m.Replicas)
	if len(m.Fallbacks) > 0 {
		b = appendStrings(appendKey(b, "fallbacks"), m.Fallbacks)
	}
	if m.RingVersion != 0 {
		b = mpcodec.AppendUint(appendKey(b, "ring_version"), m.RingVersion)
	}
	if m.ValuesOmitted {
		b = mpcodec.AppendBool(appendKey(b, "values_omitted"), true)
	}
	if m.SiblingCount != 0 {
		b = mpcodec.AppendInt(appendKey(b, "sibling_count"), int64(m.SiblingCount))
	}
	return b
}

func (m *GetResp) readBody(r *mpcodec.Reader) error {
	isNil, err := r.Fields(1, getRespFields, func(i int) error {
		var err error
		switch i {
		case 0:
			m.Found, err = r.Bool()
		case 1:
			err = readSiblings(r, 2, &m.Siblings)
		case 2:
			m.Context, err = r.Bytes()
		case 3:
			err = readStrings(r, 2, &m.Replicas)
		case 4:
			err = readStrings(r, 2, &m.Fallbacks)
		case 5:
			m.RingVersion, err = readUint64(r)
		case 6:
			m.ValuesOmitted, err = r.Bool()
		default:
			m.SiblingCount, err = readInt(r)
		}
		return err
	})
	if isNil {
		*m = GetResp{}
	}
	return err
}

func readSiblings(r *mpcodec.Reader, level int, dst *[]Sibling) error {
	n, err := r.ArrayLen(level)
	if err != nil || n < 0 {
		*dst = nil
		return err
	}
	// ArrayLen has checked that n items fit in the bytes left.
	s := make([]Sibling, n)
	for i := range s {
		if err := s[i].readMsgpack(r, level+1); err != nil {
			return err
		}
	}
	*dst = s
	return nil
}

func (m PutReq) appendBody(b []byte) []byte {
	b = mpcodec.AppendMapLen(b, 5+b2i(m.Forwarded))
	b = mpcodec.AppendString(appendKey(b, "bucket"), m.Bucket)
	b = mpcodec.AppendBytes(appendKey(b, "key"), m.Key)
	b = mpcodec.AppendBytes(appendKey(b, "value"), m.Value)
	b = mpcodec.AppendBytes(appendKey(b, "context"), m.Context)
	b = m.Opts.appendMsgpack(appendKey(b, "opts"))
	if m.Forwarded {
		b = mpcodec.AppendBool(appendKey(b, "forwarded"), true)
	}
	return b
}

func (m *PutReq) readBody(r *mpcodec.Reader) error {
	isNil, err := r.Fields(1, putReqFields, func(i int) error {
		var err error
		switch i {
		case 0:
			m.Bucket, err = r.String()
		case 1:
			m.Key, err = r.Bytes()
		case 2:
			m.Value, err = r.Bytes()
		case 3:
			m.Context, err = r.Bytes()
		case 4:
			err = m.Opts.readMsgpack(r, 2)
		default:
			m.Forwarded, err = r.Bool()
		}
		return err
	})
	if isNil {
		*m = PutReq{}
	}
	return err
}

// appendWriteResp and readWriteResp serve PutResp and DeleteResp, which
// have the same fields.
func appendWriteResp(b []byte, context []byte, ringVersion uint64) []byte {
	b = mpcodec.AppendMapLen(b, 1+b2i(ringVersion != 0))
	b = mpcodec.AppendBytes(appendKey(b, "context"), context)
	if ringVersion != 0 {
		b = mpcodec.AppendUint(appendKey(b, "ring_version"), ringVersion)
	}
	return b
}

func readWriteResp(r *mpcodec.Reader, context *[]byte, ringVersion *uint64) (isNil bool, err error) {
	return r.Fields(1, writeRespFields, func(i int) error {
		var err error
		if i == 0 {
			*context, err = r.Bytes()
		} else {
			*ringVersion, err = readUint64(r)
		}
		return err
	})
}

func (m PutResp) appendBody(b []byte) []byte {
	return appendWriteResp(b, m.Context, m.RingVersion)
}

func (m *PutResp) readBody(r *mpcodec.Reader) error {
	isNil, err := readWriteResp(r, &m.Context, &m.RingVersion)
	if isNil {
		*m = PutResp{}
	}
	return err
}

func (m DeleteReq) appendBody(b []byte) []byte {
	b = mpcodec.AppendMapLen(b, 4+b2i(m.Forwarded))
	b = mpcodec.AppendString(appendKey(b, "bucket"), m.Bucket)
	b = mpcodec.AppendBytes(appendKey(b, "key"), m.Key)
	b = mpcodec.AppendBytes(appendKey(b, "context"), m.Context)
	b = m.Opts.appendMsgpack(appendKey(b, "opts"))
	if m.Forwarded {
		b = mpcodec.AppendBool(appendKey(b, "forwarded"), true)
	}
	return b
}

func (m *DeleteReq) readBody(r *mpcodec.Reader) error {
	isNil, err := r.Fields(1, deleteReqFields, func(i int) error {
		var err error
		switch i {
		case 0:
			m.Bucket, err = r.String()
		case 1:
			m.Key, err = r.Bytes()
		case 2:
			m.Context, err = r.Bytes()
		case 3:
			err = m.Opts.readMsgpack(r, 2)
		default:
			m.Forwarded, err = r.Bool()
		}
		return err
	})
	if isNil {
		*m = DeleteReq{}
	}
	return err
}

func (m DeleteResp) appendBody(b []byte) []byte {
	return appendWriteResp(b, m.Context, m.RingVersion)
}

func (m *DeleteResp) readBody(r *mpcodec.Reader) error {
	isNil, err := readWriteResp(r, &m.Context, &m.RingVersion)
	if isNil {
		*m = DeleteResp{}
	}
	return err
}

func (m ReplicaGetReq) appendBody(b []byte) []byte {
	b = mpcodec.AppendMapLen(b, 3+b2i(m.For != "")+b2i(m.AllHints))
	b = mpcodec.AppendUint(appendKey(b, "partition"), uint64(m.Partition))
	b = mpcodec.AppendString(appendKey(b, "bucket"), m.Bucket)
	b = mpcodec.AppendBytes(appendKey(b, "key"), m.Key)
	if m.For != "" {
		b = mpcodec.AppendString(appendKey(b, "for"), m.For)
	}
	if m.AllHints {
		b = mpcodec.AppendBool(appendKey(b, "all_hints"), true)
	}
	return b
}

func (m *ReplicaGetReq) readBody(r *mpcodec.Reader) error {
	isNil, err := r.Fields(1, replicaGetReqFields, func(i int) error {
		var err error
		switch i {
		case 0:
			m.Partition, err = readUint32(r)
		case 1:
			m.Bucket, err = r.String()
		case 2:
			m.Key, err = r.Bytes()
		case 3:
			m.For, err = r.String()
		default:
			m.AllHints, err = r.Bool()
		}
		return err
	})
	if isNil {
		*m = ReplicaGetReq{}
	}
	return err
}

func (m ReplicaGetResp) appendBody(b []byte) []byte {
	b = mpcodec.AppendMapLen(b, 2+b2i(m.Omitted)+b2i(m.Live != 0))
	b = mpcodec.AppendBool(appendKey(b, "found"), m.Found)
	b = m.Object.AppendMsgpack(appendKey(b, "object"))
	if m.Omitted {
		b = mpcodec.AppendBool(appendKey(b, "omitted"), true)
	}
	if m.Live != 0 {
		b = mpcodec.AppendInt(appendKey(b, "live"), int64(m.Live))
	}
	return b
}

func (m *ReplicaGetResp) readBody(r *mpcodec.Reader) error {
	isNil, err := r.Fields(1, replicaGetRespFields, func(i int) error {
		var err error
		switch i {
		case 0:
			m.Found, err = r.Bool()
		case 1:
			err = m.Object.ReadMsgpack(r, 2)
		case 2:
			m.Omitted, err = r.Bool()
		default:
			m.Live, err = readInt(r)
		}
		return err
	})
	if isNil {
		*m = ReplicaGetResp{}
	}
	return err
}

func (m ReplicaPutReq) appendBody(b []byte) []byte {
	b = mpcodec.AppendMapLen(b, 5+b2i(m.For != ""))
	b = mpcodec.AppendUint(appendKey(b, "partition"), uint64(m.Partition))
	b = mpcodec.AppendString(appendKey(b, "bucket"), m.Bucket)
	b = mpcodec.AppendBytes(appendKey(b, "key"), m.Key)
	b = m.Object.AppendMsgpack(appendKey(b, "object"))
	b = mpcodec.AppendBool(appendKey(b, "sync"), m.Sync)
	if m.For != "" {
		b = mpcodec.AppendString(appendKey(b, "for"), m.For)
	}
	return b
}

func (m *ReplicaPutReq) readBody(r *mpcodec.Reader) error { return m.readAt(r, 1) }

// readAt reads the message as a map at level: 1 on its own, deeper as an
// item of a batch.
func (m *ReplicaPutReq) readAt(r *mpcodec.Reader, level int) error {
	isNil, err := r.Fields(level, replicaPutReqFields, func(i int) error {
		var err error
		switch i {
		case 0:
			m.Partition, err = readUint32(r)
		case 1:
			m.Bucket, err = r.String()
		case 2:
			m.Key, err = r.Bytes()
		case 3:
			err = m.Object.ReadMsgpack(r, level+1)
		case 4:
			m.Sync, err = r.Bool()
		default:
			m.For, err = r.String()
		}
		return err
	})
	if isNil {
		*m = ReplicaPutReq{}
	}
	return err
}

func (m ReplicaPutResp) appendBody(b []byte) []byte {
	return mpcodec.AppendBool(appendKey(append(b, 0x81), "durable"), m.Durable)
}

func (m *ReplicaPutResp) readBody(r *mpcodec.Reader) error {
	isNil, err := r.Fields(1, replicaPutRespFields, func(int) error {
		var err error
		m.Durable, err = r.Bool()
		return err
	})
	if isNil {
		*m = ReplicaPutResp{}
	}
	return err
}

func (m ReplicaPutBatchReq) appendBody(b []byte) []byte {
	if m.Items == nil {
		return mpcodec.AppendNil(appendKey(append(b, 0x81), "items"))
	}
	b = mpcodec.AppendArrayLen(appendKey(append(b, 0x81), "items"), len(m.Items))
	for i := range m.Items {
		b = m.Items[i].appendBody(b)
	}
	return b
}

func (m *ReplicaPutBatchReq) readBody(r *mpcodec.Reader) error {
	isNil, err := r.Fields(1, replicaBatchFields, func(int) error {
		var err error
		m.Items, err = readBatchItems(r, "a batch", func(it *ReplicaPutReq) error { return it.readAt(r, 3) })
		return err
	})
	if isNil {
		*m = ReplicaPutBatchReq{}
	}
	return err
}

// readBatchItems reads the items of a replica batch or of its answer, at
// most MaxReplicaBatch: the array's length is checked against that and
// against the bytes left before anything is allocated for it. nil reads
// as nil.
func readBatchItems[T any](r *mpcodec.Reader, what string, read func(*T) error) ([]T, error) {
	n, err := r.ArrayLen(2)
	if err != nil || n < 0 {
		return nil, err
	}
	if n > MaxReplicaBatch {
		return nil, fmt.Errorf("%w: %s of %d items, more than %d", mpcodec.ErrInvalid, what, n, MaxReplicaBatch)
	}
	items := make([]T, n)
	for i := range items {
		if err := read(&items[i]); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
	}
	return items, nil
}

func (m ReplicaPutBatchResp) appendBody(b []byte) []byte {
	b = appendKey(append(b, 0x81), "items")
	if m.Items == nil {
		return mpcodec.AppendNil(b)
	}
	b = mpcodec.AppendArrayLen(b, len(m.Items))
	for i := range m.Items {
		it := &m.Items[i]
		b = mpcodec.AppendMapLen(b, 1+b2i(it.Err != nil))
		b = mpcodec.AppendBool(appendKey(b, "durable"), it.Durable)
		if it.Err != nil {
			b = it.Err.appendMsgpack(appendKey(b, "err"))
		}
	}
	return b
}

// readBody reads at most MaxReplicaBatch items, as many as a request may
// carry.
func (m *ReplicaPutBatchResp) readBody(r *mpcodec.Reader) error {
	isNil, err := r.Fields(1, replicaBatchFields, func(int) error {
		var err error
		m.Items, err = readBatchItems(r, "an answer", func(it *ReplicaPutResult) error { return it.readMsgpack(r, 3) })
		return err
	})
	if isNil {
		*m = ReplicaPutBatchResp{}
	}
	return err
}

func (m *ReplicaPutResult) readMsgpack(r *mpcodec.Reader, level int) error {
	isNil, err := r.Fields(level, replicaResultFields, func(i int) error {
		if i == 0 {
			var err error
			m.Durable, err = r.Bool()
			return err
		}
		return readErrorResp(r, level+1, &m.Err)
	})
	if isNil {
		*m = ReplicaPutResult{}
	}
	return err
}

// appendMsgpack writes e as the library does, Quorum left out when nil.
func (e *ErrorResp) appendMsgpack(b []byte) []byte {
	b = mpcodec.AppendMapLen(b, 2+b2i(e.Quorum != nil))
	b = mpcodec.AppendUint(appendKey(b, "code"), uint64(e.Code))
	b = mpcodec.AppendString(appendKey(b, "message"), e.Message)
	if e.Quorum != nil {
		b = e.Quorum.appendMsgpack(appendKey(b, "quorum"))
	}
	return b
}

func (q *QuorumInfo) appendMsgpack(b []byte) []byte {
	b = mpcodec.AppendMapLen(b, 7)
	b = mpcodec.AppendString(appendKey(b, "op"), q.Op)
	b = mpcodec.AppendString(appendKey(b, "kind"), q.Kind)
	b = mpcodec.AppendInt(appendKey(b, "need"), int64(q.Need))
	b = mpcodec.AppendInt(appendKey(b, "got"), int64(q.Got))
	b = mpcodec.AppendInt(appendKey(b, "of"), int64(q.Of))
	b = mpcodec.AppendBool(appendKey(b, "timed_out"), q.TimedOut)
	b = appendKey(b, "replicas")
	if q.Replicas == nil {
		return mpcodec.AppendNil(b)
	}
	b = mpcodec.AppendArrayLen(b, len(q.Replicas))
	for _, ri := range q.Replicas {
		b = mpcodec.AppendMapLen(b, 3+b2i(ri.Err != ""))
		b = mpcodec.AppendString(appendKey(b, "node"), ri.Node)
		b = mpcodec.AppendBool(appendKey(b, "ok"), ri.OK)
		b = mpcodec.AppendBool(appendKey(b, "primary"), ri.Primary)
		if ri.Err != "" {
			b = mpcodec.AppendString(appendKey(b, "err"), ri.Err)
		}
	}
	return b
}

// readPointer reads a pointer-to-struct field as the library does: nil
// sets it to nil, a map fills a new T, set decoding the value of names[i].
func readPointer[T any](r *mpcodec.Reader, level int, dst **T, names []string, set func(v *T, i int) error) error {
	if r.NextIsNil() {
		_, err := r.MapLen(level)
		*dst = nil
		return err
	}
	v := new(T)
	*dst = v
	_, err := r.Fields(level, names, func(i int) error { return set(v, i) })
	return err
}

func readErrorResp(r *mpcodec.Reader, level int, dst **ErrorResp) error {
	return readPointer(r, level, dst, errorRespFields, func(e *ErrorResp, i int) error {
		var err error
		switch i {
		case 0:
			var c uint64
			c, err = r.Uint(math.MaxUint8)
			e.Code = Code(c)
		case 1:
			e.Message, err = r.String()
		default:
			err = readQuorumInfo(r, level+1, &e.Quorum)
		}
		return err
	})
}

func readQuorumInfo(r *mpcodec.Reader, level int, dst **QuorumInfo) error {
	return readPointer(r, level, dst, quorumInfoFields, func(q *QuorumInfo, i int) error {
		var err error
		switch i {
		case 0:
			q.Op, err = r.String()
		case 1:
			q.Kind, err = r.String()
		case 2:
			q.Need, err = readInt(r)
		case 3:
			q.Got, err = readInt(r)
		case 4:
			q.Of, err = readInt(r)
		case 5:
			q.TimedOut, err = r.Bool()
		default:
			err = readReplicaInfos(r, level+1, &q.Replicas)
		}
		return err
	})
}

func readReplicaInfos(r *mpcodec.Reader, level int, dst *[]ReplicaInfo) error {
	n, err := r.ArrayLen(level)
	if err != nil || n < 0 {
		*dst = nil
		return err
	}
	// ArrayLen has checked that n items fit in the bytes left.
	s := make([]ReplicaInfo, n)
	for i := range s {
		ri := &s[i]
		isNil, err := r.Fields(level+1, replicaInfoFields, func(j int) error {
			var err error
			switch j {
			case 0:
				ri.Node, err = r.String()
			case 1:
				ri.OK, err = r.Bool()
			case 2:
				ri.Primary, err = r.Bool()
			default:
				ri.Err, err = r.String()
			}
			return err
		})
		if err != nil {
			return err
		}
		if isNil {
			*ri = ReplicaInfo{}
		}
	}
	*dst = s
	return nil
}

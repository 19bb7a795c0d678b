package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/stretchr/testify/require"
)

func sampleObject() dvv.Object {
	return mustUpdate(mustUpdate(dvv.Object{}.Update(nil, "n1.aa", []byte("one"), false, 1)).
		Update(nil, "n2.bb", []byte("two"), false, 2))
}

// messages holds one filled-in value of every message type, so the round
// trip and the fuzz targets cover them all.
func messages() map[Type]any {
	obj := sampleObject()
	return map[Type]any{
		TypeHello:   &Hello{Cluster: "c", Node: "n1"},
		TypeHelloOK: &HelloOK{Node: "n2", Version: Version},
		TypeError: &ErrorResp{Code: CodeQuorum, Message: "m", Quorum: &QuorumInfo{Op: "put", Kind: "w", Need: 2, Got: 1, Of: 3,
			Replicas: []ReplicaInfo{{Node: "n1", OK: true, Primary: true}, {Node: "n2", Err: "timeout"}}}},
		TypeGet:            &GetReq{Bucket: "b", Key: []byte("k"), Opts: Options{R: QuorumAll, W: 2, PR: QuorumDefault, TimeoutMs: 10}},
		TypeGetResp:        &GetResp{Found: true, Siblings: []Sibling{{Value: []byte("v"), WrittenAt: 7}}, Context: EncodeContext(obj.VV), Replicas: []string{"n1"}},
		TypePut:            &PutReq{Bucket: "b", Key: []byte("k"), Value: []byte("v"), Context: []byte{1}, Opts: DefaultOptions(), Forwarded: true},
		TypePutResp:        &PutResp{Context: EncodeContext(obj.VV)},
		TypeDelete:         &DeleteReq{Bucket: "b", Key: []byte("k"), Context: EncodeContext(obj.VV), Opts: DefaultOptions()},
		TypeDeleteResp:     &DeleteResp{Context: []byte{1, 2}},
		TypeReplicaGet:     &ReplicaGetReq{Partition: 7, Bucket: "b", Key: []byte("k")},
		TypeReplicaGetResp: &ReplicaGetResp{Found: true, Object: obj},
		TypeReplicaPut:     &ReplicaPutReq{Partition: 9, Bucket: "b", Key: []byte("k"), Object: obj, Sync: true, For: "n3"},
		TypeReplicaPutResp: &ReplicaPutResp{Durable: true},
		TypeReplicaPutBatch: &ReplicaPutBatchReq{Items: []ReplicaPutReq{{Partition: 9, Bucket: "b", Key: []byte("k"), Object: obj, Sync: true},
			{Partition: 10, Bucket: "b", Key: []byte("k2"), Object: obj, For: "n3"}}},
		TypeReplicaPutBatchResp: &ReplicaPutBatchResp{Items: []ReplicaPutResult{{Durable: true}, {Err: &ErrorResp{Code: CodeInvalidArgument, Message: "m"}}}},
		TypeMembersResp:         &MembersResp{Members: []MemberInfo{{Name: "n1", Addr: "a", Gossip: "g", Status: "active", Version: 3, Alive: true}}},
		TypeRingResp:            &RingResp{Partitions: 1024, N: 3, Version: 5, Members: []string{"n1"}, Owned: map[string]int{"n1": 1024}},
		TypeStatusResp:          &StatusResp{Node: "n1", Addr: "a", Cluster: "c", UptimeMs: 5, RingVersion: 1, Partitions: 8, N: 1, Members: 1, Alive: 1, DiskBytes: 9, Admin: "127.0.0.1:7301"},
		TypeDebugReplicas:       &DebugReplicasReq{Bucket: "b", Key: []byte("k"), TimeoutMs: 100},
		TypeDebugReplicasResp:   &DebugReplicasResp{Partition: 3, Replicas: []ReplicaCopy{{Node: "n1", Primary: true, Found: true, Object: obj}, {Node: "n2", Err: "timeout"}}},
		TypeAAEQuery:            &AAEQueryReq{Partition: 5, Kind: 3, Branches: []int{0, 7}, Segments: []int{1}, End: true},
		TypeAAEAnswer:           &AAEAnswerResp{Segments: 1024, Branches: 32, Root: 1 << 63, Keys: 9, Hashes: []uint64{1, 2}, KeyList: []AAEKey{{Bucket: "b", Key: []byte("k"), Version: 1<<64 - 1}}},
		TypeAAEFetch:            &AAEFetchReq{Partition: 5, Keys: []AAEKeyRef{{Bucket: "b", Key: []byte("k")}}},
		TypeAAEFetchResp:        &AAEFetchResp{Objects: []AAEObject{{Bucket: "b", Key: []byte("k"), Object: obj}}, Answered: 2},
		TypeAAEPush:             &AAEPushReq{Partition: 5, Objects: []AAEObject{{Bucket: "b", Key: []byte("k"), Object: obj}}},
		TypeAAEPushResp:         &AAEPushResp{Applied: 1},
		TypeAAEStatus:           &AAEStatusReq{Trees: true, TreesFrom: 3},
		TypeAAEStatusResp: &AAEStatusResp{Node: "n1", Enabled: true, Partitions: 3, InSync: 2, NeverExchanged: 1, Trees: 4, NotReady: 1,
			OldestExchangeMs: -1, Running: 1, Exchanges: 7, Failures: 1, KeysFetched: 2, KeysPushed: 3, BytesSent: 10, BytesReceived: 11, Rebuilds: 1,
			TreeList:  []AAETreeInfo{{Partition: 3, Root: 5, Keys: 2, Ready: true, Replicated: true, LastExchangeMs: 12, InSync: true}},
			TreesNext: 4, TreesMore: true},
		TypeTransferPush:     &TransferPushReq{Partition: 5, Next: 9, Objects: []AAEObject{{Bucket: "b", Key: []byte("k"), Object: obj}}},
		TypeTransferPushResp: &TransferPushResp{Applied: 1},
		TypeTransferDone:     &TransferDoneReq{Partition: 5, Next: 9, Keys: 10, Bytes: 100},
		TypeTransferDoneResp: &TransferDoneResp{},
		TypeTransfers:        &TransfersReq{Local: true},
		TypeLeave:            &LeaveReq{Name: "n4"},
		TypeLeaveResp:        &LeaveResp{},
		TypeReplace:          &ReplaceReq{Old: "n3", New: "n6"},
		TypeReplaceResp:      &ReplaceResp{},
		TypeJoin:             &JoinReq{Seeds: []string{"10.0.0.1:7201"}},
		TypeJoinResp:         &JoinResp{},
		TypeBuckets:          &BucketsReq{Name: "b"},
		TypeBucketsResp:      &BucketsResp{Buckets: []BucketInfo{{Name: "b", Created: true, N: 5, R: 3, W: QuorumDefault, PR: QuorumDefault, PW: QuorumDefault, DW: QuorumAll}}},
		TypeBucketSet:        &BucketSetReq{Name: "b", Create: true},
		TypeBucketSetResp:    &BucketSetResp{Bucket: BucketInfo{Name: "b"}},
		TypeCounterIncr:      &CounterIncrReq{Bucket: "b", Key: []byte("k"), Delta: -3, Opts: DefaultOptions(), Forwarded: true},
		TypeCounterIncrResp:  &CounterIncrResp{Value: -3},
		TypeCounterGet:       &CounterGetReq{Bucket: "b", Key: []byte("k"), Opts: Options{R: QuorumAll}},
		TypeCounterGetResp:   &CounterGetResp{Found: true, Value: 8000, Replicas: []string{"n1", "n2"}},
		TypeSetUpdate:        &SetUpdateReq{Bucket: "b", Key: []byte("k"), Element: []byte("e"), Remove: true, Context: EncodeContext(obj.VV), Opts: DefaultOptions()},
		TypeSetUpdateResp:    &SetUpdateResp{Context: EncodeContext(obj.VV)},
		TypeSetGet:           &SetGetReq{Bucket: "b", Key: []byte("k"), Opts: DefaultOptions()},
		TypeSetGetResp:       &SetGetResp{Found: true, Elements: [][]byte{[]byte("a"), []byte("b")}, Context: EncodeContext(obj.VV), Replicas: []string{"n1"}},
		TypeTransfersResp: &TransfersResp{Changing: true, Members: []string{"n1"}, Next: []string{"n1", "n2"}, Flipped: 1, Moving: 2,
			Transfers:   []TransferInfo{{Partition: 3, From: "n1", To: "n2", State: "streaming", Keys: 1, Bytes: 2, TotalKeys: 3, TotalBytes: 4, KeysPerSec: 5, BytesPerSec: 6, EtaMs: 7}},
			Unreachable: []string{"n3"}},
	}
}

func TestFrameRoundTripEveryMessage(t *testing.T) {
	for typ, msg := range messages() {
		t.Run(typ.String(), func(t *testing.T) {
			raw, err := AppendFrame(nil, 42, typ, msg, DefaultMaxFrame)
			require.NoError(t, err)
			payload, err := ReadFrame(bytes.NewReader(raw), DefaultMaxFrame)
			require.NoError(t, err)
			f, err := ParseFrame(payload)
			require.NoError(t, err)
			require.Equal(t, uint64(42), f.ID)
			require.Equal(t, typ, f.Type)
			back := newOf(msg)
			require.NoError(t, Decode(f.Body, back))
			require.Equal(t, msg, back)
		})
	}
}

// newOf returns a new zero value of the pointer type of msg.
func newOf(msg any) any {
	switch msg.(type) {
	case *Hello:
		return &Hello{}
	case *HelloOK:
		return &HelloOK{}
	case *ErrorResp:
		return &ErrorResp{}
	case *GetReq:
		return &GetReq{}
	case *GetResp:
		return &GetResp{}
	case *PutReq:
		return &PutReq{}
	case *PutResp:
		return &PutResp{}
	case *DeleteReq:
		return &DeleteReq{}
	case *DeleteResp:
		return &DeleteResp{}
	case *ReplicaGetReq:
		return &ReplicaGetReq{}
	case *ReplicaGetResp:
		return &ReplicaGetResp{}
	case *ReplicaPutReq:
		return &ReplicaPutReq{}
	case *ReplicaPutResp:
		return &ReplicaPutResp{}
	case *ReplicaPutBatchReq:
		return &ReplicaPutBatchReq{}
	case *ReplicaPutBatchResp:
		return &ReplicaPutBatchResp{}
	case *MembersResp:
		return &MembersResp{}
	case *RingResp:
		return &RingResp{}
	case *StatusResp:
		return &StatusResp{}
	case *DebugReplicasReq:
		return &DebugReplicasReq{}
	case *HandoffReq:
		return &HandoffReq{}
	case *HandoffResp:
		return &HandoffResp{}
	case *HintsResp:
		return &HintsResp{}
	case *DebugReplicasResp:
		return &DebugReplicasResp{}
	case *AAEQueryReq:
		return &AAEQueryReq{}
	case *AAEAnswerResp:
		return &AAEAnswerResp{}
	case *AAEFetchReq:
		return &AAEFetchReq{}
	case *AAEFetchResp:
		return &AAEFetchResp{}
	case *AAEPushReq:
		return &AAEPushReq{}
	case *AAEPushResp:
		return &AAEPushResp{}
	case *AAEStatusReq:
		return &AAEStatusReq{}
	case *AAEStatusResp:
		return &AAEStatusResp{}
	case *TransferPushReq:
		return &TransferPushReq{}
	case *TransferPushResp:
		return &TransferPushResp{}
	case *TransferDoneReq:
		return &TransferDoneReq{}
	case *TransferDoneResp:
		return &TransferDoneResp{}
	case *LeaveReq:
		return &LeaveReq{}
	case *ReplaceReq:
		return &ReplaceReq{}
	case *JoinReq:
		return &JoinReq{}
	case *JoinResp:
		return &JoinResp{}
	case *BucketsReq:
		return &BucketsReq{}
	case *BucketsResp:
		return &BucketsResp{}
	case *BucketSetReq:
		return &BucketSetReq{}
	case *BucketSetResp:
		return &BucketSetResp{}
	case *CounterIncrReq:
		return &CounterIncrReq{}
	case *CounterIncrResp:
		return &CounterIncrResp{}
	case *CounterGetReq:
		return &CounterGetReq{}
	case *CounterGetResp:
		return &CounterGetResp{}
	case *SetUpdateReq:
		return &SetUpdateReq{}
	case *SetUpdateResp:
		return &SetUpdateResp{}
	case *SetGetReq:
		return &SetGetReq{}
	case *SetGetResp:
		return &SetGetResp{}
	case *ReplaceResp:
		return &ReplaceResp{}
	case *LeaveResp:
		return &LeaveResp{}
	case *TransfersReq:
		return &TransfersReq{}
	case *TransfersResp:
		return &TransfersResp{}
	}
	panic(fmt.Sprintf("no constructor for %T", msg))
}

func TestFramesBackToBack(t *testing.T) {
	var raw []byte
	var err error
	for i := range 100 {
		raw, err = AppendFrame(raw, uint64(i), TypePing, struct{}{}, DefaultMaxFrame)
		require.NoError(t, err)
	}
	r := bufio.NewReader(bytes.NewReader(raw))
	for i := range 100 {
		payload, err := ReadFrame(r, DefaultMaxFrame)
		require.NoError(t, err)
		f, err := ParseFrame(payload)
		require.NoError(t, err)
		require.Equal(t, uint64(i), f.ID)
	}
	_, err = ReadFrame(r, DefaultMaxFrame)
	require.ErrorIs(t, err, io.EOF)
}

func TestAppendFrameRefusesOversizedBody(t *testing.T) {
	dst := []byte("keep")
	out, err := AppendFrame(dst, 1, TypePut, &PutReq{Value: make([]byte, 2000)}, 1000)
	require.ErrorIs(t, err, cairn.ErrInvalidArgument)
	require.Equal(t, "keep", string(out))
}

func header(n uint32) []byte {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], n)
	return h[:]
}

// allocated runs fn and returns the bytes it allocated.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestReadFrameChecksLengthBeforeAllocating(t *testing.T) {
	var err error
	n := allocated(func() {
		_, err = ReadFrame(bytes.NewReader(append(header(2<<30), 1, 2, 3)), DefaultMaxFrame)
	})
	require.ErrorIs(t, err, ErrFrameTooLarge)
	require.ErrorIs(t, err, cairn.ErrProtocol)
	require.Less(t, n, uint64(64<<10))

	// Within the limit but the bytes never come: memory follows what arrived.
	n = allocated(func() {
		_, err = ReadFrame(bytes.NewReader(append(header(DefaultMaxFrame), make([]byte, 100)...)), DefaultMaxFrame)
	})
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Less(t, n, uint64(256<<10))

	_, err = ReadFrame(bytes.NewReader(header(0)), DefaultMaxFrame)
	require.ErrorIs(t, err, cairn.ErrProtocol)
}

func TestReadFrameLargeBody(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 5<<20)
	raw, err := AppendFrame(nil, 1, TypePut, &PutReq{Bucket: "b", Key: []byte("k"), Value: body}, DefaultMaxFrame)
	require.NoError(t, err)
	payload, err := ReadFrame(bytes.NewReader(raw), DefaultMaxFrame)
	require.NoError(t, err)
	f, err := ParseFrame(payload)
	require.NoError(t, err)
	var req PutReq
	require.NoError(t, Decode(f.Body, &req))
	require.Equal(t, body, req.Value)
}

// A hostile payload is a protocol error: ParseFrame refuses it, or, for the
// types whose bodies it leaves to their hand-written decoders, Decode
// refuses the body and CheckBody names it a protocol error (the connection
// closes either way). Both kinds of type are tried: get (hand-coded) and
// members (0x1f, decoded by the library).
func TestParseFrameRejectsHostilePayloads(t *testing.T) {
	envelope := map[string][]byte{
		"not an array":       {0x01},
		"array of 2":         {0x92, 0x01, 0x01},
		"4 GiB string id":    {0x93, 0xdb, 0xff, 0xff, 0xff, 0xff},
		"negative id":        {0x93, 0xff, 0x0b, 0xc0},
		"nil id":             {0x93, 0xc0, 0x0b, 0xc0},
		"type beyond uint16": {0x93, 0x01, 0xce, 0x00, 0x01, 0x00, 0x00, 0xc0},
		"random bytes":       {0xc1, 0x00, 0x17},
	}
	for name, p := range envelope {
		_, err := ParseFrame(p)
		require.ErrorIs(t, err, cairn.ErrProtocol, name)
	}
	bodies := map[string][]byte{
		"4 GiB binary body":      {0xc6, 0xff, 0xff, 0xff, 0xff},
		"4 GiB array body":       {0xdd, 0xff, 0xff, 0xff, 0xff},
		"trailing bytes":         {0xc0, 0xc0},
		"no body":                {},
		"map body of 2^32 pairs": {0xdf, 0xff, 0xff, 0xff, 0xff},
		"deeply nested body":     bytes.Repeat([]byte{0x91}, 40),
		"nested under a key":     append(append([]byte{0x81, 0xa1, 'x'}, bytes.Repeat([]byte{0x91}, 15)...), 0x01),
		"extension in a field":   {0x81, 0xa3, 'k', 'e', 'y', 0xd4, 0x01, 0x01},
		"truncated key":          {0x81, 0xa3, 'k', 'e'},
	}
	for name, body := range bodies {
		for _, typ := range []Type{TypeGet, TypeMembers} {
			p := append([]byte{0x93, 0x01, byte(typ)}, body...)
			f, err := ParseFrame(p)
			if err == nil {
				require.True(t, handCoded(typ), "%s: ParseFrame let a %v body through", name, typ)
				require.ErrorIs(t, Decode(f.Body, &GetReq{}), cairn.ErrInvalidArgument, name)
				err = f.CheckBody()
			}
			require.ErrorIs(t, err, cairn.ErrProtocol, "%s as %v", name, typ)
		}
	}
	// Nesting up to the limit (16 levels, the envelope included) is fine
	// in an unknown field.
	f, err := ParseFrame(append([]byte{0x93, 0x01, byte(TypeGet), 0x81, 0xa1, 'x'}, append(bytes.Repeat([]byte{0x91}, 14), 0x01)...))
	require.NoError(t, err)
	require.NoError(t, Decode(f.Body, &GetReq{}))
	require.NoError(t, f.CheckBody())
}

func TestDecodeWrongShapeIsInvalidArgument(t *testing.T) {
	raw, err := AppendFrame(nil, 1, TypeGet, map[string]any{"bucket": 5, "key": []int{1}}, DefaultMaxFrame)
	require.NoError(t, err)
	f, err := ParseFrame(raw[4:])
	require.NoError(t, err)
	var req GetReq
	require.ErrorIs(t, Decode(f.Body, &req), cairn.ErrInvalidArgument)
}

func TestDecodeKeepsDefaultsForMissingFields(t *testing.T) {
	raw, err := AppendFrame(nil, 1, TypeGet, map[string]any{"bucket": "b", "key": []byte("k")}, DefaultMaxFrame)
	require.NoError(t, err)
	f, err := ParseFrame(raw[4:])
	require.NoError(t, err)
	req := GetReq{Opts: DefaultOptions()}
	require.NoError(t, Decode(f.Body, &req))
	require.Equal(t, DefaultOptions(), req.Opts)
	require.Equal(t, "b", req.Bucket)
}

func TestPreamble(t *testing.T) {
	require.NoError(t, ReadPreamble(bytes.NewReader(Preamble[:])))
	require.ErrorIs(t, ReadPreamble(bytes.NewReader([]byte("GET / HTTP/1.1\r\n"))), cairn.ErrProtocol)
	require.ErrorIs(t, ReadPreamble(bytes.NewReader([]byte{'C', 'A', 'I', 'R', 9})), cairn.ErrProtocol)
	require.ErrorIs(t, ReadPreamble(bytes.NewReader([]byte{'C', 'A'})), io.ErrUnexpectedEOF)
}

func TestErrorsCrossTheWire(t *testing.T) {
	roundTrip := func(err error) error {
		raw, e := AppendFrame(nil, 1, TypeError, ErrorFor(err), DefaultMaxFrame)
		require.NoError(t, e)
		f, e := ParseFrame(raw[4:])
		require.NoError(t, e)
		var resp ErrorResp
		require.NoError(t, Decode(f.Body, &resp))
		return resp.Err()
	}
	for _, sentinel := range []error{cairn.ErrNotFound, cairn.ErrTimeout, cairn.ErrInvalidArgument, cairn.ErrOverloaded,
		cairn.ErrUnauthorized, cairn.ErrProtocol, cairn.ErrUnavailable, cairn.ErrInternal} {
		orig := fmt.Errorf("%w: details", sentinel)
		got := roundTrip(orig)
		require.ErrorIs(t, got, sentinel)
		require.Equal(t, orig.Error(), got.Error())
	}
	qe := &cairn.QuorumError{Op: "put", Kind: "w", Need: 2, Got: 1, Of: 3, TimedOut: true, Replicas: []cairn.ReplicaOutcome{
		{Node: "n1", OK: true, Primary: true}, {Node: "n2", Primary: true, Err: "timeout"}, {Node: "n3", Err: "unreachable"}}}
	got := roundTrip(fmt.Errorf("wrapped: %w", qe))
	var back *cairn.QuorumError
	require.True(t, errors.As(got, &back))
	require.Equal(t, qe, back)
	require.ErrorIs(t, got, cairn.ErrQuorum)
	require.ErrorIs(t, got, cairn.ErrTimeout)
	require.Contains(t, got.Error(), "need w=2, got 1 of 3")

	require.ErrorIs(t, roundTrip(context.DeadlineExceeded), cairn.ErrTimeout)
	unknown := roundTrip(errors.New("disk on fire"))
	require.ErrorIs(t, unknown, cairn.ErrInternal)
	require.Contains(t, unknown.Error(), "disk on fire")
	require.ErrorIs(t, ErrorResp{Code: 200, Message: "from the future"}.Err(), cairn.ErrInternal)
}

func TestQuorumParseAndResolve(t *testing.T) {
	for in, want := range map[string]Quorum{"one": QuorumOne, "QUORUM": QuorumMajority, "all": QuorumAll, "0": 0, "3": 3, "default": QuorumDefault} {
		q, err := ParseQuorum(in)
		require.NoError(t, err, in)
		require.Equal(t, want, q, in)
	}
	for _, bad := range []string{"-1", "two", "1.5", "99999999"} {
		_, err := ParseQuorum(bad)
		require.Error(t, err, bad)
	}
	for _, c := range []struct {
		q         Quorum
		n, def, v int
	}{{QuorumDefault, 3, 2, 2}, {QuorumOne, 5, 2, 1}, {QuorumMajority, 3, 1, 2}, {QuorumMajority, 4, 1, 3}, {QuorumMajority, 5, 1, 3}, {QuorumAll, 5, 1, 5}, {0, 3, 2, 0}, {4, 3, 2, 4}} {
		v, err := c.q.Resolve(c.n, c.def)
		require.NoError(t, err)
		require.Equal(t, c.v, v, "%v n=%d", c.q, c.n)
	}
	_, err := Quorum(-9).Resolve(3, 2)
	require.Error(t, err)
	for _, q := range []Quorum{QuorumDefault, QuorumOne, QuorumMajority, QuorumAll, 0, 7} {
		back, err := ParseQuorum(q.String())
		require.NoError(t, err)
		require.Equal(t, q, back)
	}
}

func TestValidateKeyAndValue(t *testing.T) {
	require.NoError(t, ValidateKey("b", []byte("k"), 10))
	require.NoError(t, ValidateKey(string(bytes.Repeat([]byte("é"), 127)), bytes.Repeat([]byte{0}, 10), 10))
	for name, c := range map[string]struct {
		bucket string
		key    []byte
	}{
		"empty bucket": {"", []byte("k")}, "long bucket": {string(make([]byte, 256)), []byte("k")},
		"bad utf8": {"\xff", []byte("k")}, "empty key": {"b", nil}, "long key": {"b", make([]byte, 11)},
	} {
		require.ErrorIs(t, ValidateKey(c.bucket, c.key, 10), cairn.ErrInvalidArgument, name)
	}
	require.NoError(t, ValidateValue(nil, 0))
	require.NoError(t, ValidateValue(make([]byte, 5), 5))
	require.ErrorIs(t, ValidateValue(make([]byte, 6), 5), cairn.ErrInvalidArgument)
}

func TestContextRoundTripAndHostileContexts(t *testing.T) {
	vv := sampleObject().VV
	back, err := DecodeContext(EncodeContext(vv))
	require.NoError(t, err)
	require.True(t, vv.Equal(back))
	require.Equal(t, EncodeContext(vv), EncodeContext(back), "encoding is deterministic")
	require.Nil(t, EncodeContext(nil))
	empty, err := DecodeContext(nil)
	require.NoError(t, err)
	require.Empty(t, empty)

	good := EncodeContext(vv)
	cases := map[string][]byte{
		"unknown version": append([]byte{9}, good[1:]...),
		"truncated":       good[:len(good)-1],
		"4 GiB map":       {1, 0xdf, 0xff, 0xff, 0xff, 0xff},
		"not a map":       {1, 0x93, 1, 2, 3},
		"empty actor":     append([]byte{1, 0x81, 0xa0}, 0x01),
		"duplicate actor": {1, 0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02},
		"too long":        append([]byte{1}, make([]byte, maxContextBytes)...),
		// No node mints a counter of 2^63 or more; 2^64-1 would make the
		// next dot wrap to 0, a dot every vector covers.
		"counter 2^64-1": EncodeContext(dvv.VV{"n1.a": math.MaxUint64}),
		"counter 2^63":   EncodeContext(dvv.VV{"n1.a": 1 << 63}),
	}
	for name, b := range cases {
		_, err := DecodeContext(b)
		require.ErrorIs(t, err, cairn.ErrInvalidArgument, name)
	}
	highest, err := DecodeContext(EncodeContext(dvv.VV{"n1.a": dvv.MaxCounter}))
	require.NoError(t, err, "the highest counter a dot may carry is a valid context entry")
	require.Equal(t, dvv.VV{"n1.a": dvv.MaxCounter}, highest)
	_, err = DecodeContext(EncodeContext(dvv.VV{"n1.a": math.MaxUint64}))
	require.ErrorContains(t, err, `context names counter 18446744073709551615 for actor "n1.a"`)
	// A zero counter says nothing and is dropped, so equal contexts stay
	// equal byte for byte.
	zero, err := DecodeContext([]byte{1, 0x82, 0xa1, 'a', 0x00, 0xa1, 'b', 0x01})
	require.NoError(t, err)
	require.Equal(t, dvv.VV{"b": 1}, zero)
}

// A context may carry the stamp of its read (last-write-wins buckets);
// one without a stamp is the version-1 context it always was, and reads
// as stamp 0.
func TestContextStamp(t *testing.T) {
	vv := sampleObject().VV
	const stamp = 1_700_000_000_123_456_789
	b := EncodeContextStamp(vv, stamp)
	require.Equal(t, byte(2), b[0])
	back, gotStamp, err := DecodeContextStamp(b)
	require.NoError(t, err)
	require.True(t, vv.Equal(back))
	require.Equal(t, int64(stamp), gotStamp)
	plain, err := DecodeContext(b)
	require.NoError(t, err)
	require.True(t, vv.Equal(plain), "DecodeContext reads a stamped context's vector")

	require.Equal(t, EncodeContext(vv), EncodeContextStamp(vv, 0), "no stamp: a version-1 context")
	back, gotStamp, err = DecodeContextStamp(EncodeContext(vv))
	require.NoError(t, err)
	require.True(t, vv.Equal(back))
	require.Zero(t, gotStamp)
	require.Nil(t, EncodeContextStamp(nil, stamp), "a read that found nothing saw no write")

	v1 := EncodeContext(vv)
	for name, bad := range map[string][]byte{
		"no stamp":       append([]byte{2}, v1[1:]...),
		"zero stamp":     append(append([]byte{2}, v1[1:]...), 0x00),
		"negative stamp": append(append([]byte{2}, v1[1:]...), 0xff),
		"string stamp":   append(append([]byte{2}, v1[1:]...), 0xa1, 'x'),
		"trailing bytes": append(slices.Clone(b), 0x01),
		"stamp on v1":    append(slices.Clone(v1), 0x01),
	} {
		_, _, err := DecodeContextStamp(bad)
		require.ErrorIs(t, err, cairn.ErrInvalidArgument, name)
	}
}

func TestTypeNames(t *testing.T) {
	require.Equal(t, "get", TypeGet.String())
	require.Equal(t, "unknown", Type(999).String())
	require.False(t, Type(999).Known())
	require.True(t, TypeReplicaPut.Known())
}

// The context of an empty set is not the absent context: it decodes to
// an empty vector.
func TestEmptySetContext(t *testing.T) {
	b := EncodeSetContext(nil)
	require.NotEmpty(t, b)
	vv, err := DecodeContext(b)
	require.NoError(t, err)
	require.Empty(t, vv)
	vv, err = DecodeContext(EncodeSetContext(dvv.VV{"a": 2}))
	require.NoError(t, err)
	require.Equal(t, dvv.VV{"a": 2}, vv)
}

// A set's answer that Fits a frame is one AppendFrame takes.
func TestSetGetRespFits(t *testing.T) {
	resp := SetGetResp{Found: true, Context: EncodeSetContext(dvv.VV{"n1.aa": 7}), Replicas: []string{"n1", "n2"}}
	for i := range 5000 {
		resp.Elements = append(resp.Elements, fmt.Appendf(nil, "element-%d", i))
	}
	raw, err := AppendFrame(nil, 1, TypeSetGetResp, &resp, DefaultMaxFrame)
	require.NoError(t, err)
	require.True(t, resp.Fits(len(raw)+messageOverheadBytes+64))
	require.False(t, resp.Fits(len(raw)/2))
}

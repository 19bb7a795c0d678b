package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/mpcheck"
	"github.com/cockroachdb/pebble/v2"
	"github.com/vmihailenco/msgpack/v5"
)

// Hinted handoff (DESIGN section 6). A node standing in for an unreachable
// primary keeps what it was sent under a hint: the intended owner, the
// partition, and the key. Hints live apart from the node's own data, in one
// queue per owner ordered by (partition, bucket, key), so a key written many
// times during an outage is one hint, merged by dvv.Sync, not many.
//
// A hint is delivered, then marked delivered, and deleted only when its
// partition's episode closes: when no hint of the partition, for any owner,
// is waiting any more. The wait keeps the actor-incarnation rule (DESIGN
// section 3) for the actor that mints dots into hints when a fallback has to
// coordinate a write itself: that actor holds every dot it minted until it
// is retired together with the hints, and the next episode mints under a new
// one.

// Sub-kinds under prefixHint.
const (
	hintRecord byte = 'r' // 'h' 'r' | uvarint(len owner) | owner | partition BE | uvarint(len bucket) | bucket | key
	hintCursor byte = 'c' // 'h' 'c' | owner -> the hint key after which delivery resumes
)

// incarnationHintActor keys the actor that mints into hints of a partition:
// 'i' 'h' | partition BE -> actor id.
const incarnationHintActor byte = 'h'

// hintFormatV1 is the first byte of a hint record.
const hintFormatV1 byte = 1

// MaxOwnerBytes bounds an owner's name in a hint key.
const MaxOwnerBytes = 255

// HintRef names one hint: the key, its partition, and the node it is for.
type HintRef struct {
	Owner     string
	Partition uint32
	Bucket    string
	Key       []byte
}

// Hint is a stored hint.
type Hint struct {
	HintRef
	Object dvv.Object
	// Delivered is set once the owner acknowledged this very object; a
	// later write to the hint clears it.
	Delivered bool
	// Since is when the hint last became undelivered (Unix nanoseconds, from
	// the caller's clock).
	Since int64
	// Pos is the hint's position in its owner's queue, for SetHintCursor.
	Pos []byte
	// Size is the record's size in bytes.
	Size int
}

type hintValue struct {
	Object    dvv.Object `msgpack:"o"`
	Delivered bool       `msgpack:"d"`
	Since     int64      `msgpack:"s"`
}

// HintOwnerStats describes one owner's queue on this node.
type HintOwnerStats struct {
	Pending   int // hints not yet acknowledged by the owner
	Delivered int // acknowledged, kept until their partitions' episodes close
	// Bytes is what every hint record of the owner takes, keys and values
	// (hintRecordSize): exact after Open, and after a failed write possibly
	// above what is stored, never below (the cap relies on it).
	Bytes int64
	// BacklogSince is when the owner's pending set last went from empty to
	// non-empty (Unix nanoseconds; 0 when nothing is pending). Its age is an
	// upper bound on the age of the oldest pending hint.
	BacklogSince int64
}

// hintState is the in-memory account of the hint keyspace, rebuilt by a scan
// at Open and kept up to date by every change, so metrics and `cairn hints`
// never scan.
type hintState struct {
	mu     sync.Mutex
	owners map[string]*HintOwnerStats
	total  int64 // Bytes summed over owners, for the node-wide cap
	// episodes serialises an episode's close against writes to hints of the
	// same partition (striped by partition): writers hold it shared.
	episodes [256]sync.RWMutex
	actors   sync.Map   // partition -> hint actor id
	actorMu  sync.Mutex // serialises creating an actor
}

func (h *hintState) episode(p uint32) *sync.RWMutex { return &h.episodes[p%uint32(len(h.episodes))] }

func (h *hintState) owner(name string) *HintOwnerStats {
	if h.owners == nil {
		h.owners = map[string]*HintOwnerStats{}
	}
	st := h.owners[name]
	if st == nil {
		st = &HintOwnerStats{}
		h.owners[name] = st
	}
	return st
}

// account moves one hint of owner from its old state to its new one; absent
// states are nil.
func (h *hintState) account(owner string, old, new *hintValue, oldSize, newSize int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.owner(owner)
	// Sizes count whether or not a state is absent: oldSize may carry a
	// reservation (reserve) for a hint that did not exist.
	h.total += int64(newSize) - int64(oldSize)
	st.Bytes += int64(newSize) - int64(oldSize)
	if old != nil {
		if old.Delivered {
			st.Delivered--
		} else {
			st.Pending--
		}
	}
	if new != nil {
		if new.Delivered {
			st.Delivered++
		} else {
			if st.Pending == 0 {
				st.BacklogSince = new.Since
			}
			st.Pending++
		}
	}
	if st.Pending == 0 {
		st.BacklogSince = 0
	}
	h.tidy(owner, st)
}

// tidy forgets an owner with nothing left. The caller holds mu.
func (h *hintState) tidy(owner string, st *HintOwnerStats) {
	if st.Pending == 0 && st.Delivered == 0 && st.Bytes == 0 {
		delete(h.owners, owner)
	}
}

// reserve counts growth bytes of a hint write for owner before the write
// is committed, unless they would take the owner past perOwner or the node
// past total (0: no cap), in which case nothing changes and the refusal is
// returned. Checking and counting under one lock is what keeps concurrent
// writes of different keys from passing the cap together. A write that
// does not grow the owner's hints (growth <= 0) always passes: it is how
// a queue over a lowered cap shrinks. The caller moves the reservation
// into the account once the write is committed (account with oldSize
// raised by the reservation), and leaves it in place when the commit
// failed, so that the count errs above what is stored, never below.
func (h *hintState) reserve(owner string, growth, perOwner, total int64) (int64, error) {
	if growth <= 0 {
		return 0, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var held int64
	if st := h.owners[owner]; st != nil {
		held = st.Bytes
	}
	if perOwner > 0 && held+growth > perOwner {
		return 0, &HintCapError{Owner: owner, Held: held, Growth: growth, Cap: perOwner}
	}
	if total > 0 && h.total+growth > total {
		return 0, &HintCapError{Owner: owner, NodeWide: true, Held: h.total, Growth: growth, Cap: total}
	}
	h.owner(owner).Bytes += growth
	h.total += growth
	return growth, nil
}

// HintCapError refuses a hint write that would take the hints this node
// keeps past a cap (Options.MaxHintBytesPerOwner, MaxHintBytes). Nothing
// was written. It wraps cairn.ErrOverloaded: the node is healthy and
// refuses only to protect its disk, so a coordinator asks the next
// fallback rather than marking this node down.
type HintCapError struct {
	Owner    string
	NodeWide bool  // the node-wide cap, not the owner's
	Held     int64 // bytes of hints kept (for Owner, or for every owner when NodeWide)
	Growth   int64 // bytes the write would add
	Cap      int64
}

func (e *HintCapError) Error() string {
	if e.NodeWide {
		return fmt.Sprintf("%v: this node keeps %d bytes of hints; a hint for %s would add %d, past the node's cap of %d (max_hint_bytes)",
			cairn.ErrOverloaded, e.Held, e.Owner, e.Growth, e.Cap)
	}
	return fmt.Sprintf("%v: this node keeps %d bytes of hints for %s; this write would add %d, past the cap of %d per owner (max_hint_bytes_per_owner)",
		cairn.ErrOverloaded, e.Held, e.Owner, e.Growth, e.Cap)
}

func (e *HintCapError) Unwrap() error { return cairn.ErrOverloaded }

// hintRecordSize is what one hint takes in the account: key and value.
// Counting the key too keeps hints of large keys and small values bounded.
func hintRecordSize(k []byte, valueLen int) int { return len(k) + valueLen }

// HintStats returns every owner's queue as this node holds it.
func (s *Store) HintStats() map[string]HintOwnerStats {
	s.hints.mu.Lock()
	defer s.hints.mu.Unlock()
	out := make(map[string]HintOwnerStats, len(s.hints.owners))
	for o, st := range s.hints.owners {
		out[o] = *st
	}
	return out
}

func ownerPrefix(owner string) []byte {
	b := make([]byte, 0, 2+binary.MaxVarintLen64+len(owner))
	b = append(b, prefixHint, hintRecord)
	b = binary.AppendUvarint(b, uint64(len(owner)))
	return append(b, owner...)
}

func hintKey(r HintRef) ([]byte, error) {
	if r.Owner == "" || len(r.Owner) > MaxOwnerBytes {
		return nil, cairn.InvalidArgument("hint owner of %d bytes: must be 1 to %d", len(r.Owner), MaxOwnerBytes)
	}
	if len(r.Bucket) > MaxBucketBytes {
		return nil, cairn.InvalidArgument("bucket of %d bytes: at most %d", len(r.Bucket), MaxBucketBytes)
	}
	if len(r.Key) > MaxKeyBytes {
		return nil, cairn.InvalidArgument("key of %d bytes: at most %d", len(r.Key), MaxKeyBytes)
	}
	b := ownerPrefix(r.Owner)
	b = binary.BigEndian.AppendUint32(b, r.Partition)
	b = binary.AppendUvarint(b, uint64(len(r.Bucket)))
	b = append(b, r.Bucket...)
	return append(b, r.Key...), nil
}

func decodeHintKey(k []byte) (HintRef, error) {
	bad := func(what string) (HintRef, error) {
		return HintRef{}, fmt.Errorf("%w: hint key %x: %s", ErrCorrupt, k, what)
	}
	if len(k) < 2 || k[0] != prefixHint || k[1] != hintRecord {
		return bad("bad prefix")
	}
	rest := k[2:]
	n, w := binary.Uvarint(rest)
	if w <= 0 || n == 0 || n > MaxOwnerBytes || n > uint64(len(rest)-w) {
		return bad("bad owner length")
	}
	owner := string(rest[w : w+int(n)])
	rest = rest[w+int(n):]
	if len(rest) < 4 {
		return bad("no partition")
	}
	p := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	n, w = binary.Uvarint(rest)
	if w <= 0 || n > MaxBucketBytes || n > uint64(len(rest)-w) {
		return bad("bad bucket length")
	}
	bucket := string(rest[w : w+int(n)])
	return HintRef{Owner: owner, Partition: p, Bucket: bucket, Key: append([]byte(nil), rest[w+int(n):]...)}, nil
}

func cursorKey(owner string) []byte {
	return append([]byte{prefixHint, hintCursor}, owner...)
}

func hintActorKey(p uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixIncarnation, incarnationHintActor}, p)
}

func encodeHint(v hintValue) ([]byte, error) {
	v.Object = canonical(v.Object)
	var buf bytes.Buffer
	buf.WriteByte(hintFormatV1)
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("store: encode hint: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeHint(b []byte) (hintValue, error) {
	if len(b) == 0 || b[0] != hintFormatV1 {
		return hintValue{}, fmt.Errorf("%w: hint record of unknown format", ErrCorrupt)
	}
	var v hintValue
	if err := mpcheck.UnmarshalLimits(b[1:], &v, mpcheck.Limits{MaxDepth: 16, MaxElements: len(b) + 1}); err != nil {
		return hintValue{}, fmt.Errorf("%w: hint: %w", ErrCorrupt, err)
	}
	return v, nil
}

func (s *Store) getHint(k []byte) (hintValue, int, bool, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return hintValue{}, 0, false, nil
	}
	if err != nil {
		return hintValue{}, 0, false, fmt.Errorf("store: read hint %x: %w", k, err)
	}
	defer closer.Close()
	h, err := decodeHint(v)
	if err != nil {
		return hintValue{}, 0, false, fmt.Errorf("store: read hint %x: %w", k, err)
	}
	return h, hintRecordSize(k, len(v)), true, nil
}

// GetHint returns the object held for r.Owner under r; found=false when
// there is no such hint.
func (s *Store) GetHint(r HintRef) (dvv.Object, bool, error) {
	k, err := hintKey(r)
	if err != nil {
		return dvv.Object{}, false, err
	}
	if err := s.enter(); err != nil {
		return dvv.Object{}, false, err
	}
	defer s.leave()
	h, _, found, err := s.getHint(k)
	return h.Object, found, err
}

// ModifyHint is Modify for a hint: fn sees the object held for r.Owner and
// returns the new one and whether to write it. A write makes the hint
// pending again (since now, Unix nanoseconds) unless the object did not
// change.
func (s *Store) ModifyHint(r HintRef, sync bool, now int64, fn func(cur dvv.Object, found bool) (dvv.Object, bool, error)) (dvv.Object, error) {
	return s.modifyHint(r, sync, now, func(cur dvv.Object, found bool, _ func() (string, error)) (dvv.Object, bool, error) {
		return fn(cur, found)
	})
}

// MintHint is ModifyHint for a write this node coordinates while standing
// in for r.Owner: fn also gets the actor that mints into hints of the
// partition. The actor stays valid for the duration of fn: an episode cannot
// close (and retire it) meanwhile.
func (s *Store) MintHint(r HintRef, sync bool, now int64, fn func(cur dvv.Object, found bool, actor string) (dvv.Object, bool, error)) (dvv.Object, error) {
	return s.modifyHint(r, sync, now, func(cur dvv.Object, found bool, actor func() (string, error)) (dvv.Object, bool, error) {
		a, err := actor()
		if err != nil {
			return dvv.Object{}, false, err
		}
		return fn(cur, found, a)
	})
}

// MintHintAsync is MintHint that returns once the write is visible, before
// its fsync; the caller must call the returned Durable once (ModifyAsync).
func (s *Store) MintHintAsync(r HintRef, sync bool, now int64, fn func(cur dvv.Object, found bool, actor string) (dvv.Object, bool, error)) (dvv.Object, Durable, error) {
	k, err := hintKey(r)
	if err != nil {
		return dvv.Object{}, nil, err
	}
	if err := s.enter(); err != nil {
		return dvv.Object{}, nil, err
	}
	obj, pending, err := s.modifyHintLocked(r, k, sync || !s.opts.NoSyncWrites, now, func(cur dvv.Object, found bool, actor func() (string, error)) (dvv.Object, bool, error) {
		a, err := actor()
		if err != nil {
			return dvv.Object{}, false, err
		}
		return fn(cur, found, a)
	})
	if err != nil {
		s.leave()
		return dvv.Object{}, nil, err
	}
	return obj, s.durable(pending, k), nil
}

// ModifyHintAsync is ModifyHint that returns once the write is visible,
// before its fsync; the caller must call the returned Durable once
// (ModifyAsync).
func (s *Store) ModifyHintAsync(r HintRef, sync bool, now int64, fn func(cur dvv.Object, found bool) (dvv.Object, bool, error)) (dvv.Object, Durable, error) {
	k, err := hintKey(r)
	if err != nil {
		return dvv.Object{}, nil, err
	}
	if err := s.enter(); err != nil {
		return dvv.Object{}, nil, err
	}
	obj, pending, err := s.modifyHintLocked(r, k, sync || !s.opts.NoSyncWrites, now, func(cur dvv.Object, found bool, _ func() (string, error)) (dvv.Object, bool, error) {
		return fn(cur, found)
	})
	if err != nil {
		s.leave()
		return dvv.Object{}, nil, err
	}
	return obj, s.durable(pending, k), nil
}

func (s *Store) modifyHint(r HintRef, sync bool, now int64, fn func(cur dvv.Object, found bool, actor func() (string, error)) (dvv.Object, bool, error)) (dvv.Object, error) {
	k, err := hintKey(r)
	if err != nil {
		return dvv.Object{}, err
	}
	if err := s.enter(); err != nil {
		return dvv.Object{}, err
	}
	defer s.leave()
	obj, pending, err := s.modifyHintLocked(r, k, sync || !s.opts.NoSyncWrites, now, fn)
	if err != nil {
		return dvv.Object{}, err
	}
	if err := pending.wait(); err != nil {
		return dvv.Object{}, fmt.Errorf("store: sync hint %x: %w", k, err)
	}
	return obj, nil
}

// modifyHintLocked is the part of modifyHint done under the partition's
// episode lock and the key's lock; the caller waits for the fsync once they
// are free (commit.go).
func (s *Store) modifyHintLocked(r HintRef, k []byte, sync bool, now int64, fn func(cur dvv.Object, found bool, actor func() (string, error)) (dvv.Object, bool, error)) (dvv.Object, pendingSync, error) {
	ep := s.hints.episode(r.Partition)
	ep.RLock()
	defer ep.RUnlock()
	mu := s.stripeOf(k)
	mu.Lock()
	defer mu.Unlock()
	cur, oldSize, found, err := s.getHint(k)
	if err != nil {
		return dvv.Object{}, pendingSync{}, err
	}
	next, write, err := fn(cur.Object, found, func() (string, error) { return s.hintActor(r.Partition) })
	if err != nil {
		return dvv.Object{}, pendingSync{}, err
	}
	if !write || (found && next.Equal(cur.Object)) {
		return cur.Object, pendingSync{}, nil
	}
	nv := hintValue{Object: next, Since: now}
	if found && !cur.Delivered {
		nv.Since = cur.Since // pending already: since the first write
	}
	rec, err := encodeHint(nv)
	if err != nil {
		return dvv.Object{}, pendingSync{}, err
	}
	newSize := hintRecordSize(k, len(rec))
	reserved, err := s.hints.reserve(r.Owner, int64(newSize-oldSize), s.opts.MaxHintBytesPerOwner, s.opts.MaxHintBytes)
	if err != nil {
		return dvv.Object{}, pendingSync{}, err
	}
	pending, err := s.commit(k, rec, sync)
	if err != nil {
		// The reservation stays: the write may be visible all the same.
		return dvv.Object{}, pendingSync{}, fmt.Errorf("store: write hint %x: %w", k, err)
	}
	s.counters.writes.Add(1)
	var old *hintValue
	if found {
		old = &cur
	}
	s.hints.account(r.Owner, old, &nv, oldSize+int(reserved), newSize)
	return next, pending, nil
}

// hintActor returns the actor that mints into hints of p, creating it the
// first time in an episode. The caller holds the partition's episode lock
// (shared) and a stripe lock.
func (s *Store) hintActor(p uint32) (string, error) {
	if a, ok := s.hints.actors.Load(p); ok {
		return a.(string), nil
	}
	s.hints.actorMu.Lock()
	defer s.hints.actorMu.Unlock()
	if a, ok := s.hints.actors.Load(p); ok {
		return a.(string), nil
	}
	k := hintActorKey(p)
	v, closer, err := s.db.Get(k)
	if err == nil {
		actor := string(v)
		closer.Close()
		if actor == "" {
			return "", fmt.Errorf("%w: empty hint actor of partition %d", ErrCorrupt, p)
		}
		s.hints.actors.Store(p, actor)
		return actor, nil
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return "", fmt.Errorf("store: read hint actor of partition %d: %w", p, err)
	}
	actor, err := s.newActor()
	if err != nil {
		return "", err
	}
	if err := s.db.Set(k, []byte(actor), pebble.Sync); err != nil {
		return "", fmt.Errorf("store: persist hint actor of partition %d: %w", p, err)
	}
	s.hints.actors.Store(p, actor)
	return actor, nil
}

// ScanHints calls fn for the hints of owner in queue order, starting after
// pos (nil: from the start), from one consistent view. Delivered hints are
// included; fn skips what it does not want. The scan stops when fn returns
// false or an error (returned as is).
func (s *Store) ScanHints(owner string, after []byte, fn func(h Hint) (bool, error)) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	prefix := ownerPrefix(owner)
	opts := &pebble.IterOptions{LowerBound: prefix, UpperBound: upperBound(prefix)}
	if len(after) > 0 {
		if !bytes.HasPrefix(after, prefix) {
			return cairn.InvalidArgument("hint cursor %x is not in %s's queue", after, owner)
		}
		opts.LowerBound = append(append([]byte(nil), after...), 0)
	}
	it, err := s.db.NewIter(opts)
	if err != nil {
		return fmt.Errorf("store: scan hints of %s: %w", owner, err)
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		if s.closing.Load() {
			return ErrClosed
		}
		ref, err := decodeHintKey(it.Key())
		if err != nil {
			return err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: scan hints of %s: %w", owner, err)
		}
		hv, err := decodeHint(v)
		if err != nil {
			return fmt.Errorf("store: scan hints at %x: %w", it.Key(), err)
		}
		more, err := fn(Hint{HintRef: ref, Object: hv.Object, Delivered: hv.Delivered, Since: hv.Since,
			Pos: append([]byte(nil), it.Key()...), Size: len(v)})
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

// MarkDelivered records that the owner acknowledged these hints and moves
// the owner's cursor to cursor (nil leaves it), in one synced batch. A hint
// written again since it was read (its object changed) stays pending: the
// owner has not seen the new write. It returns how many were marked.
func (s *Store) MarkDelivered(owner string, hs []Hint, cursor []byte) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	// Lock every stripe involved, in index order, so the check and the
	// batch see the same records.
	keys := make([][]byte, len(hs))
	var stripes []int
	for i, h := range hs {
		if h.Owner != owner {
			return 0, cairn.InvalidArgument("hint for %s in a delivery to %s", h.Owner, owner)
		}
		k, err := hintKey(h.HintRef)
		if err != nil {
			return 0, err
		}
		keys[i] = k
		stripes = append(stripes, s.stripeIndex(k))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.stripes[i].Lock()
	}
	defer func() {
		for _, i := range stripes {
			s.stripes[i].Unlock()
		}
	}()

	b := s.db.NewBatch()
	defer b.Close()
	type change struct {
		old, new         hintValue
		oldSize, newSize int
	}
	var changes []change
	for i, h := range hs {
		cur, size, found, err := s.getHint(keys[i])
		if err != nil {
			return 0, err
		}
		if !found || cur.Delivered || !cur.Object.Equal(h.Object) {
			continue
		}
		nv := cur
		nv.Delivered = true
		rec, err := encodeHint(nv)
		if err != nil {
			return 0, err
		}
		if err := b.Set(keys[i], rec, nil); err != nil {
			return 0, err
		}
		changes = append(changes, change{old: cur, new: nv, oldSize: size, newSize: hintRecordSize(keys[i], len(rec))})
	}
	if cursor != nil {
		if err := b.Set(cursorKey(owner), cursor, nil); err != nil {
			return 0, err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("store: mark hints delivered: %w", err)
	}
	for _, c := range changes {
		s.hints.account(owner, &c.old, &c.new, c.oldSize, c.newSize)
	}
	return len(changes), nil
}

// HintCursor returns where delivery to owner resumes (nil: the start).
func (s *Store) HintCursor(owner string) ([]byte, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	v, closer, err := s.db.Get(cursorKey(owner))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read hint cursor of %s: %w", owner, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// CloseHintEpisode ends partition p's episode if none of its hints, for any
// owner, is still pending: every hint of p is deleted and the actor that
// minted into them retired, in one synced batch. It reports whether it
// closed.
func (s *Store) CloseHintEpisode(p uint32) (bool, error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.leave()
	ep := s.hints.episode(p)
	ep.Lock()
	defer ep.Unlock()

	owners := s.hintOwners()
	b := s.db.NewBatch()
	defer b.Close()
	type gone struct {
		owner string
		v     hintValue
		size  int
	}
	var removed []gone
	for _, owner := range owners {
		start := binary.BigEndian.AppendUint32(ownerPrefix(owner), p)
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: upperBound(start)})
		if err != nil {
			return false, err
		}
		for valid := it.First(); valid; valid = it.Next() {
			v, err := it.ValueAndErr()
			if err == nil {
				var hv hintValue
				hv, err = decodeHint(v)
				if err == nil && !hv.Delivered {
					_ = it.Close()
					return false, nil
				}
				removed = append(removed, gone{owner: owner, v: hv, size: hintRecordSize(it.Key(), len(v))})
			}
			if err != nil {
				_ = it.Close()
				return false, err
			}
		}
		if err := it.Close(); err != nil {
			return false, err
		}
		if err := b.DeleteRange(start, upperBound(start), nil); err != nil {
			return false, err
		}
	}
	if err := b.Delete(hintActorKey(p), nil); err != nil {
		return false, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return false, fmt.Errorf("store: close hint episode of partition %d: %w", p, err)
	}
	s.hints.actors.Delete(p)
	for _, g := range removed {
		s.hints.account(g.owner, &g.v, nil, g.size, 0)
	}
	return true, nil
}

// hintOwners lists the owners this node holds hints for.
func (s *Store) hintOwners() []string {
	s.hints.mu.Lock()
	defer s.hints.mu.Unlock()
	owners := make([]string, 0, len(s.hints.owners))
	for o := range s.hints.owners {
		owners = append(owners, o)
	}
	return owners
}

// loadHints rebuilds the in-memory account of the hint keyspace at Open.
func (s *Store) loadHints() error {
	prefix := []byte{prefixHint, hintRecord}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upperBound(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		ref, err := decodeHintKey(it.Key())
		if err != nil {
			return err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		hv, err := decodeHint(v)
		if err != nil {
			return fmt.Errorf("store: hint at %x: %w", it.Key(), err)
		}
		s.hints.account(ref.Owner, nil, &hv, 0, hintRecordSize(it.Key(), len(v)))
	}
	return it.Error()
}

// ModifyUnsynced is Modify without an fsync, whatever the options say: for
// a caller that applies a batch of writes and then calls SyncWAL once before
// it acknowledges any of them (hinted handoff does).
func (s *Store) ModifyUnsynced(p uint32, bucket string, key []byte, fn func(cur dvv.Object, found bool) (dvv.Object, bool, error)) (dvv.Object, error) {
	return s.modify(p, bucket, key, false, fn)
}

// SyncWAL makes every write that returned before it durable.
func (s *Store) SyncWAL() error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("store: sync the WAL: %w", err)
	}
	return nil
}

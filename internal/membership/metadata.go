package membership

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/cairnkv/cairn"
)

// Cluster metadata is a small key/value map every node holds, for what the
// whole cluster must agree on and that is not ring state: users and their
// roles now, bucket properties later. It travels beside the ring state, in
// the same messages: a changed entry as a broadcast, every entry in each
// push/pull, on disk with the ring state.
//
// Entries are keyed by (prefix, key). Each carries a version, a hybrid
// timestamp and the name of the node that wrote it: the higher timestamp
// wins, then the larger node name, then a deletion, then the larger value,
// so that every node keeps the same entry whatever order changes arrive in,
// and two operators' concurrent changes end the same everywhere (the later
// one by the clocks, ties broken by name). A deletion is a tombstone kept
// forever: entries are few, and a tombstone is what stops an old copy from
// coming back.

// Limits on metadata. An entry above a gossip packet's room still spreads,
// through push/pull only; the bounds keep the whole map a small part of the
// state every push/pull carries.
const (
	maxMetaPrefix  = 64
	maxMetaKey     = 255
	maxMetaValue   = 4 << 10
	maxMetaEntries = 8192
	// maxMetaTime bounds version times (2^63: Unix milliseconds far past
	// any clock's, shifted 16 bits), so that no entry can sit where a
	// later write's time would overflow.
	maxMetaTime = 1 << 63
)

// MetaVersion orders the changes of one metadata entry.
type MetaVersion struct {
	// Time is a hybrid timestamp: Unix milliseconds shifted left 16 bits,
	// plus a logical counter. A node never writes a time at or below one it
	// has seen, so a change made after another one was received wins over
	// it even when the clocks disagree.
	Time uint64
	// Node is the node that wrote the change: the tie-break.
	Node string
}

// MetaEntry is one entry of cluster metadata.
type MetaEntry struct {
	Prefix, Key string
	// Value is nil for a deleted entry.
	Value   []byte
	Deleted bool
	Version MetaVersion
}

type metaID struct{ prefix, key string }

func (e MetaEntry) id() metaID { return metaID{e.Prefix, e.Key} }

// metaSupersedes reports whether entry a replaces entry b of the same key.
func metaSupersedes(a, b MetaEntry) bool {
	if c := cmp.Or(cmp.Compare(a.Version.Time, b.Version.Time), cmp.Compare(a.Version.Node, b.Version.Node)); c != 0 {
		return c > 0
	}
	if a.Deleted != b.Deleted {
		return a.Deleted
	}
	return bytes.Compare(a.Value, b.Value) > 0
}

// metaState is the merged metadata: the latest entry of every key. Pure
// data; Membership guards it with its lock.
type metaState struct {
	entries map[metaID]MetaEntry
	// seen is the highest version time seen, written or merged: the floor
	// of the next local write's time.
	seen uint64
}

// merge keeps, for each incoming entry, whichever of it and the local one
// supersedes the other, and returns the entries that changed. Like the ring
// state's merge it is commutative, associative and idempotent.
func (s *metaState) merge(in []MetaEntry) []MetaEntry {
	if s.entries == nil {
		s.entries = make(map[metaID]MetaEntry, len(in))
	}
	var changed []MetaEntry
	for _, e := range in {
		s.seen = max(s.seen, e.Version.Time)
		if cur, ok := s.entries[e.id()]; ok && !metaSupersedes(e, cur) {
			continue
		}
		s.entries[e.id()] = e
		changed = append(changed, e)
	}
	return changed
}

// write makes a local change at a time above every one seen and reports
// the new entry.
func (s *metaState) write(node string, now time.Time, e MetaEntry) MetaEntry {
	t := max(uint64(max(now.UnixMilli(), 0))<<16, s.seen+1)
	if cur, ok := s.entries[e.id()]; ok {
		t = max(t, cur.Version.Time+1)
	}
	e.Version = MetaVersion{Time: t, Node: node}
	if e.Deleted {
		e.Value = nil
	}
	s.merge([]MetaEntry{e})
	return e
}

// sorted returns every entry, tombstones included, ordered by prefix and
// key, so that equal states encode to equal bytes.
func (s metaState) sorted() []MetaEntry {
	out := slices.Collect(maps.Values(s.entries))
	slices.SortFunc(out, func(a, b MetaEntry) int {
		return cmp.Or(cmp.Compare(a.Prefix, b.Prefix), cmp.Compare(a.Key, b.Key))
	})
	return out
}

// wireMeta is one metadata entry in wireState's "md" list:
//
//	{"p": prefix, "k": key, "v": value (omitted when deleted),
//	 "d": deleted (omitted when false), "t": version time, "n": version node}
type wireMeta struct {
	Prefix  string `msgpack:"p"`
	Key     string `msgpack:"k"`
	Value   []byte `msgpack:"v,omitempty"`
	Deleted bool   `msgpack:"d,omitempty"`
	Time    uint64 `msgpack:"t"`
	Node    string `msgpack:"n"`
}

func toWireMeta(entries []MetaEntry) []wireMeta {
	if len(entries) == 0 {
		return nil
	}
	out := make([]wireMeta, len(entries))
	for i, e := range entries {
		out[i] = wireMeta{Prefix: e.Prefix, Key: e.Key, Value: e.Value, Deleted: e.Deleted, Time: e.Version.Time, Node: e.Version.Node}
	}
	return out
}

// fromWireMeta validates decoded entries; any bad one refuses them all.
func fromWireMeta(in []wireMeta) ([]MetaEntry, error) {
	if len(in) > maxMetaEntries {
		return nil, fmt.Errorf("%d metadata entries, more than %d", len(in), maxMetaEntries)
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]MetaEntry, 0, len(in))
	seen := make(map[metaID]bool, len(in))
	for _, w := range in {
		e := MetaEntry{Prefix: w.Prefix, Key: w.Key, Value: w.Value, Deleted: w.Deleted, Version: MetaVersion{Time: w.Time, Node: w.Node}}
		if err := checkMetaEntry(e); err != nil {
			return nil, fmt.Errorf("metadata %.64q/%.64q: %w", e.Prefix, e.Key, err)
		}
		if seen[e.id()] {
			return nil, fmt.Errorf("metadata %.64q/%.64q twice", e.Prefix, e.Key)
		}
		seen[e.id()] = true
		out = append(out, e)
	}
	return out, nil
}

func checkMetaEntry(e MetaEntry) error {
	if err := CheckMetaKey(e.Prefix, e.Key); err != nil {
		return err
	}
	if len(e.Value) > maxMetaValue {
		return fmt.Errorf("value of %d bytes, more than %d", len(e.Value), maxMetaValue)
	}
	if e.Deleted && len(e.Value) > 0 {
		return fmt.Errorf("a deleted entry with a value")
	}
	if e.Version.Time == 0 || e.Version.Time >= maxMetaTime {
		return fmt.Errorf("version time %d: want 1 to %d", e.Version.Time, maxMetaTime-1)
	}
	return checkName(e.Version.Node)
}

// CheckMetaKey reports whether (prefix, key) may name a metadata entry: a
// prefix of 1 to 64 bytes of lower-case letters, digits, '-' and '_', and a
// key of 1 to 255 bytes of UTF-8.
func CheckMetaKey(prefix, key string) error {
	if prefix == "" || len(prefix) > maxMetaPrefix {
		return fmt.Errorf("prefix %.64q: want 1 to %d bytes", prefix, maxMetaPrefix)
	}
	for _, c := range []byte(prefix) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("prefix %.64q: want lower-case letters, digits, '-' and '_'", prefix)
		}
	}
	if key == "" || len(key) > maxMetaKey || !utf8.ValidString(key) {
		return fmt.Errorf("key %.64q: want 1 to %d bytes of UTF-8", key, maxMetaKey)
	}
	return nil
}

// SetMeta writes value under (prefix, key) in the cluster metadata, at a
// version above every one this node has seen, and spreads it. Like Remove,
// it returns once the change is persisted here; when persisting fails the
// change still holds and spreads, the error says so and the notifier
// keeps retrying.
func (m *Membership) SetMeta(prefix, key string, value []byte) error {
	if err := CheckMetaKey(prefix, key); err != nil {
		return cairn.InvalidArgument("metadata: %v", err)
	}
	if len(value) > maxMetaValue {
		return cairn.InvalidArgument("metadata %s/%s: value of %d bytes, more than %d", prefix, key, len(value), maxMetaValue)
	}
	return m.writeMeta(MetaEntry{Prefix: prefix, Key: key, Value: slices.Clone(value)})
}

// DeleteMeta deletes (prefix, key) from the cluster metadata: a tombstone
// that wins over every earlier write. Deleting what is not there succeeds.
func (m *Membership) DeleteMeta(prefix, key string) error {
	if err := CheckMetaKey(prefix, key); err != nil {
		return cairn.InvalidArgument("metadata: %v", err)
	}
	return m.writeMeta(MetaEntry{Prefix: prefix, Key: key, Deleted: true})
}

func (m *Membership) writeMeta(e MetaEntry) error {
	m.mu.Lock()
	cur, ok := m.md.entries[e.id()]
	if ok && cur.Deleted == e.Deleted && bytes.Equal(cur.Value, e.Value) {
		m.mu.Unlock()
		return nil
	}
	if !ok && e.Deleted {
		m.mu.Unlock()
		return nil
	}
	if !ok && len(m.md.entries) >= maxMetaEntries {
		m.mu.Unlock()
		return fmt.Errorf("%w: metadata holds %d entries, the limit", cairn.ErrOverloaded, maxMetaEntries)
	}
	e = m.md.write(m.cfg.Name, m.cfg.now(), e)
	m.metaGen.Add(1)
	m.mu.Unlock()
	m.broadcastMeta(e)
	m.signal()
	if err := m.persist(); err != nil {
		return fmt.Errorf("metadata %s/%s: applied, but persisting it failed: %w", e.Prefix, e.Key, err)
	}
	return nil
}

// Meta returns the value of (prefix, key); ok is false when there is none
// or it was deleted. The value is the caller's to keep.
func (m *Membership) Meta(prefix, key string) (value []byte, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.md.entries[metaID{prefix, key}]
	if !ok || e.Deleted {
		return nil, false
	}
	return slices.Clone(e.Value), true
}

// MetaPrefix returns the live entries under prefix, ordered by key; their
// values are the caller's to keep.
func (m *Membership) MetaPrefix(prefix string) []MetaEntry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []MetaEntry
	for id, e := range m.md.entries {
		if id.prefix == prefix && !e.Deleted {
			e.Value = slices.Clone(e.Value)
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b MetaEntry) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// MetaGeneration changes whenever the metadata does, so that a caller may
// keep something derived from it and rebuild it only when this moves.
func (m *Membership) MetaGeneration() uint64 { return m.metaGen.Load() }

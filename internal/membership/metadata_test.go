package membership

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func metaEntry(key string, t uint64, node, value string) MetaEntry {
	return MetaEntry{Prefix: "users", Key: key, Value: []byte(value), Version: MetaVersion{Time: t, Node: node}}
}

func TestMetaSupersedes(t *testing.T) {
	tomb := metaEntry("a", 5, "n1", "")
	tomb.Deleted, tomb.Value = true, nil
	for _, tc := range []struct {
		name string
		a, b MetaEntry
		want bool
	}{
		{"later time wins", metaEntry("a", 6, "n1", "x"), metaEntry("a", 5, "n2", "y"), true},
		{"earlier time loses", metaEntry("a", 5, "n2", "y"), metaEntry("a", 6, "n1", "x"), false},
		{"same time: larger node wins", metaEntry("a", 5, "n2", "x"), metaEntry("a", 5, "n1", "y"), true},
		{"same version: deletion wins", tomb, metaEntry("a", 5, "n1", "y"), true},
		{"same version: larger value wins", metaEntry("a", 5, "n1", "y"), metaEntry("a", 5, "n1", "x"), true},
		{"identical is not newer", metaEntry("a", 5, "n1", "y"), metaEntry("a", 5, "n1", "y"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, metaSupersedes(tc.a, tc.b))
		})
	}
}

// Every order and batching of the same entries, with repeats, ends in the
// state a dumb model picks: the merge is commutative, associative and
// idempotent.
func TestMetaMergeIsOrderIndependent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		gen := rapid.Custom(func(t *rapid.T) MetaEntry {
			e := MetaEntry{
				Prefix:  rapid.SampledFrom([]string{"users", "buckets"}).Draw(t, "prefix"),
				Key:     rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "key"),
				Deleted: rapid.Bool().Draw(t, "deleted"),
				Version: MetaVersion{
					Time: rapid.Uint64Range(1, 4).Draw(t, "time"),
					Node: rapid.SampledFrom([]string{"n1", "n2"}).Draw(t, "node"),
				},
			}
			if !e.Deleted {
				e.Value = []byte(rapid.SampledFrom([]string{"", "x", "y"}).Draw(t, "value"))
			}
			return e
		})
		entries := rapid.SliceOf(gen).Draw(t, "entries")
		model := map[metaID]MetaEntry{}
		for _, e := range entries {
			if cur, ok := model[e.id()]; !ok || metaSupersedes(e, cur) {
				model[e.id()] = e
			}
		}
		for range 3 {
			perm := rapid.Permutation(entries).Draw(t, "order")
			var s metaState
			for len(perm) > 0 {
				n := rapid.IntRange(1, len(perm)).Draw(t, "batch")
				s.merge(perm[:n])
				s.merge(perm[:n])
				perm = perm[n:]
			}
			if len(model) == 0 {
				require.Empty(t, s.entries)
			} else {
				require.Equal(t, model, s.entries)
			}
		}
	})
}

// A local write wins over everything it has seen, even when the clock
// is behind the versions seen.
func TestMetaWriteFollowsWhatItSaw(t *testing.T) {
	var s metaState
	far := uint64(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()) << 16
	s.merge([]MetaEntry{metaEntry("a", far, "zz", "theirs"), metaEntry("b", far+7, "zz", "other")})
	e := s.write("n1", time.Now(), MetaEntry{Prefix: "users", Key: "a", Value: []byte("mine")})
	require.Equal(t, far+8, e.Version.Time)
	require.Equal(t, e, s.entries[e.id()])

	d := s.write("n1", time.Now(), MetaEntry{Prefix: "users", Key: "a", Value: []byte("x"), Deleted: true})
	require.True(t, d.Deleted)
	require.Nil(t, d.Value)
	require.Greater(t, d.Version.Time, e.Version.Time)
}

func TestMetaEncodeDecodeRoundTrip(t *testing.T) {
	var md metaState
	tomb := metaEntry("gone", 3, "n2", "")
	tomb.Deleted, tomb.Value = true, nil
	md.merge([]MetaEntry{metaEntry("b", 9, "n1", "bee"), metaEntry("a", 1, "n3", "ay"), tomb})
	s := newState([]Member{entry("a", StatusActive, 1)})
	b := encodeState("prod", 256, s.sorted(), md.sorted()...)
	msg, err := decodeState(b)
	require.NoError(t, err)
	require.Equal(t, md.sorted(), msg.meta)
	var again metaState
	again.merge(msg.meta)
	require.Equal(t, b, encodeState("prod", 256, s.sorted(), again.sorted()...), "equal states must encode to equal bytes")
}

func TestMetaDecodeRejects(t *testing.T) {
	ok := metaEntry("a", 1, "n1", "v")
	for name, e := range map[string]MetaEntry{
		"empty prefix":         {Key: "a", Version: ok.Version},
		"upper-case prefix":    {Prefix: "Users", Key: "a", Version: ok.Version},
		"prefix with a NUL":    {Prefix: "us\x00rs", Key: "a", Version: ok.Version},
		"empty key":            {Prefix: "users", Version: ok.Version},
		"key not UTF-8":        {Prefix: "users", Key: "\xff", Version: ok.Version},
		"value too large":      {Prefix: "users", Key: "a", Value: make([]byte, maxMetaValue+1), Version: ok.Version},
		"deleted with a value": {Prefix: "users", Key: "a", Value: []byte("x"), Deleted: true, Version: ok.Version},
		"version time 0":       {Prefix: "users", Key: "a", Version: MetaVersion{Node: "n1"}},
		"no version node":      {Prefix: "users", Key: "a", Version: MetaVersion{Time: 1}},
		"version time too far": {Prefix: "users", Key: "a", Version: MetaVersion{Time: maxMetaTime, Node: "n1"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeState(encodeState("prod", 64, nil, ok, e))
			require.ErrorIs(t, err, errMalformedState)
		})
	}
	t.Run("the same key twice", func(t *testing.T) {
		_, err := decodeState(encodeState("prod", 64, nil, ok, ok))
		require.ErrorIs(t, err, errMalformedState)
	})
	t.Run("too many entries", func(t *testing.T) {
		many := make([]MetaEntry, maxMetaEntries+1)
		for i := range many {
			many[i] = metaEntry(fmt.Sprint(i), 1, "n", "")
			many[i].Value = nil
		}
		_, err := decodeState(encodeState("prod", 64, nil, many...))
		require.ErrorIs(t, err, errMalformedState)
	})
}

// A change made on one node reaches every other, a deletion too, and a
// restarted node comes back with the metadata it persisted, even when
// started with no peer to learn it from.
func TestMetadataSpreadsAndSurvivesRestart(t *testing.T) {
	c := newCluster(t)
	c.grow(3)
	eventually(t, func() error { return c.converged(names(3)) })

	require.NoError(t, c.nodes["n2"].SetMeta("users", "alice", []byte("v1")))
	require.NoError(t, c.nodes["n3"].SetMeta("users", "bob", []byte("v2")))
	require.NoError(t, c.nodes["n1"].SetMeta("buckets", "b", []byte("n=5")))
	want := func(m *Membership) error {
		got := m.MetaPrefix("users")
		var keys []string
		for _, e := range got {
			keys = append(keys, e.Key+"="+string(e.Value))
		}
		if !slices.Equal(keys, []string{"alice=v1", "bob=v2"}) {
			return fmt.Errorf("%s holds users %v", m.cfg.Name, keys)
		}
		if v, ok := m.Meta("buckets", "b"); !ok || string(v) != "n=5" {
			return fmt.Errorf("%s holds bucket b %q (%v)", m.cfg.Name, v, ok)
		}
		return nil
	}
	eventually(t, func() error {
		return errors.Join(want(c.nodes["n1"]), want(c.nodes["n2"]), want(c.nodes["n3"]))
	})

	require.NoError(t, c.nodes["n1"].DeleteMeta("users", "bob"))
	require.NoError(t, c.nodes["n1"].SetMeta("users", "alice", []byte("v3")))
	settled := func(m *Membership) error {
		if _, ok := m.Meta("users", "bob"); ok {
			return fmt.Errorf("%s still holds bob", m.cfg.Name)
		}
		if v, _ := m.Meta("users", "alice"); string(v) != "v3" {
			return fmt.Errorf("%s holds alice %q", m.cfg.Name, v)
		}
		return nil
	}
	eventually(t, func() error {
		return errors.Join(settled(c.nodes["n1"]), settled(c.nodes["n2"]), settled(c.nodes["n3"]))
	})

	// n3 restarts alone, from what it persisted.
	gen := c.nodes["n3"].MetaGeneration()
	c.stop("n3")
	eventually(t, func() error {
		msg, err := decodeState(c.persisted("n3"))
		if err != nil {
			return err
		}
		if len(msg.meta) != 3 {
			return fmt.Errorf("n3 persisted %d metadata entries, want 3 (bob's tombstone included)", len(msg.meta))
		}
		return nil
	})
	cfg := c.config("n3", "127.0.0.1:0", nil)
	cfg.State = c.persisted("n3")
	m3 := c.start(cfg)
	require.NoError(t, settled(m3))
	require.NotEqual(t, uint64(0), gen)

	// A tombstone keeps an old copy from coming back: n3 rejoins and the
	// others still do not hold bob.
	require.NoError(t, m3.SetMeta("users", "carol", []byte("v4")))
	_, err := m3.ml.Join([]string{c.nodes["n1"].GossipAddr()})
	require.NoError(t, err)
	eventually(t, func() error {
		for _, m := range c.nodes {
			if err := settled(m); err != nil {
				return err
			}
			if _, ok := m.Meta("users", "carol"); !ok {
				return fmt.Errorf("%s does not hold carol", m.cfg.Name)
			}
		}
		return nil
	})
}

func TestSetMetaRefusesBadInput(t *testing.T) {
	c := newCluster(t)
	m := c.start(c.config("n1", "127.0.0.1:0", nil))
	gen := m.MetaGeneration()
	require.Error(t, m.SetMeta("Users", "a", nil))
	require.Error(t, m.SetMeta("users", "", nil))
	require.Error(t, m.SetMeta("users", "a", make([]byte, maxMetaValue+1)))
	require.Error(t, m.DeleteMeta("", "a"))
	require.Equal(t, gen, m.MetaGeneration(), "a refused change changes nothing")
	require.NoError(t, m.DeleteMeta("users", "nobody"), "deleting what is not there succeeds")
	require.Equal(t, gen, m.MetaGeneration())
}

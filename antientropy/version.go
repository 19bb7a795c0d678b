package antientropy

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cespare/xxhash/v2"
)

// keyIDDomain and versionSeed keep the package's hashes apart from the
// ring's key hash: a key's segment must not be a function of its
// partition, or one partition's keys would crowd into a few segments.
const (
	keyIDDomain = 0xae
	versionSeed = 0x63616972_6e2d7672 // "cairn-vr"
)

// Absent is the version of a key a replica does not hold; Version returns it
// for the empty object and for nothing else, so a missing key and an empty
// object (which holds nothing to sync) look alike to anti-entropy.
const Absent uint64 = 0

// Version digests an object for comparison between replicas: two objects
// have the same version exactly when they hold the same siblings (by dot,
// with the same value bytes and tombstone flag) and the same version vector
// (zero entries ignored), up to 64-bit hash collisions. Sibling and vector
// order do not matter; WrittenAt does not count (a dot names one write, and
// the write's time comes with it).
//
// The digest is xxhash64 over a canonical encoding, each length prefixed:
//
//	uvarint(#siblings) { uvarint(len(actor)) actor uvarint(counter) tombstone(1) uvarint(len(value)) value }
//	uvarint(#entries)  { uvarint(len(actor)) actor uvarint(counter) }
//
// with siblings in dot order (then tombstone, then value) and vector entries
// in actor order. It is not a cryptographic hash: it finds accidental
// divergence, not a forger's.
func Version(obj dvv.Object) uint64 {
	nonzero := 0
	for _, c := range obj.VV {
		if c != 0 {
			nonzero++
		}
	}
	if len(obj.Siblings) == 0 && nonzero == 0 {
		return Absent
	}
	var d xxhash.Digest
	d.ResetWithSeed(versionSeed)
	var buf [2*binary.MaxVarintLen64 + 1]byte

	sibs := obj.Siblings
	if !slices.IsSortedFunc(sibs, compareSiblings) {
		// Stored objects are normalised (sorted by dot); only objects built
		// by hand pay for the copy.
		sibs = slices.Clone(sibs)
		slices.SortFunc(sibs, compareSiblings)
	}
	_, _ = d.Write(binary.AppendUvarint(buf[:0], uint64(len(sibs))))
	for _, s := range sibs {
		writeString(&d, &buf, s.Dot.Actor)
		b := binary.AppendUvarint(buf[:0], s.Dot.Counter)
		if s.Tombstone {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = binary.AppendUvarint(b, uint64(len(s.Value)))
		_, _ = d.Write(b)
		_, _ = d.Write(s.Value)
	}

	// Vectors are small; a stack array saves an allocation for up to 16
	// actors.
	var actorsArr [16]string
	actors := actorsArr[:0]
	for a, c := range obj.VV {
		if c != 0 {
			actors = append(actors, a)
		}
	}
	slices.Sort(actors)
	_, _ = d.Write(binary.AppendUvarint(buf[:0], uint64(len(actors))))
	for _, a := range actors {
		writeString(&d, &buf, a)
		_, _ = d.Write(binary.AppendUvarint(buf[:0], obj.VV[a]))
	}
	if h := d.Sum64(); h != Absent {
		return h
	}
	// A non-empty object must never read as absent; giving up one value
	// of 2^64 costs nothing measurable.
	return 1
}

func writeString(d *xxhash.Digest, buf *[2*binary.MaxVarintLen64 + 1]byte, s string) {
	_, _ = d.Write(binary.AppendUvarint(buf[:0], uint64(len(s))))
	_, _ = d.WriteString(s)
}

// compareSiblings is the canonical sibling order: by dot, and for the
// malformed case of two siblings with one dot, by tombstone and value, so
// the encoding never depends on the order siblings came in.
func compareSiblings(x, y dvv.Sibling) int {
	if c := x.Dot.Compare(y.Dot); c != 0 {
		return c
	}
	if x.Tombstone != y.Tombstone {
		if x.Tombstone {
			return 1
		}
		return -1
	}
	return bytes.Compare(x.Value, y.Value)
}

// keyID hashes a key's identity: xxhash64 of a domain byte, then
// uvarint(len(bucket)) bucket key. The length prefix keeps ("ab", "c") and
// ("a", "bc") apart; the domain byte keeps the hash independent of the
// ring's hash of the same encoding.
func keyID(bucket string, key []byte) uint64 {
	var stack [256]byte
	if n := 1 + binary.MaxVarintLen64 + len(bucket) + len(key); n <= len(stack) {
		// Typical keys: hash one contiguous buffer, no digest state.
		b := append(stack[:0], keyIDDomain)
		b = binary.AppendUvarint(b, uint64(len(bucket)))
		b = append(b, bucket...)
		return xxhash.Sum64(append(b, key...))
	}
	var d xxhash.Digest
	d.Reset()
	var buf [1 + binary.MaxVarintLen64]byte
	_, _ = d.Write(binary.AppendUvarint(append(buf[:0], keyIDDomain), uint64(len(bucket))))
	_, _ = d.WriteString(bucket)
	_, _ = d.Write(key)
	return d.Sum64()
}

// KeyHash is what one key contributes to its segment: a hash of (bucket,
// key, version), or 0 for an Absent version so that a key a replica does
// not hold contributes nothing. It is xxhash64 of le64(keyID) le64(version),
// where keyID is xxhash64 of 0xae uvarint(len(bucket)) bucket key, so a
// write hashes the key's bytes once for its segment and both versions.
func KeyHash(bucket string, key []byte, version uint64) uint64 {
	return keyHash(keyID(bucket, key), version)
}

func keyHash(id, version uint64) uint64 {
	if version == Absent {
		return 0
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], id)
	binary.LittleEndian.PutUint64(b[8:], version)
	return xxhash.Sum64(b[:])
}

// compareKeys is the canonical key order: the bytes of uvarint(len(bucket))
// bucket key, which is also the order of a partition's objects in the store
// (see internal/store), so a partition scan comes out sorted.
func compareKeys(ab string, ak []byte, bb string, bk []byte) int {
	if len(ab) != len(bb) {
		// uvarints are prefix-free: when the encodings differ, they
		// differ at a byte both have, and that byte decides.
		var x, y [binary.MaxVarintLen64]byte
		return bytes.Compare(binary.AppendUvarint(x[:0], uint64(len(ab))), binary.AppendUvarint(y[:0], uint64(len(bb))))
	}
	if c := strings.Compare(ab, bb); c != 0 {
		return c
	}
	return bytes.Compare(ak, bk)
}

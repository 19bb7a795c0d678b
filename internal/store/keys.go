package store

import (
	"encoding/binary"
	"fmt"

	"github.com/cairnkv/cairn"
)

// The first byte of every pebble key names the kind of record it holds. The
// layout is drawn in doc.go.
const (
	prefixObject      byte = 'o'
	prefixMeta        byte = 'm'
	prefixIncarnation byte = 'i'
	// prefixHint is reserved for hinted handoff: objects held for another node
	// ('h' | owner | partition | ...), kept apart from the data this node owns.
	prefixHint byte = 'h'
	// prefixAntiEntropy is reserved for anti-entropy state (Merkle segments and
	// exchange progress).
	prefixAntiEntropy byte = 'a'
)

// Sub-kinds under prefixIncarnation: the state that must change whenever this
// node's copy of a partition starts afresh.
const (
	incarnationActor   byte = 'a' // 'i' 'a' | partition BE -> actor id
	incarnationRunning byte = 'r' // 'i' 'r' -> present while a Store has the DB open
)

// Size limits a key must respect before it reaches pebble. The request layer
// applies the configured (smaller) limits; these only keep a caller bug from
// writing keys that would make every later scan and compaction pay for it.
const (
	// MaxBucketBytes is the longest bucket name, in bytes (DESIGN section 3).
	MaxBucketBytes = 255
	// MaxKeyBytes is the longest key, in bytes: the largest key size a node may
	// be configured with.
	MaxKeyBytes = 1 << 20
	// MaxMetaNameBytes is the longest metadata name, in bytes.
	MaxMetaNameBytes = 1 << 10
)

const partitionPrefixLen = 1 + 4

// partitionPrefix returns 'o' | p, the common prefix of every object key of p.
func partitionPrefix(p uint32) []byte {
	b := make([]byte, partitionPrefixLen)
	b[0] = prefixObject
	binary.BigEndian.PutUint32(b[1:], p)
	return b
}

// objectKey encodes 'o' | p | uvarint(len(bucket)) | bucket | key. The length
// prefix makes the split between bucket and key unambiguous whatever bytes
// either holds.
func objectKey(p uint32, bucket string, key []byte) ([]byte, error) {
	if len(bucket) > MaxBucketBytes {
		return nil, cairn.InvalidArgument("bucket of %d bytes: at most %d", len(bucket), MaxBucketBytes)
	}
	if len(key) > MaxKeyBytes {
		return nil, cairn.InvalidArgument("key of %d bytes: at most %d", len(key), MaxKeyBytes)
	}
	b := make([]byte, 0, partitionPrefixLen+binary.MaxVarintLen64+len(bucket)+len(key))
	b = append(b, prefixObject)
	b = binary.BigEndian.AppendUint32(b, p)
	b = binary.AppendUvarint(b, uint64(len(bucket)))
	b = append(b, bucket...)
	return append(b, key...), nil
}

// decodeObjectKey splits an object key back into its parts. The key bytes
// alias k.
func decodeObjectKey(k []byte) (p uint32, bucket string, key []byte, err error) {
	if len(k) < partitionPrefixLen || k[0] != prefixObject {
		return 0, "", nil, fmt.Errorf("%w: object key %x: bad prefix", ErrCorrupt, k)
	}
	p = binary.BigEndian.Uint32(k[1:])
	rest := k[partitionPrefixLen:]
	n, w := binary.Uvarint(rest)
	if w <= 0 || n > MaxBucketBytes || n > uint64(len(rest)-w) {
		return 0, "", nil, fmt.Errorf("%w: object key %x: bad bucket length", ErrCorrupt, k)
	}
	rest = rest[w:]
	return p, string(rest[:n]), rest[n:], nil
}

func metaKey(name string) ([]byte, error) {
	if name == "" || len(name) > MaxMetaNameBytes {
		return nil, cairn.InvalidArgument("metadata name of %d bytes: must be 1 to %d", len(name), MaxMetaNameBytes)
	}
	return append([]byte{prefixMeta}, name...), nil
}

func actorKey(p uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixIncarnation, incarnationActor}, p)
}

var runningKey = []byte{prefixIncarnation, incarnationRunning}

// upperBound returns the smallest key greater than every key with the given
// prefix, for use as an exclusive iterator or range-deletion bound. It is nil
// when no such key exists (a prefix of 0xff bytes only), which pebble reads
// as "unbounded".
func upperBound(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

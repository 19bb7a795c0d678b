package wire

import (
	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/mpcodec"
)

// A receiver refuses, as a protocol error that closes the connection, a
// frame longer than its limit or a body holding more msgpack elements than
// MaxBodyElements. Objects have no fixed shape (siblings and actors add
// elements, values add bytes), so a sender that puts objects in a message
// counts them first: a message that would break either limit is never
// built, and an object that alone would is skipped or sent without its
// values, never sent to have the connection closed on it.

// MaxBodyElements is how many elements (array items, and map keys and
// values) a message body may hold: the frame's limit less the envelope's
// three.
func MaxBodyElements() int { return bodyLimits.MaxElements }

// What a message adds around the objects it carries: the length prefix
// and envelope, the message's own fields (a partition, a hint's owner,
// flags, counts). Generous, so that counting need not be exact.
const (
	messageOverheadBytes    = 1 << 10
	messageOverheadElements = 32
)

// What one object adds to a message besides its encoding: the array item,
// a map of up to four fields with their names, the partition, bucket and
// key (whose own lengths are added).
const (
	itemOverheadBytes    = 64
	itemOverheadElements = 9
)

// ObjectItemSize bounds the bytes one object adds to a replica, handoff or
// anti-entropy message.
func ObjectItemSize(obj dvv.Object, bucket string, key []byte) int {
	return obj.MsgpackSize() + len(bucket) + len(key) + itemOverheadBytes
}

// ObjectItemElements bounds the elements one object adds to such a
// message.
func ObjectItemElements(obj dvv.Object) int {
	return obj.MsgpackElements() + itemOverheadElements
}

// Batch counts the objects going into one message against the receiver's
// limits. The zero Batch has no room: set MaxFrame to the frame limit.
type Batch struct {
	MaxFrame int
	bytes    int
	elements int
	n        int
}

// Fits reports whether obj can join the batch with the message still
// within the frame and element limits.
func (b *Batch) Fits(obj dvv.Object, bucket string, key []byte) bool {
	return b.bytes+ObjectItemSize(obj, bucket, key)+messageOverheadBytes <= b.MaxFrame &&
		b.elements+ObjectItemElements(obj)+messageOverheadElements <= MaxBodyElements()
}

// Add counts obj in the batch.
func (b *Batch) Add(obj dvv.Object, bucket string, key []byte) {
	b.bytes += ObjectItemSize(obj, bucket, key)
	b.elements += ObjectItemElements(obj)
	b.n++
}

// Len is how many objects were added.
func (b *Batch) Len() int { return b.n }

// Bytes bounds the bytes the objects added take.
func (b *Batch) Bytes() int { return b.bytes }

// ObjectFits reports whether a message carrying obj alone fits: whether
// obj can be sent at all.
func ObjectFits(obj dvv.Object, bucket string, key []byte, maxFrame int) bool {
	b := Batch{MaxFrame: maxFrame}
	return b.Fits(obj, bucket, key)
}

// Fits reports whether the answer, encoded, fits a frame of maxFrame bytes
// and the element limit. A node that finds it would not sends the context
// without the values (ValuesOmitted) rather than an answer no client could
// read.
func (m GetResp) Fits(maxFrame int) bool {
	size, elements := m.size()
	return size+messageOverheadBytes <= maxFrame && elements <= MaxBodyElements()
}

// size bounds the encoded body's bytes and counts its elements exactly.
func (m GetResp) size() (bytes, elements int) {
	// The map's header, keys and fixed-size fields: at most 8 entries.
	bytes = 1 + 7 + 9 + 9 + 9 + 10 + 14 + 16 + 15 + 9 + 9
	elements = 2 * 8
	bytes += mpcodec.LenSize(len(m.Siblings)) + mpcodec.BytesSize(m.Context)
	for i := range m.Siblings {
		// {value, written_at}: a map header, two keys, an integer.
		bytes += 1 + 6 + 11 + 9 + mpcodec.BytesSize(m.Siblings[i].Value)
	}
	elements += 5 * len(m.Siblings)
	for _, list := range [][]string{m.Replicas, m.Fallbacks} {
		bytes += mpcodec.LenSize(len(list))
		for _, s := range list {
			bytes += mpcodec.StringSize(len(s))
		}
		elements += len(list)
	}
	return bytes, elements
}

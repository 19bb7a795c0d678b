// Package wire is cairn's wire protocol: the connection preamble and
// handshake, length-prefixed frames, the message types and their bodies, the
// error codes that carry cairn's sentinel errors across the network, and the
// validation of everything a request names (bucket, key, value, context,
// consistency options). docs/PROTOCOL.md specifies the same thing for people
// writing a client in another language.
//
// A connection starts with a 5-byte preamble from each side, then frames:
//
//	preamble: 'C' 'A' 'I' 'R' version(1 byte)
//
//	frame:
//	+----------------+-----------------------------------------------+
//	| length uint32  | msgpack array [id uint, type uint, body]       |
//	| big endian     | (length bytes)                                 |
//	+----------------+-----------------------------------------------+
//
// The first frame from the dialling side is a Hello; the listening side
// answers HelloOK or an Error and closes. After it, requests and responses
// are matched by id: many may be in flight, answered in any order.
//
// Everything here treats its input as hostile: a frame's length is checked
// against the limit before a byte of it is read, the body is read as it
// arrives (so memory follows the bytes received, not the length announced),
// and every body passes internal/mpcheck before the msgpack library sees it,
// except the request path's messages, whose hand-written decoders (codec.go)
// check every length as they read it, under the same limits.
//
// What it refuses from others it helps senders never send: limits.go
// counts what objects add to a message (bytes and msgpack elements), so
// that a batch stops before the receiver's limits and a get answer that
// would not fit is sent without its values instead.
//
// The package does no network I/O of its own (it reads and writes the
// io.Reader and io.Writer it is given), keeps no state, and must never panic
// or allocate in proportion to a length it has not verified.
package wire

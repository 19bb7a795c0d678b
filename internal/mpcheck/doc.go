// Package mpcheck decides whether untrusted bytes are one well-formed
// MessagePack value whose every declared length fits in the bytes that are
// actually there, before any decoder sees them.
//
// The msgpack library allocates whatever length a header declares: an 8-byte
// input can announce a 4 GiB string or a map of a billion entries. Every byte
// that arrives from the network or is read back from disk therefore goes
// through Check (or Unmarshal, which calls it) before the library decodes it,
// so the decoder's allocations are bounded by the size of the input. The
// hand-written decoders of internal/mpcodec check as they read instead, and
// use Measure to skip the values they do not know under the same rules.
//
// The package must never allocate in proportion to a declared length, never
// recurse on input (nesting is walked with an explicit, bounded stack), and
// never panic on any input.
package mpcheck

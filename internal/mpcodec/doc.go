// Package mpcodec reads and writes MessagePack by hand, for the few
// messages whose cost shows in a profile (the request path's messages and
// the stored object). Everything else goes through the msgpack library
// after internal/mpcheck.
//
// The appenders write exactly what the library's encoder writes with
// compact integers, so a hand-written encoder and the reflective one
// produce the same bytes for the same value.
//
// Reader checks as it reads what mpcheck checks before a decode: every
// declared length against the bytes that remain, the nesting depth, and
// the total count of array items and map entries, and it refuses extension
// types. A value a decoder does not know is skipped with mpcheck.Measure,
// under the same limits. So a decoder built on Reader accepts nothing that
// mpcheck would refuse.
//
//	bytes:  | code | length? | payload ... | code | ...
//	          ^ Reader.b: what is left; every length is compared with
//	            len(Reader.b) before anything is sliced or allocated
//
// The package must never allocate in proportion to a declared length that
// it has not compared with the bytes that remain, never recurse on input
// beyond the caller's own fixed structure, and never panic on any input.
// Byte slices it returns alias the input (with their capacity cut to
// their length, so an append never writes into the next field); strings
// are copies.
package mpcodec

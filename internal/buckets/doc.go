// Package buckets holds per-bucket properties (DESIGN section 3): the
// replication factor n a bucket was created with, its default quorums and
// notfound_ok, its sibling limit, its conflict mode (siblings or
// last-write-wins, Props.Mode), its datatype (a counter or set bucket merges
// by the datatype's join, Props.Mode too), and
// the delete grace that a later kind of bucket will use. Nodes keep them in the
// cluster metadata (prefix MetaPrefix, key the bucket name), so every node
// applies the same properties to requests that do not override them.
//
// The package is pure: it encodes, decodes, validates and merges property
// records, and decides which changes are allowed. It must never accept a
// change of a bucket's n or datatype after creation, never accept a
// property this version cannot honour (it refuses it with the reason
// rather than storing a promise), and never trust a decoded record without
// validating it.
package buckets

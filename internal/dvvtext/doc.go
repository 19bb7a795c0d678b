// Package dvvtext is the text form of dvv objects that the datadriven test
// scripts of quorum and node/coord read and print: siblings as
// "actor.counter=value" ("~" for a tombstone; "@N" after it for written_at
// N) and a vector as "actor:counter" entries. It exists so that both scripts share one
// notation; the running node must never use it (nothing but tests imports
// it), and it must never depend on anything but dvv.
package dvvtext

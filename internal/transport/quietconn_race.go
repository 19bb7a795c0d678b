//go:build linux && race

package transport

import "sync/atomic"

// ioSync gives the race detector the order that a socket's bytes carry.
// The standard library's reads and writes tell it that whatever a
// goroutine did before writing happened before whatever a goroutine does
// after reading; quietConn's raw system calls bypass those annotations,
// and a test whose two ends share one process would see races that are
// not there. An atomic counter carries the same order: the writer's Add
// releases it, the reader's Load acquires it. It exists only in race
// builds.
var ioSync atomic.Uint64

func raceReleaseIO() { ioSync.Add(1) }

func raceAcquireIO() { ioSync.Load() }

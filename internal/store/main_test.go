package store

import (
	"testing"

	"github.com/cairnkv/cairn/internal/dvv"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: pebble
// starts several per database, and Close must stop them all.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mustUpdate takes dvv's Update in a history whose counters cannot come
// near the end of their range, so an error is a bug in the test.
func mustUpdate(o dvv.Object, err error) dvv.Object {
	if err != nil {
		panic(err)
	}
	return o
}

package store

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: pebble
// starts several per database, and Close must stop them all.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

//go:build !linux

package store

import (
	"errors"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// directFile is Linux's (walfile_linux.go); elsewhere the WAL is written
// and synced with the runtime's ordinary system calls.
type directFile struct{}

func directCalls(vfs.File) *directFile { return nil }

func (*directFile) write([]byte) (int, error) { return 0, errors.ErrUnsupported }

func (*directFile) syncData() error { return errors.ErrUnsupported }

package store

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// GetMeta returns the metadata value stored under name (ring state and the
// like); found=false when there is none.
func (s *Store) GetMeta(name string) ([]byte, bool, error) {
	k, err := metaKey(name)
	if err != nil {
		return nil, false, err
	}
	if err := s.enter(); err != nil {
		return nil, false, err
	}
	defer s.leave()
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: read metadata %q: %w", name, err)
	}
	defer closer.Close()
	return append([]byte{}, v...), true, nil
}

// PutMeta stores value under name, fsynced before it returns. Metadata is
// written rarely and read at start, so it is never left to a later sync.
func (s *Store) PutMeta(name string, value []byte) error {
	k, err := metaKey(name)
	if err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := s.db.Set(k, value, pebble.Sync); err != nil {
		return fmt.Errorf("store: write metadata %q: %w", name, err)
	}
	return nil
}

package mpcodec

import "fmt"

// Fields reads a map at level whose keys name the fields of a struct:
// names lists the known keys, and set decodes the value of names[i] from r.
// A key not in names is skipped; a key named twice is refused (the library
// would merge the two values into one field, which no encoder means).
// isNil reports a nil in place of the map: the library reads it as the
// zero struct, and so should the caller.
func (r *Reader) Fields(level int, names []string, set func(i int) error) (isNil bool, err error) {
	n, err := r.MapLen(level)
	if err != nil || n < 0 {
		return n < 0 && err == nil, err
	}
	var seen uint64
	for range n {
		key, err := r.Key()
		if err != nil {
			return false, err
		}
		i := lookup(names, key)
		if i < 0 {
			if err := r.Skip(level + 1); err != nil {
				return false, err
			}
			continue
		}
		if seen&(1<<i) != 0 {
			return false, invalid("field %q appears twice", names[i])
		}
		seen |= 1 << i
		if err := set(i); err != nil {
			return false, fmt.Errorf("%s: %w", names[i], err)
		}
	}
	return false, nil
}

func lookup(names []string, key []byte) int {
	for i, name := range names {
		if name == string(key) {
			return i
		}
	}
	return -1
}

package wire

import (
	"unicode/utf8"

	"github.com/cairnkv/cairn"
)

// MaxBucketLen is the longest bucket name, in bytes (DESIGN section 3).
const MaxBucketLen = 255

// ValidateKey checks a request's bucket and key: a bucket is 1 to 255 bytes
// of UTF-8, a key 1 to maxKey bytes.
func ValidateKey(bucket string, key []byte, maxKey int) error {
	switch {
	case bucket == "":
		return cairn.InvalidArgument("bucket is empty")
	case len(bucket) > MaxBucketLen:
		return cairn.InvalidArgument("bucket is %d bytes, more than %d", len(bucket), MaxBucketLen)
	case !utf8.ValidString(bucket):
		return cairn.InvalidArgument("bucket is not valid UTF-8")
	case len(key) == 0:
		return cairn.InvalidArgument("key is empty")
	case len(key) > maxKey:
		return cairn.InvalidArgument("key is %d bytes, more than the limit of %d", len(key), maxKey)
	}
	return nil
}

// ValidateValue checks a value against the node's limit.
func ValidateValue(value []byte, maxValue int) error {
	if len(value) > maxValue {
		return cairn.InvalidArgument("value is %d bytes, more than the limit of %d", len(value), maxValue)
	}
	return nil
}

package console

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cairnkv/cairn"
	"github.com/cairnkv/cairn/internal/wire"
)

// KeyReport is every replica's own copy of one key, side by side (GET
// /api/v1/key): what `cairn debug replicas` prints. Differing names the
// replicas whose copy is not the one most replicas hold.
type KeyReport struct {
	Bucket    string        `json:"bucket"`
	Key       string        `json:"key"`
	Partition uint32        `json:"partition"`
	Replicas  []ReplicaView `json:"replicas"`
	Differing []string      `json:"differing"`
}

// ReplicaView is one replica's copy, shaped as `cairn debug replicas -o
// json` prints it, values as text when they are UTF-8 and base64
// otherwise.
type ReplicaView struct {
	Node     string            `json:"node"`
	Primary  bool              `json:"primary"`
	Found    bool              `json:"found"`
	Error    string            `json:"error,omitempty"`
	Siblings []SiblingView     `json:"siblings"`
	Context  map[string]uint64 `json:"context"`
}

// SiblingView is one sibling: its dot, value and write time (Unix ns).
type SiblingView struct {
	Actor         string `json:"actor"`
	Counter       uint64 `json:"counter"`
	Value         string `json:"value"`
	ValueEncoding string `json:"value_encoding"`
	Tombstone     bool   `json:"tombstone"`
	WrittenAt     int64  `json:"written_at"`
}

// maxKeyQuery bounds the key a query may name before it is decoded; the
// node checks it against its own key limit after.
const maxKeyQuery = 1 << 20

func (c *Console) serveKey(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bucket, key := q.Get("bucket"), q.Get("key")
	if bucket == "" || key == "" {
		writeError(w, http.StatusBadRequest, "invalid argument: bucket and key are both required")
		return
	}
	if len(key) > maxKeyQuery || len(bucket) > maxKeyQuery {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid argument: bucket or key longer than %d bytes", maxKeyQuery))
		return
	}
	raw := []byte(key)
	switch enc := q.Get("encoding"); enc {
	case "", "utf8":
	case "base64":
		b, err := base64.StdEncoding.DecodeString(key)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid argument: key is not base64: "+err.Error())
			return
		}
		raw = b
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid argument: encoding %q: must be utf8 or base64", enc))
		return
	}
	resp, err := c.d.Replicas(r.Context(), bucket, raw)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, cairn.ErrInvalidArgument) {
			status = http.StatusBadRequest
		}
		writeError(w, status, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, keyReport(bucket, key, resp))
}

func keyReport(bucket, key string, resp wire.DebugReplicasResp) KeyReport {
	out := KeyReport{Bucket: bucket, Key: key, Partition: resp.Partition, Replicas: []ReplicaView{}, Differing: []string{}}
	sigs := map[string]int{}
	var order []string
	for _, rc := range resp.Replicas {
		v := ReplicaView{Node: rc.Node, Primary: rc.Primary, Found: rc.Found, Error: rc.Err, Siblings: []SiblingView{}, Context: map[string]uint64{}}
		for a, n := range rc.Object.VV {
			v.Context[a] = n
		}
		for _, s := range rc.Object.Siblings {
			sv := SiblingView{Actor: s.Dot.Actor, Counter: s.Dot.Counter, Tombstone: s.Tombstone, WrittenAt: s.WrittenAt,
				Value: string(s.Value), ValueEncoding: "utf8"}
			if !utf8.Valid(s.Value) {
				sv.Value, sv.ValueEncoding = base64.StdEncoding.EncodeToString(s.Value), "base64"
			}
			v.Siblings = append(v.Siblings, sv)
		}
		out.Replicas = append(out.Replicas, v)
		sig := signature(v)
		if sigs[sig] == 0 {
			order = append(order, sig)
		}
		sigs[sig]++
	}
	// The copy most replicas hold is the reference; on a tie, the first
	// listed (primaries come first).
	ref := ""
	for _, s := range order {
		if ref == "" || sigs[s] > sigs[ref] {
			ref = s
		}
	}
	for _, v := range out.Replicas {
		if signature(v) != ref {
			out.Differing = append(out.Differing, v.Node)
		}
	}
	return out
}

// signature is what two replicas must share to hold the same copy: found,
// the siblings' dots and tombstones, and the context. Values follow from
// dots (a dot names one write).
func signature(v ReplicaView) string {
	if v.Error != "" {
		return "error"
	}
	var parts []string
	for _, s := range v.Siblings {
		parts = append(parts, fmt.Sprintf("%q:%d:%v", s.Actor, s.Counter, s.Tombstone))
	}
	slices.Sort(parts)
	var ctx []string
	for a, n := range v.Context {
		ctx = append(ctx, fmt.Sprintf("%q:%d", a, n))
	}
	slices.Sort(ctx)
	return fmt.Sprintf("%v|%s|%s", v.Found, strings.Join(parts, ","), strings.Join(ctx, ","))
}

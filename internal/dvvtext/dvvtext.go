package dvvtext

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/cairnkv/cairn/internal/dvv"
)

// ParseObject reads siblings "actor.counter=value" ("~" for a tombstone),
// each with an optional "@written_at" ("a.1=x@5"), and an optional
// "vv=actor:counter,..." that defaults to the siblings' dots.
func ParseObject(fields []string) (dvv.Object, error) {
	var obj dvv.Object
	var vv dvv.VV
	for _, f := range fields {
		if v, ok := strings.CutPrefix(f, "vv="); ok {
			vv = dvv.VV{}
			for _, e := range strings.Split(v, ",") {
				actor, n, ok := strings.Cut(e, ":")
				c, err := strconv.ParseUint(n, 10, 64)
				if !ok || err != nil {
					return dvv.Object{}, fmt.Errorf("bad vector entry %q", e)
				}
				vv[actor] = c
			}
			continue
		}
		dot, value, ok := strings.Cut(f, "=")
		actor, n, ok2 := strings.Cut(dot, ".")
		c, err := strconv.ParseUint(n, 10, 64)
		if !ok || !ok2 || err != nil {
			return dvv.Object{}, fmt.Errorf("bad sibling %q: want actor.counter=value", f)
		}
		var at int64
		if v, stamp, ok := strings.Cut(value, "@"); ok {
			if at, err = strconv.ParseInt(stamp, 10, 64); err != nil {
				return dvv.Object{}, fmt.Errorf("bad sibling %q: want actor.counter=value@written_at", f)
			}
			value = v
		}
		s := dvv.Sibling{Dot: dvv.Dot{Actor: actor, Counter: c}, Value: []byte(value), WrittenAt: at}
		if value == "~" {
			s = dvv.Sibling{Dot: s.Dot, Tombstone: true, WrittenAt: at}
		}
		obj.Siblings = append(obj.Siblings, s)
	}
	if vv == nil {
		vv = dvv.VV{}
		for _, s := range obj.Siblings {
			vv[s.Dot.Actor] = max(vv[s.Dot.Actor], s.Dot.Counter)
		}
	}
	obj.VV = vv
	slices.SortFunc(obj.Siblings, func(a, b dvv.Sibling) int { return a.Dot.Compare(b.Dot) })
	return obj, nil
}

// FormatObject prints an object as "{siblings | vector}", "{}" when empty.
func FormatObject(o dvv.Object) string {
	if o.Empty() {
		return "{}"
	}
	var sibs []string
	for _, s := range o.Siblings {
		v := string(s.Value)
		if s.Tombstone {
			v = "~"
		}
		sibs = append(sibs, fmt.Sprintf("%s.%d=%s", s.Dot.Actor, s.Dot.Counter, v))
	}
	return "{" + strings.Join(sibs, " ") + " | " + FormatVV(o.VV) + "}"
}

// FormatVV prints a vector's entries sorted by actor.
func FormatVV(vv dvv.VV) string {
	var out []string
	for _, a := range slices.Sorted(maps.Keys(vv)) {
		out = append(out, fmt.Sprintf("%s:%d", a, vv[a]))
	}
	return strings.Join(out, " ")
}

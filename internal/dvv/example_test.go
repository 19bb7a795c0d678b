package dvv_test

import (
	"fmt"

	"github.com/cairnkv/cairn/internal/dvv"
)

// Two clients write the same key through different replicas without reading
// it first; the replicas keep both values. A third client reads the merge,
// resolves it, and writes back with the context it read, which replaces
// exactly the two siblings it saw.
func Example() {
	var onA, onB dvv.Object
	// Update fails only when a counter would pass dvv.MaxCounter.
	onA, _ = onA.Update(nil, "a", []byte("blue"), false, 1)
	onB, _ = onB.Update(nil, "b", []byte("green"), false, 2)

	read := dvv.Sync(onA, onB)
	for _, s := range read.Live() {
		fmt.Printf("sibling %s\n", s.Value)
	}

	// The coordinator on A checks that the context names nothing its copy
	// has not seen, then mints.
	onA = dvv.Sync(onA, onB)
	if actor, ahead := read.VV.Exceeds(onA.VV); ahead {
		fmt.Println("context ahead of the copy at", actor)
		return
	}
	onA, err := onA.Update(read.VV, "a", []byte("teal"), false, 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	onB = dvv.Sync(onB, onA)
	for _, s := range onB.Live() {
		fmt.Printf("after the resolving write: %s\n", s.Value)
	}
	fmt.Println("replicas equal:", onA.Equal(onB))
	// Output:
	// sibling blue
	// sibling green
	// after the resolving write: teal
	// replicas equal: true
}

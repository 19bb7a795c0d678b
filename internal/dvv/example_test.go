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
	onA = onA.Update(nil, "a", []byte("blue"), false, 1)
	onB = onB.Update(nil, "b", []byte("green"), false, 2)

	read := dvv.Sync(onA, onB)
	for _, s := range read.Live() {
		fmt.Printf("sibling %s\n", s.Value)
	}

	onA = dvv.Sync(onA, onB).Update(read.VV, "a", []byte("teal"), false, 3)
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

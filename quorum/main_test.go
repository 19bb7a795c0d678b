package quorum

import (
	"flag"
	"os"
	"testing"
)

// TestMain gives the property tests ten times rapid's default number of
// cases: the trackers are cheap, and the mistakes worth finding (a fallback
// counted as a primary, a not-found counted too early) need several rare
// draws at once. -rapid.checks or RAPID_CHECKS still decide when given.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := os.Getenv("RAPID_CHECKS") != ""
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "rapid.checks" {
			explicit = true
		}
	})
	if !explicit {
		if err := flag.Set("rapid.checks", "1000"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

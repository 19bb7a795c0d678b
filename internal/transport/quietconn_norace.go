//go:build linux && !race

package transport

// Without the race detector there is no order to report: see
// quietconn_race.go.
func raceReleaseIO() {}

func raceAcquireIO() {}

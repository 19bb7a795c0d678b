// Command hostprobe measures the three properties of a machine that move
// cairn's figures from one day to the next when nothing in cairn changed,
// and prints them on one line for the history table of
// docs/PERFORMANCE.md (scripts/perf.sh runs it before each measurement):
//
//   - fsync: the median time to append a small record to a file and
//     fdatasync it, with three writers at once, one file each, in -dir:
//     what three nodes' write-ahead logs ask of one disk.
//   - wake: the median round trip between two threads that block on
//     pipes: two context switches and four system calls, the price of
//     every wake-up a request pays; virtual machines differ most here.
//   - cpu: the time to sort a million integers, for plain CPU speed.
//
// It must never be taken for a benchmark of cairn: it runs no cairn code.
package main

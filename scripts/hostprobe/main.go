package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory for the fsync probe's files (put it on the disk the nodes use)")
	flag.Parse()
	fsync, err := probeFsync(*dir, 3, time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostprobe:", err)
		os.Exit(1)
	}
	wake, err := probeWake(20000)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostprobe:", err)
		os.Exit(1)
	}
	cpu := probeCPU()
	fmt.Printf("fsync %d µs / wake %.1f µs / cpu %d ms\n", fsync.Microseconds(), float64(wake.Nanoseconds())/1e3, cpu.Milliseconds())
}

// probeFsync runs that many appending writers for d and returns the
// median latency of a 512-byte append and its fdatasync.
func probeFsync(dir string, writers int, d time.Duration) (time.Duration, error) {
	var (
		mu    sync.Mutex
		all   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	for i := range writers {
		wg.Go(func() {
			lat, err := appendAndSync(filepath.Join(dir, fmt.Sprintf("hostprobe-%d-%d", os.Getpid(), i)), deadline)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, lat...)
			if err != nil && first == nil {
				first = err
			}
		})
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	if len(all) == 0 {
		return 0, fmt.Errorf("no fsync completed in %v", d)
	}
	slices.Sort(all)
	return all[len(all)/2], nil
}

func appendAndSync(path string, deadline time.Time) (lat []time.Duration, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer func() {
		err = errors.Join(err, f.Close(), os.Remove(path))
	}()
	record := make([]byte, 512)
	for time.Now().Before(deadline) {
		start := time.Now()
		if _, err := f.Write(record); err != nil {
			return lat, err
		}
		if err := syncData(f); err != nil {
			return lat, err
		}
		lat = append(lat, time.Since(start))
	}
	return lat, nil
}

// probeWake returns the median round trip of a byte between two OS
// threads over blocking pipes (outside Go's network poller, so each hop is
// a real sleep and wake-up of a thread).
func probeWake(rounds int) (time.Duration, error) {
	var there, back [2]int
	if err := syscall.Pipe(there[:]); err != nil {
		return 0, err
	}
	if err := syscall.Pipe(back[:]); err != nil {
		return 0, err
	}
	defer func() {
		for _, fd := range []int{there[0], there[1], back[0], back[1]} {
			_ = syscall.Close(fd)
		}
	}()
	echoErr := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b := make([]byte, 1)
		for range rounds {
			if _, err := syscall.Read(there[0], b); err != nil {
				echoErr <- err
				return
			}
			if _, err := syscall.Write(back[1], b); err != nil {
				echoErr <- err
				return
			}
		}
		echoErr <- nil
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b := make([]byte, 1)
	lat := make([]time.Duration, 0, rounds)
	for range rounds {
		start := time.Now()
		if _, err := syscall.Write(there[1], b); err != nil {
			return 0, err
		}
		if _, err := syscall.Read(back[0], b); err != nil {
			return 0, err
		}
		lat = append(lat, time.Since(start))
	}
	if err := <-echoErr; err != nil {
		return 0, err
	}
	slices.Sort(lat)
	return lat[len(lat)/2], nil
}

// probeCPU returns the best of three sorts of the same million integers.
func probeCPU() time.Duration {
	r := rand.New(rand.NewPCG(1, 2))
	src := make([]int, 1<<20)
	for i := range src {
		src[i] = r.Int()
	}
	work := make([]int, len(src))
	best := time.Duration(1<<63 - 1)
	for range 3 {
		copy(work, src)
		start := time.Now()
		slices.Sort(work)
		best = min(best, time.Since(start))
	}
	return best
}

package main

import (
	"os"
	"syscall"
)

// syncData makes f's data durable as pebble's WAL sync does on Linux.
func syncData(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

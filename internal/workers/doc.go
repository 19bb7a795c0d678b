// Package workers runs work on long-lived goroutines that park between
// items and exit when a load's peak has passed: the transport serves
// requests on them, the coordinator makes its replica calls on them.
//
// A pool must never make work wait for a free worker (it starts one), so
// that work which waits on other work of the same pool cannot deadlock;
// bounding concurrency is its callers' business.
package workers

// Package faultnet is test support for in-process clusters: a Net that cuts
// the links between groups of endpoints (node names or addresses), a
// memberlist Transport that honours it, and memberlist timings short enough
// for loopback tests.
//
// Only tests import it. It must never be imported by code that ships
// (internal/lint enforces that).
package faultnet

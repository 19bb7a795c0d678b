package wire

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnkv/cairn"
)

// Code is an error's identity on the wire; each maps to one sentinel error
// of package cairn, so errors.Is works on the far side.
type Code uint8

// The error codes. Numbers are part of the protocol.
const (
	CodeInternal        Code = 1
	CodeNotFound        Code = 2
	CodeQuorum          Code = 3
	CodeTimeout         Code = 4
	CodeInvalidArgument Code = 5
	CodeOverloaded      Code = 6
	CodeUnauthorized    Code = 7
	CodeProtocol        Code = 8
	CodeUnavailable     Code = 9
)

var codeErrors = []struct {
	code Code
	err  error
}{
	{CodeNotFound, cairn.ErrNotFound},
	{CodeQuorum, cairn.ErrQuorum},
	{CodeTimeout, cairn.ErrTimeout},
	{CodeInvalidArgument, cairn.ErrInvalidArgument},
	{CodeOverloaded, cairn.ErrOverloaded},
	{CodeUnauthorized, cairn.ErrUnauthorized},
	{CodeProtocol, cairn.ErrProtocol},
	{CodeUnavailable, cairn.ErrUnavailable},
	{CodeInternal, cairn.ErrInternal},
}

// ErrorResp is the body of an Error frame.
type ErrorResp struct {
	Code    Code   `msgpack:"code"`
	Message string `msgpack:"message"`
	// Quorum carries the counts of a quorum error.
	Quorum *QuorumInfo `msgpack:"quorum,omitempty"`
}

// QuorumInfo is cairn.QuorumError on the wire.
type QuorumInfo struct {
	Op       string        `msgpack:"op"`
	Kind     string        `msgpack:"kind"`
	Need     int           `msgpack:"need"`
	Got      int           `msgpack:"got"`
	Of       int           `msgpack:"of"`
	TimedOut bool          `msgpack:"timed_out"`
	Replicas []ReplicaInfo `msgpack:"replicas"`
}

// ReplicaInfo is cairn.ReplicaOutcome on the wire.
type ReplicaInfo struct {
	Node    string `msgpack:"node"`
	OK      bool   `msgpack:"ok"`
	Primary bool   `msgpack:"primary"`
	Err     string `msgpack:"err,omitempty"`
}

// ErrorFor shapes an error for the wire. Errors that match no sentinel are
// internal; a context deadline is a timeout.
func ErrorFor(err error) ErrorResp {
	var qe *cairn.QuorumError
	if errors.As(err, &qe) {
		info := &QuorumInfo{Op: qe.Op, Kind: qe.Kind, Need: qe.Need, Got: qe.Got, Of: qe.Of, TimedOut: qe.TimedOut}
		for _, r := range qe.Replicas {
			info.Replicas = append(info.Replicas, ReplicaInfo(r))
		}
		return ErrorResp{Code: CodeQuorum, Message: err.Error(), Quorum: info}
	}
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, cairn.ErrTimeout) {
		return ErrorResp{Code: CodeTimeout, Message: fmt.Sprintf("%v: %v", cairn.ErrTimeout, err)}
	}
	for _, ce := range codeErrors {
		if errors.Is(err, ce.err) {
			return ErrorResp{Code: ce.code, Message: err.Error()}
		}
	}
	return ErrorResp{Code: CodeInternal, Message: fmt.Sprintf("%v: %v", cairn.ErrInternal, err)}
}

// Err turns an Error frame back into an error that errors.Is and errors.As
// recognise as the sentinel (or *cairn.QuorumError) the far side returned.
func (r ErrorResp) Err() error {
	if r.Code == CodeQuorum && r.Quorum != nil {
		q := r.Quorum
		qe := &cairn.QuorumError{Op: q.Op, Kind: q.Kind, Need: q.Need, Got: q.Got, Of: q.Of, TimedOut: q.TimedOut}
		for _, ri := range q.Replicas {
			qe.Replicas = append(qe.Replicas, cairn.ReplicaOutcome(ri))
		}
		return qe
	}
	sentinel := cairn.ErrInternal
	for _, ce := range codeErrors {
		if ce.code == r.Code {
			sentinel = ce.err
		}
	}
	return &RemoteError{Message: r.Message, sentinel: sentinel}
}

// RemoteError is an error a node returned. Its message is the node's; it
// unwraps to the sentinel its code names.
type RemoteError struct {
	Message  string
	sentinel error
}

func (e *RemoteError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, cairn.ErrNotFound) and the like hold.
func (e *RemoteError) Unwrap() error { return e.sentinel }

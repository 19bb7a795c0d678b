package wire

import "strconv"

// Type says what a frame's body is. Requests are odd, their responses the
// next even number; Error may answer any request.
type Type uint16

// The message types. Numbers are part of the protocol: never reuse one.
const (
	TypeError   Type = 0
	TypeHello   Type = 1
	TypeHelloOK Type = 2
	TypePing    Type = 3
	TypePong    Type = 4

	TypeGet        Type = 11
	TypeGetResp    Type = 12
	TypePut        Type = 13
	TypePutResp    Type = 14
	TypeDelete     Type = 15
	TypeDeleteResp Type = 16

	TypeReplicaGet     Type = 21
	TypeReplicaGetResp Type = 22
	TypeReplicaPut     Type = 23
	TypeReplicaPutResp Type = 24

	TypeMembers           Type = 31
	TypeMembersResp       Type = 32
	TypeRing              Type = 33
	TypeRingResp          Type = 34
	TypeStatus            Type = 35
	TypeStatusResp        Type = 36
	TypeDebugReplicas     Type = 37
	TypeDebugReplicasResp Type = 38

	// Client routing and operator membership changes.
	TypeRingState        Type = 41
	TypeRingStateResp    Type = 42
	TypeRemoveMember     Type = 43
	TypeRemoveMemberResp Type = 44

	// Hinted handoff.
	TypeHandoff     Type = 51
	TypeHandoffResp Type = 52
	TypeHints       Type = 53
	TypeHintsResp   Type = 54

	// Anti-entropy (aae.go).
	TypeAAEQuery      Type = 61
	TypeAAEAnswer     Type = 62
	TypeAAEFetch      Type = 63
	TypeAAEFetchResp  Type = 64
	TypeAAEPush       Type = 65
	TypeAAEPushResp   Type = 66
	TypeAAEStatus     Type = 67
	TypeAAEStatusResp Type = 68

	// Ownership transfer (transfer.go).
	TypeTransferPush     Type = 71
	TypeTransferPushResp Type = 72
	TypeTransferDone     Type = 73
	TypeTransferDoneResp Type = 74
	TypeTransfers        Type = 75
	TypeTransfersResp    Type = 76
	TypeLeave            Type = 77
	TypeLeaveResp        Type = 78
	TypeReplace          Type = 79
	TypeReplaceResp      Type = 80
	TypeJoin             Type = 89
	TypeJoinResp         Type = 90

	// Security.
	TypeKeyring     Type = 81
	TypeKeyringResp Type = 82
	TypeUsers       Type = 83
	TypeUsersResp   Type = 84

	// Bucket properties (buckets.go).
	TypeBuckets       Type = 85
	TypeBucketsResp   Type = 86
	TypeBucketSet     Type = 87
	TypeBucketSetResp Type = 88

	// Datatypes (datatypes.go).
	TypeCounterIncr     Type = 91
	TypeCounterIncrResp Type = 92
	TypeCounterGet      Type = 93
	TypeCounterGetResp  Type = 94
	TypeSetUpdate       Type = 95
	TypeSetUpdateResp   Type = 96
	TypeSetGet          Type = 97
	TypeSetGetResp      Type = 98

	// Tombstone reaping (reap.go), node to node.
	TypeReapCheck       Type = 101
	TypeReapCheckResp   Type = 102
	TypeReap            Type = 103
	TypeReapResp        Type = 104
	TypeReapWitness     Type = 105
	TypeReapWitnessResp Type = 106

	// Replica writes batched per peer (121-124; 100-119 are taken).
	TypeReplicaPutBatch     Type = 121
	TypeReplicaPutBatchResp Type = 122
)

var typeNames = map[Type]string{
	TypeError: "error", TypeHello: "hello", TypeHelloOK: "hello_ok", TypePing: "ping", TypePong: "pong",
	TypeGet: "get", TypeGetResp: "get_resp", TypePut: "put", TypePutResp: "put_resp",
	TypeDelete: "delete", TypeDeleteResp: "delete_resp",
	TypeReplicaGet: "replica_get", TypeReplicaGetResp: "replica_get_resp",
	TypeReplicaPut: "replica_put", TypeReplicaPutResp: "replica_put_resp",
	TypeReplicaPutBatch: "replica_put_batch", TypeReplicaPutBatchResp: "replica_put_batch_resp",
	TypeMembers: "members", TypeMembersResp: "members_resp", TypeRing: "ring", TypeRingResp: "ring_resp",
	TypeStatus: "status", TypeStatusResp: "status_resp",
	TypeDebugReplicas: "debug_replicas", TypeDebugReplicasResp: "debug_replicas_resp",
	TypeRingState: "ring_state", TypeRingStateResp: "ring_state_resp",
	TypeRemoveMember: "remove_member", TypeRemoveMemberResp: "remove_member_resp",
	TypeHandoff: "handoff", TypeHandoffResp: "handoff_resp", TypeHints: "hints", TypeHintsResp: "hints_resp",
	TypeAAEQuery: "aae_query", TypeAAEAnswer: "aae_answer", TypeAAEFetch: "aae_fetch", TypeAAEFetchResp: "aae_fetch_resp",
	TypeAAEPush: "aae_push", TypeAAEPushResp: "aae_push_resp", TypeAAEStatus: "aae_status", TypeAAEStatusResp: "aae_status_resp",
	TypeTransferPush: "transfer_push", TypeTransferPushResp: "transfer_push_resp",
	TypeTransferDone: "transfer_done", TypeTransferDoneResp: "transfer_done_resp",
	TypeTransfers: "transfers", TypeTransfersResp: "transfers_resp",
	TypeLeave: "leave", TypeLeaveResp: "leave_resp", TypeReplace: "replace", TypeReplaceResp: "replace_resp",
	TypeJoin: "join", TypeJoinResp: "join_resp",
	TypeKeyring: "keyring", TypeKeyringResp: "keyring_resp",
	TypeUsers: "users", TypeUsersResp: "users_resp",
	TypeBuckets: "buckets", TypeBucketsResp: "buckets_resp", TypeBucketSet: "bucket_set", TypeBucketSetResp: "bucket_set_resp",
	TypeCounterIncr: "counter_incr", TypeCounterIncrResp: "counter_incr_resp",
	TypeCounterGet: "counter_get", TypeCounterGetResp: "counter_get_resp",
	TypeSetUpdate: "set_update", TypeSetUpdateResp: "set_update_resp", TypeSetGet: "set_get", TypeSetGetResp: "set_get_resp",
	TypeReapCheck: "reap_check", TypeReapCheckResp: "reap_check_resp", TypeReap: "reap", TypeReapResp: "reap_resp",
	TypeReapWitness: "reap_witness", TypeReapWitnessResp: "reap_witness_resp",
}

// String names the type for logs and metric labels. Every unknown type is
// "unknown", so a hostile peer cannot grow a metric's label set.
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return "unknown"
}

// GoString shows the number too, for error messages.
func (t Type) GoString() string { return t.String() + "(" + strconv.Itoa(int(t)) + ")" }

// Known reports whether t is a type this version of the protocol defines.
func (t Type) Known() bool {
	_, ok := typeNames[t]
	return ok
}

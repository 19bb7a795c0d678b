package wire

// BucketInfo is a bucket's properties as nodes answer them. Zero values
// are the cluster's defaults: N 0, quorums QuorumDefault, NotFoundOK nil,
// SiblingLimit 0, Conflict "" (siblings), Datatype "" (none), DeleteGrace
// "" (keep). Created is false for a bucket never configured.
type BucketInfo struct {
	Name         string `msgpack:"name"`
	Created      bool   `msgpack:"created"`
	N            int    `msgpack:"n"`
	R            Quorum `msgpack:"r"`
	W            Quorum `msgpack:"w"`
	PR           Quorum `msgpack:"pr"`
	PW           Quorum `msgpack:"pw"`
	DW           Quorum `msgpack:"dw"`
	NotFoundOK   *bool  `msgpack:"notfound_ok"`
	Conflict     string `msgpack:"conflict"`
	Datatype     string `msgpack:"datatype"`
	SiblingLimit int    `msgpack:"sibling_limit"`
	DeleteGrace  string `msgpack:"delete_grace"`
}

// BucketsReq asks for one bucket's properties (Name set) or every
// configured bucket's (Name empty).
type BucketsReq struct {
	Name string `msgpack:"name"`
}

// BucketsResp lists buckets' properties, by name.
type BucketsResp struct {
	Buckets []BucketInfo `msgpack:"buckets"`
}

// BucketSetReq creates a bucket (Create) or changes one: the fields set
// are the ones to change.
type BucketSetReq struct {
	Name         string  `msgpack:"name"`
	Create       bool    `msgpack:"create"`
	N            *int    `msgpack:"n"`
	R            *Quorum `msgpack:"r"`
	W            *Quorum `msgpack:"w"`
	PR           *Quorum `msgpack:"pr"`
	PW           *Quorum `msgpack:"pw"`
	DW           *Quorum `msgpack:"dw"`
	NotFoundOK   *bool   `msgpack:"notfound_ok"`
	Conflict     *string `msgpack:"conflict"`
	Datatype     *string `msgpack:"datatype"`
	SiblingLimit *int    `msgpack:"sibling_limit"`
	DeleteGrace  *string `msgpack:"delete_grace"`
}

// BucketSetResp is the bucket's properties after the change.
type BucketSetResp struct {
	Bucket BucketInfo `msgpack:"bucket"`
}

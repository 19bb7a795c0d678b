package node

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/dvv"
	"github.com/cairnkv/cairn/internal/transport"
	"github.com/cairnkv/cairn/internal/wire"
)

// answeringPeer answers every replica put and batch at once, over real
// TCP: what the batcher's own side of a put costs.
type answeringPeer struct{}

func (answeringPeer) Handle(_ context.Context, _ transport.Peer, t wire.Type, body []byte) (wire.Type, any, error) {
	if t == wire.TypeReplicaPutBatch {
		var req wire.ReplicaPutBatchReq
		if err := wire.Decode(body, &req); err != nil {
			return 0, nil, err
		}
		resp := wire.ReplicaPutBatchResp{Items: make([]wire.ReplicaPutResult, len(req.Items))}
		for i := range resp.Items {
			resp.Items[i].Durable = true
		}
		return t + 1, resp, nil
	}
	return t + 1, wire.ReplicaPutResp{Durable: true}, nil
}

func benchCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReplicaBatcher: 50 goroutines put through one batcher to one
// peer in this process (both sides counted); cpu-ns/op is the process's
// CPU per put, the figure to compare on a shared machine.
func BenchmarkReplicaBatcher(b *testing.B) {
	srv := transport.NewServer(transport.DefaultConfig(), answeringPeer{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	bt, pool := batcherTo(ln.Addr().String())
	obj, _ := dvv.Object{}.Update(nil, "n1.a", make([]byte, 100), false, 1)
	req := wire.ReplicaPutReq{Partition: 7, Bucket: "bench", Key: []byte("key-00001234"), Object: obj, Sync: true}
	b.SetParallelism(25) // 50 on 2 processors
	b.ResetTimer()
	start := benchCPU()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := bt.put(ctx, "peer", req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(benchCPU()-start)/float64(b.N), "cpu-ns/op")
	b.StopTimer()
	bt.close()
	_ = pool.Close()
	_ = srv.Shutdown(context.Background())
	<-done
}

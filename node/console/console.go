package console

import (
	"cmp"
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairnkv/cairn/internal/wire"
)

//go:embed assets
var assets embed.FS

// Config tunes the console. DefaultConfig gives every field's default.
type Config struct {
	// PeerTimeout bounds the call to each other member's admin port when a
	// cluster report is gathered: a member that has not answered by then
	// is reported as not answering.
	PeerTimeout time.Duration
	// MaxReportBytes is the largest node report read from a peer.
	MaxReportBytes int64
	// Window is how many seconds of request figures a cluster report
	// charts.
	Window int
}

// DefaultConfig: a second per peer, 4 MiB reports, three minutes charted.
func DefaultConfig() Config {
	return Config{PeerTimeout: time.Second, MaxReportBytes: 4 << 20, Window: 180}
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.PeerTimeout <= 0 {
		errs = append(errs, fmt.Errorf("console peer timeout %v: must be positive", c.PeerTimeout))
	}
	if c.MaxReportBytes < 1024 {
		errs = append(errs, fmt.Errorf("console max report bytes %d: must be at least 1024", c.MaxReportBytes))
	}
	if c.Window < 1 || c.Window > 3600 {
		errs = append(errs, fmt.Errorf("console window %d s: must be 1 to 3600", c.Window))
	}
	return errors.Join(errs...)
}

// Deps is what the console uses of its node, and nothing else.
type Deps struct {
	// Name is this node's name.
	Name string
	// Self reports this node; the console adds the history.
	Self func(ctx context.Context) NodeReport
	// Members lists the ring's members, removed ones included, with their
	// liveness as this node sees it; Ring is the ring it routes by.
	Members func() []Member
	Ring    func() Ring
	// AdminAddr asks a member (over the data port) for the address of its
	// admin port. The console remembers the answer until a call to it
	// fails.
	AdminAddr func(ctx context.Context, node string) (string, error)
	// TLS, when set, is how to reach the members' admin ports over https
	// (security is on: they serve the console's API over TLS only); nil:
	// plain HTTP.
	TLS *tls.Config
	// Replicas is `cairn debug replicas`: every replica's own copy of a
	// key, unmerged.
	Replicas func(ctx context.Context, bucket string, key []byte) (wire.DebugReplicasResp, error)
	History  *History
	Now      func() time.Time
}

// Console serves the page and the API of one node.
type Console struct {
	cfg    Config
	d      Deps
	client *http.Client

	mu     sync.Mutex
	admins map[string]string // member -> admin address, as it last said
}

// New builds a console.
func New(cfg Config, d Deps) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	// No keep-alives: a call a second per peer costs a loopback or LAN
	// handshake, and no connection (nor its goroutines) outlives a call,
	// so the console owns nothing that must be closed.
	tr := &http.Transport{DisableKeepAlives: true, DialContext: (&net.Dialer{}).DialContext,
		ResponseHeaderTimeout: cfg.PeerTimeout, MaxResponseHeaderBytes: 64 << 10}
	if d.TLS != nil {
		tr.TLSClientConfig = d.TLS.Clone()
	}
	return &Console{cfg: cfg, d: d, client: &http.Client{Transport: tr, Timeout: cfg.PeerTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		admins: map[string]string{}}, nil
}

// Handler serves every console route: the page at /, its files under
// /assets/, and the API under /api/v1/. It is the one place the admin
// port's security check wraps (see node's admin server). Only GET and HEAD
// are served: the console changes nothing.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.Handle("GET /{$}", files)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", files))
	mux.HandleFunc("GET /api/v1/node", c.serveNode)
	mux.HandleFunc("GET /api/v1/cluster", c.serveCluster)
	mux.HandleFunc("GET /api/v1/key", c.serveKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the console is read-only: only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// self is this node's report, history included.
func (c *Console) self(ctx context.Context) NodeReport {
	r := c.d.Self(ctx)
	r.LatencyBounds = c.d.History.Bounds()
	r.History = c.d.History.Points()
	return r
}

func (c *Console) serveNode(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.self(r.Context()))
}

// gather asks every member that is not removed for its report, in
// parallel, each under PeerTimeout. It returns the reports of those that
// answered and, for the others, why not.
func (c *Console) gather(ctx context.Context, members []Member) (map[string]*NodeReport, map[string]string) {
	reports := map[string]*NodeReport{}
	failed := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range members {
		if m.Status == "removed" {
			continue
		}
		if m.Name == c.d.Name {
			self := c.self(ctx)
			mu.Lock()
			reports[m.Name] = &self
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			rep, err := c.fetch(ctx, m.Name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[m.Name] = err.Error()
				return
			}
			reports[m.Name] = rep
		})
	}
	wg.Wait()
	return reports, failed
}

// fetch asks one member's admin port for its report.
func (c *Console) fetch(ctx context.Context, node string) (*NodeReport, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.PeerTimeout)
	defer cancel()
	addr, err := c.adminAddr(ctx, node)
	if err != nil {
		return nil, err
	}
	rep, err := c.fetchFrom(ctx, node, addr)
	if err != nil {
		c.forget(node)
		// The HTTP client's own timers share the deadline and may fire a
		// moment before the context's: either way the peer said nothing
		// in time.
		var ne net.Error
		if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
			return nil, fmt.Errorf("no answer within %v from %s's admin port %s", c.cfg.PeerTimeout, node, addr)
		}
	}
	return rep, err
}

func (c *Console) fetchFrom(ctx context.Context, node, addr string) (*NodeReport, error) {
	scheme := "http://"
	if c.d.TLS != nil {
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+addr+"/api/v1/node", nil)
	if err != nil {
		return nil, err
	}
	if auth, ok := ctx.Value(authorizationKey{}).(string); ok && auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin port %s: %w", addr, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin port %s answered %s", addr, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxReportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("admin port %s: reading the report: %w", addr, err)
	}
	if int64(len(body)) > c.cfg.MaxReportBytes {
		return nil, fmt.Errorf("admin port %s: report larger than %d bytes", addr, c.cfg.MaxReportBytes)
	}
	var rep NodeReport
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, fmt.Errorf("admin port %s: malformed report: %w", addr, err)
	}
	if rep.Node != node {
		return nil, fmt.Errorf("admin port %s answered as %q, not %s", addr, rep.Node, node)
	}
	return &rep, nil
}

// unwrapURL drops the method and URL net/http wraps an error in: the
// message names the address already.
func unwrapURL(err error) error {
	var u *url.Error
	if errors.As(err, &u) {
		return u.Err
	}
	return err
}

func (c *Console) adminAddr(ctx context.Context, node string) (string, error) {
	c.mu.Lock()
	addr, ok := c.admins[node]
	c.mu.Unlock()
	if ok {
		return addr, nil
	}
	addr, err := c.d.AdminAddr(ctx, node)
	if err != nil {
		return "", fmt.Errorf("asking for its admin address: %w", err)
	}
	if addr == "" {
		return "", errors.New("it serves no admin port")
	}
	c.mu.Lock()
	c.admins[node] = addr
	c.mu.Unlock()
	return addr, nil
}

func (c *Console) forget(node string) {
	c.mu.Lock()
	delete(c.admins, node)
	c.mu.Unlock()
}

func (c *Console) serveCluster(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.cluster(r.Context()))
}

// cluster gathers every member's report and puts the cluster together.
func (c *Console) cluster(ctx context.Context) ClusterReport {
	members := c.d.Members()
	reports, failed := c.gather(ctx, members)
	ring := c.d.Ring()
	out := ClusterReport{Via: c.d.Name, At: c.d.Now().UnixMilli(), Ring: ring, Unanswered: failed}
	if self, ok := reports[c.d.Name]; ok {
		out.Cluster = self.Cluster
	}
	var histories [][]Point
	for _, m := range members {
		mr := MemberReport{Member: m, Owned: ring.Owned[m.Name]}
		if rep, ok := reports[m.Name]; ok {
			mr.Answered, mr.Admin, mr.UptimeMs, mr.Build, mr.Sees = true, rep.Admin, rep.UptimeMs, rep.Build, rep.Sees
			histories = append(histories, rep.History)
		} else if why, ok := failed[m.Name]; ok {
			mr.Error = why
		}
		out.Members = append(out.Members, mr)
	}
	out.Series = Sum(c.d.History.Bounds(), histories, c.cfg.Window)
	out.Hints = sumHints(reports)
	out.AAE = combineAAE(reports, ring.Partitions)
	out.Transfers = combineTransfers(c.d.Name, reports)
	if n := len(out.Series.RepairsPerMin); n > 0 {
		out.AAE.RepairsLastMinute = out.Series.RepairsPerMin[n-1]
	}
	return out
}

// combineTransfers takes the change as the serving node sees it (another
// answering node's view when the serving node did not answer itself) and
// every answering node's streams, sorted by partition.
func combineTransfers(self string, reports map[string]*NodeReport) TransferReport {
	var out TransferReport
	if rep, ok := reports[self]; ok {
		out = rep.Transfers
	} else {
		for _, name := range slices.Sorted(maps.Keys(reports)) {
			out = reports[name].Transfers
			break
		}
	}
	out.Streams = []TransferStream{}
	for _, rep := range reports {
		out.Streams = append(out.Streams, rep.Transfers.Streams...)
	}
	slices.SortFunc(out.Streams, func(a, b TransferStream) int {
		if a.Partition != b.Partition {
			return cmp.Compare(a.Partition, b.Partition)
		}
		return strings.Compare(a.From+"\x00"+a.To, b.From+"\x00"+b.To)
	})
	return out
}

func sumHints(reports map[string]*NodeReport) HintsReport {
	h := HintsReport{Owners: []OwnerHints{}, Queues: []HeldQueue{}}
	owners := map[string]*OwnerHints{}
	for holder, rep := range reports {
		for _, q := range rep.Hints {
			h.Queues = append(h.Queues, HeldQueue{Holder: holder, HintQueue: q})
			h.Pending += q.Pending
			o := owners[q.Owner]
			if o == nil {
				o = &OwnerHints{Owner: q.Owner}
				owners[q.Owner] = o
			}
			o.Pending += q.Pending
			o.Bytes += q.Bytes
			if q.Pending > 0 {
				o.OldestMs = max(o.OldestMs, q.OldestMs)
			}
		}
	}
	for _, o := range owners {
		h.Owners = append(h.Owners, *o)
	}
	slices.SortFunc(h.Owners, func(a, b OwnerHints) int { return strings.Compare(a.Owner, b.Owner) })
	slices.SortFunc(h.Queues, func(a, b HeldQueue) int {
		return strings.Compare(a.Holder+"\x00"+a.Owner, b.Holder+"\x00"+b.Owner)
	})
	return h
}

// gridRank orders grid states by how much they need a person's eye. An
// exchange is recorded by the node that started it only, so a partition
// one replica exchanged and found in sync is in sync, though its peer
// reports it never exchanged (by itself).
var gridRank = map[byte]int{'.': 0, 'n': 1, 's': 2, 'd': 3, 'r': 4}

// gridNames are the states' names in ClusterAAE.Counts.
var gridNames = map[byte]string{'.': "unreplicated", 's': "in_sync", 'n': "never_exchanged", 'd': "diverged", 'r': "repairing"}

func combineAAE(reports map[string]*NodeReport, partitions int) ClusterAAE {
	out := ClusterAAE{Counts: map[string]int{}}
	grid := []byte(strings.Repeat(".", max(partitions, 0)))
	for _, rep := range reports {
		if !rep.AAE.Enabled {
			continue
		}
		out.Enabled = true
		out.Exchanges += rep.AAE.Exchanges
		out.Failures += rep.AAE.Failures
		for p := 0; p < len(grid) && p < len(rep.AAE.Grid); p++ {
			s := rep.AAE.Grid[p]
			if _, known := gridRank[s]; known && gridRank[s] > gridRank[grid[p]] {
				grid[p] = s
			}
		}
	}
	for _, s := range grid {
		out.Counts[gridNames[s]]++
	}
	out.Grid = string(grid)
	return out
}

type authorizationKey struct{}

// WithAuthorization makes the console's calls to other members' admin
// ports, made for a request with the returned context, carry the given
// Authorization header: that of the person asking, so that a secure
// cluster's admin ports answer the console only what they would answer
// that person.
func WithAuthorization(ctx context.Context, header string) context.Context {
	return context.WithValue(ctx, authorizationKey{}, header)
}

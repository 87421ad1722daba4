package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora/zuoratest"
)

const (
	testCalloutUser = "zuora-callout"
	testCalloutPass = "callout-pass-5up3r-s3cret"
	testOperatorTok = "operator-token-5up3r-s3cret"
)

// callResult is one callout the load generator sent.
type callResult struct {
	sent, done time.Time
	status     int
	taskID     string
	err        error
}

// calloutLoad posts callouts for id to base until stop is closed. snapshot
// returns the callouts answered so far; wait waits for the senders to stop and
// returns them all.
func calloutLoad(base, id string, workers int, stop <-chan struct{}) (snapshot, wait func() []callResult) {
	var (
		mu  sync.Mutex
		out []callResult
		wg  sync.WaitGroup
	)
	client := &http.Client{Timeout: 15 * time.Second}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, base+"/api/plugins/zuora/sync/subscription/"+id, nil)
				req.SetBasicAuth(testCalloutUser, testCalloutPass)
				r := callResult{sent: time.Now()}
				resp, err := client.Do(req)
				r.done, r.err = time.Now(), err
				if err == nil {
					r.status = resp.StatusCode
					var body struct {
						TaskID string `json:"task_id"`
					}
					_ = json.NewDecoder(resp.Body).Decode(&body)
					resp.Body.Close()
					r.taskID = body.TaskID
				}
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // pacing the load, not a wait
			}
		}()
	}
	snapshot = func() []callResult {
		mu.Lock()
		defer mu.Unlock()
		return append([]callResult(nil), out...)
	}
	return snapshot, func() []callResult {
		wg.Wait()
		return snapshot()
	}
}

func operatorGet(t *testing.T, url string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+testOperatorTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestResilienceRedisDown: Redis dies under callout load. While it is down the
// ingress answers 503 (never 200: Zuora must deliver again) and /readyz says
// not ready; when Redis is back (empty) the same ingress process recovers by
// itself, every 200 it gives names a task that exists, and a worker process
// started then syncs.
func TestResilienceRedisDown(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	zs, ls := zuoratest.NewServer(t), limiotest.NewServer(t)
	putSub(t, zs, 0, initialState())
	want := reference(t, map[int][]subState{0: {initialState()}})

	addr := freeAddr(t)
	base := "http://" + addr
	env := upstreamEnv(rs, zs, ls, "ZSYNC_HTTP_ADDR="+addr,
		"ZSYNC_CALLOUT_USERNAME="+testCalloutUser, "ZSYNC_CALLOUT_PASSWORD="+testCalloutPass,
		"ZSYNC_OPERATOR_TOKEN="+testOperatorTok)
	srv := startProc(t, "serve", env, "serve")
	waitHTTP(t, srv, base+"/healthz", 30*time.Second)
	if got := operatorGet(t, base+"/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz before the outage: %d", got)
	}

	stop := make(chan struct{})
	snapshot, wait := calloutLoad(base, subNumber(0), 2, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			wait()
		}
	}()
	// answered200 counts the callouts sent after from that were answered 200.
	answered200 := func(from time.Time) int {
		n := 0
		for _, r := range snapshot() {
			if r.sent.After(from) && r.status == http.StatusOK {
				n++
			}
		}
		return n
	}
	eventually(t, 30*time.Second, "3 callouts answered before the outage", func() bool { return answered200(time.Time{}) >= 3 })

	rs.Stop()
	downAt := time.Now()
	eventually(t, 10*time.Second, "/readyz to say 503", func() bool { return operatorGet(t, base+"/readyz") == http.StatusServiceUnavailable })
	// Load during the outage: held until a few callouts sent during it have
	// been answered. A 503 is not instant (the Redis clients redial and retry
	// before giving up: ~4 s on a loaded machine), so a fixed pause could
	// end the outage before any answer.
	eventually(t, 30*time.Second, "3 callouts sent during the outage to be answered", func() bool {
		n := 0
		for _, r := range snapshot() {
			if r.sent.After(downAt) {
				n++
			}
		}
		return n >= 3
	})
	if got := operatorGet(t, base+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz while Redis is down: %d; want 503", got)
	}
	upAt := time.Now()
	rs.Restart(t)
	upDone := time.Now()
	eventually(t, 20*time.Second, "/readyz to recover", func() bool { return operatorGet(t, base+"/readyz") == http.StatusOK })
	eventually(t, 30*time.Second, "3 callouts sent after the restart to be answered 200", func() bool { return answered200(upDone) >= 3 })
	close(stop)
	results := wait()

	var before, down, after200 int
	var slowest time.Duration
	var after []callResult
	for _, r := range results {
		switch {
		case r.done.Before(downAt):
			if r.status == http.StatusOK {
				before++
			}
		case r.sent.After(downAt) && r.done.Before(upAt):
			down++
			slowest = max(slowest, r.done.Sub(r.sent))
			if r.err != nil || r.status != http.StatusServiceUnavailable {
				t.Errorf("callout sent %v after Redis stopped: status %d, err %v; want 503",
					r.sent.Sub(downAt).Round(time.Millisecond), r.status, r.err)
			}
		case r.sent.After(downAt) && r.sent.Before(upAt):
			// Sent during the outage, answered after Redis came back: a 503, or
			// a 200 for a task stored after the restart (checked below).
			if r.status == http.StatusOK {
				after = append(after, r)
			} else if r.err != nil || r.status != http.StatusServiceUnavailable {
				t.Errorf("callout straddling the restart: status %d, err %v; want 503 or 200", r.status, r.err)
			}
		case r.sent.After(upDone) && r.status == http.StatusOK:
			after200++
			after = append(after, r)
		}
	}
	t.Logf("callouts: %d in all; %d answered 200 before the outage, %d sent during it (slowest answer %v), %d answered 200 after it",
		len(results), before, down, slowest.Round(time.Millisecond), after200)
	if before == 0 || down == 0 || after200 == 0 {
		t.Fatalf("load did not cover every phase: %d before, %d down, %d after", before, down, after200)
	}

	// Every 200 after the restart names a task in the (new, empty) Redis.
	// Checked on asynq's task key: the Inspector can't see the queue (see
	// TestResilienceQueueListedAfterRedisRestart).
	rdb := rs.Client(t)
	for _, r := range after {
		if n, err := rdb.Exists(t.Context(), "asynq:{"+worker.QueueCallouts+"}:t:"+r.taskID).Result(); err != nil || n != 1 {
			t.Errorf("200 for task %q but Redis doesn't have it (%d, %v)", r.taskID, n, err)
		}
	}

	// A worker started now syncs, and a new callout is recorded.
	startProc(t, "work", env, "work")
	converged(t, ls, want, 30*time.Second)
	req, _ := http.NewRequest(http.MethodPost, base+"/api/plugins/zuora/sync/subscription/"+subNumber(0), nil)
	req.SetBasicAuth(testCalloutUser, testCalloutPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		TaskID string `json:"task_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || body.TaskID == "" {
		t.Fatalf("callout after recovery: %d %+v", resp.StatusCode, body)
	}
	eventually(t, 20*time.Second, "the new callout's sync to be recorded", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/subscriptions/"+subNumber(0)+"/sync", nil)
		req.Header.Set("Authorization", "Bearer "+testOperatorTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct {
			Latest  worker.Record   `json:"latest"`
			History []worker.Record `json:"history"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
			return false
		}
		for _, r := range append(st.History, st.Latest) {
			if r.TaskID == body.TaskID && r.Error == "" {
				return true
			}
		}
		return false
	})

	// Every line the ingress wrote through the outage is JSON: go-redis's
	// own complaints (redials, a pool that can't dial) come through zap too.
	srv.stop(t, 30*time.Second)
	redisLines := 0
	for _, line := range strings.Split(strings.TrimSpace(srv.out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("serve: log line is not JSON: %s", line)
			continue
		}
		if m["logger"] == "redis" {
			redisLines++
		}
	}
	t.Logf("serve: %d JSON lines from go-redis", redisLines)
}

// TestResilienceQueueListedAfterRedisRestart: after Redis comes back empty, a
// long-running ingress keeps enqueueing, but asynq's client registers a queue
// in asynq:queues only the first time it enqueues to it (rdb.queuesPublished),
// so the Inspector and asynqmon report "queue not found" for the callouts
// queue until every process that enqueued before the outage restarts. The
// tasks themselves are stored and processed.
func TestResilienceQueueListedAfterRedisRestart(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := redis.NewClient(rs.Options())
	t.Cleanup(func() { _ = rdb.Close() })
	enq := worker.NewEnqueuer(rdb, asynq.NewClientFromRedisClient(rdb), worker.EnqueueConfig{}, zap.NewNop())
	if _, _, err := enq.Enqueue(t.Context(), subNumber(0), syncer.Trigger{Source: syncer.SourceCallout}, ""); err != nil {
		t.Fatal(err)
	}
	rs.Restart(t)
	// The running enqueuer re-registers its queues within its refresh period
	// (asynq itself registers a queue only on a client's first enqueue).
	i := 1
	eventually(t, 20*time.Second, "a task enqueued after the restart visible to the Inspector", func() bool {
		i++
		_, id, err := enq.Enqueue(t.Context(), subNumber(i), syncer.Trigger{Source: syncer.SourceCallout}, "")
		if err != nil {
			return false
		}
		_, err = inspector(t, rs).GetTaskInfo(worker.QueueCallouts, id)
		return err == nil
	})
}

package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/zsync/zsync/internal/redistest"
	"github.com/zsync/zsync/internal/waittest"
	"github.com/zsync/zsync/worker"
)

type fakeResyncs struct {
	mu  sync.Mutex
	got []ResyncSelection
	err error
}

func (f *fakeResyncs) StartResync(_ context.Context, sel ResyncSelection) (worker.JobProgress, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return worker.JobProgress{}, f.err
	}
	f.got = append(f.got, sel)
	return worker.JobProgress{ID: "rs-20260101T000000-0000abcd", State: worker.JobRunning}, nil
}

func (f *fakeResyncs) ResyncProgress(_ context.Context, id string) (worker.JobProgress, error) {
	if id == "rs-20260101T000000-0000abcd" {
		return worker.JobProgress{ID: id, State: worker.JobDone, Read: 2}, nil
	}
	return worker.JobProgress{}, worker.ErrJobNotFound
}

func opPost(path, body string) req {
	return req{method: http.MethodPost, path: path, ct: "application/json", body: body, bearer: opToken}
}

func TestResyncRequests(t *testing.T) {
	t.Parallel()
	rs := &fakeResyncs{}
	b := setup(t, baseConfig(), func(d *Deps) { d.Resyncs = rs })

	rec := b.do(t, opPost("/v1/resyncs", `{"ids":["A-S00000001","sub-0123456789abcdef"]}`))
	wantStatus(t, rec, http.StatusAccepted)
	m := decode(t, rec)
	if m["id"] != "rs-20260101T000000-0000abcd" || m["state"] != "running" ||
		rec.Header().Get("Location") != "/v1/resyncs/rs-20260101T000000-0000abcd" {
		t.Fatalf("answer %v, Location %q", m, rec.Header().Get("Location"))
	}
	wantStatus(t, b.do(t, opPost("/v1/resyncs", `{"status":"Active","updated_since":"2026-01-01"}`)), http.StatusAccepted)
	wantStatus(t, b.do(t, opPost("/v1/resyncs", `{"updated_since":"2026-01-01T10:00:00+02:00"}`)), http.StatusAccepted)
	if len(rs.got) != 3 || len(rs.got[0].IDs) != 2 || rs.got[1].Status != "Active" ||
		!rs.got[1].UpdatedSince.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		!rs.got[2].UpdatedSince.Equal(time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("selections = %+v", rs.got)
	}

	for name, body := range map[string]string{
		"empty":         `{}`,
		"both":          `{"ids":["A-S1"],"status":"Active"}`,
		"no ids":        `{"ids":[]}`,
		"invalid id":    `{"ids":["A-S00000001","../etc/passwd"]}`,
		"bad status":    `{"status":"Active' or '1'='1"}`,
		"bad date":      `{"updated_since":"yesterday"}`,
		"unknown field": `{"ids":["A-S1"],"queue":"callouts"}`,
		"not json":      `ids=A-S1`,
	} {
		rec := b.do(t, opPost("/v1/resyncs", body))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d; want 400 (%s)", name, rec.Code, rec.Body.String())
		}
	}
	if rec := b.do(t, opPost("/v1/resyncs", `{"ids":["x1","A-S1"]}`)); !strings.Contains(rec.Body.String(), `\"x1\"`) {
		t.Errorf("invalid ids not named: %s", rec.Body.String())
	}
	if len(rs.got) != 3 {
		t.Errorf("invalid requests reached the job runner: %+v", rs.got[3:])
	}

	get := func(path string) req { return req{method: http.MethodGet, path: path, bearer: opToken} }
	rec = b.do(t, get("/v1/resyncs/rs-20260101T000000-0000abcd"))
	wantStatus(t, rec, http.StatusOK)
	if m := decode(t, rec); m["state"] != "done" || m["read"] != float64(2) {
		t.Errorf("progress = %v", m)
	}
	wantError(t, b.do(t, get("/v1/resyncs/rs-20260101T000000-ffffffff")), http.StatusNotFound)
	wantError(t, b.do(t, get("/v1/resyncs/nope")), http.StatusBadRequest)

	// Operator credentials are required.
	wantError(t, b.do(t, req{method: http.MethodPost, path: "/v1/resyncs", ct: "application/json", body: `{"ids":["A-S1"]}`}), http.StatusUnauthorized)
	wantError(t, b.do(t, req{method: http.MethodGet, path: "/v1/resyncs/rs-20260101T000000-0000abcd"}), http.StatusUnauthorized)

	for err, code := range map[error]int{
		ErrResyncBusy:        http.StatusTooManyRequests,
		ErrResyncUnsupported: http.StatusNotImplemented,
		errors.New("redis"):  http.StatusServiceUnavailable,
	} {
		rs.mu.Lock()
		rs.err = err
		rs.mu.Unlock()
		wantError(t, b.do(t, opPost("/v1/resyncs", `{"ids":["A-S1"]}`)), code)
	}
}

func TestResyncWithoutDepIs501(t *testing.T) {
	t.Parallel()
	b := setup(t, baseConfig())
	wantError(t, b.do(t, opPost("/v1/resyncs", `{"ids":["A-S1"]}`)), http.StatusNotImplemented)
	wantError(t, b.do(t, req{method: http.MethodGet, path: "/v1/resyncs/rs-20260101T000000-0000abcd", bearer: opToken}),
		http.StatusNotImplemented)
}

// jobsAdapter is the smallest real Resyncs: worker.Jobs on a real Redis,
// jobs run in the background of the test.
type jobsAdapter struct {
	ctx  context.Context
	jobs *worker.Jobs
	wg   sync.WaitGroup
}

func (a *jobsAdapter) StartResync(ctx context.Context, sel ResyncSelection) (worker.JobProgress, error) {
	p, err := a.jobs.Create(ctx, "api")
	if err != nil {
		return p, err
	}
	a.wg.Go(func() { _, _ = a.jobs.Run(a.ctx, p.ID, worker.ListSource(sel.IDs)) })
	return p, nil
}

func (a *jobsAdapter) ResyncProgress(ctx context.Context, id string) (worker.JobProgress, error) {
	return a.jobs.Progress(ctx, id)
}

// Through the router to a real Redis: the ids land in the bulk queue and the
// progress is served.
func TestResyncThroughRealJobs(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	client := asynq.NewClientFromRedisClient(rdb)
	enq := worker.NewEnqueuer(rdb, client, worker.EnqueueConfig{}, zap.NewNop())
	a := &jobsAdapter{ctx: t.Context(), jobs: worker.NewJobs(rdb, enq, worker.JobsConfig{}, nil)}
	t.Cleanup(a.wg.Wait)
	b := setup(t, baseConfig(), func(d *Deps) { d.Resyncs = a })

	rec := b.do(t, opPost("/v1/resyncs", `{"ids":["A-S00000001","A-S00000002","A-S00000001"]}`))
	wantStatus(t, rec, http.StatusAccepted)
	id, _ := decode(t, rec)["id"].(string)
	var m map[string]any
	waittest.For(t, 10*time.Second, "the job to be enqueued", func() bool {
		rec = b.do(t, req{method: http.MethodGet, path: "/v1/resyncs/" + id, bearer: opToken})
		wantStatus(t, rec, http.StatusOK)
		m = decode(t, rec)
		return m["state"] == string(worker.JobEnqueued)
	})
	if m["read"] != float64(3) || m["enqueued"] != float64(2) || m["coalesced"] != float64(1) || m["pending"] != float64(3) {
		t.Fatalf("progress = %v", m)
	}
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr, DB: rs.DB})
	defer insp.Close()
	if info, err := insp.GetQueueInfo(worker.QueueBulk); err != nil || info.Pending != 2 {
		t.Fatalf("bulk queue: %+v %v", info, err)
	}
}

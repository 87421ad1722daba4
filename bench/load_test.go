package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is one closed-loop load run: conns connections, each sending
// its next request as soon as the last one answered.
type loadResult struct {
	ok, errs int
	elapsed  time.Duration
	lat      []time.Duration // of the 2xx answers, sorted
	firstErr string
}

func (r loadResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r loadResult) String() string {
	return fmt.Sprintf("%d ok, %d errors in %v: %.0f/s, p50 %s, p99 %s",
		r.ok, r.errs, r.elapsed.Round(time.Millisecond), r.rate(), ms(percentile(r.lat, 50)), ms(percentile(r.lat, 99)))
}

// merge adds another run of the same target (interleaved rounds).
func (r loadResult) merge(o loadResult) loadResult {
	r.ok += o.ok
	r.errs += o.errs
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
	sortDurations(r.lat)
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
	return r
}

// newLoadClient is a keep-alive client with a connection per worker.
func newLoadClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
			DisableCompression: true, IdleConnTimeout: time.Minute,
		},
		Timeout: 10 * time.Second,
	}
}

// runLoad drives conns workers for d. newReq builds request n (n counts up
// across workers from 0).
func runLoad(ctx context.Context, client *http.Client, conns int, d time.Duration, newReq func(n int64) *http.Request) loadResult {
	var (
		seq      atomic.Int64
		mu       sync.Mutex
		res      loadResult
		wg       sync.WaitGroup
		deadline = time.Now().Add(d)
	)
	start := time.Now()
	for range conns {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			var ok, errs int
			var firstErr string
			for time.Now().Before(deadline) && ctx.Err() == nil {
				req := newReq(seq.Add(1) - 1).WithContext(ctx)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				ok++
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.ok += ok
			res.errs += errs
			res.lat = append(res.lat, lat...)
			if res.firstErr == "" {
				res.firstErr = firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	sortDurations(res.lat)
	return res
}

package worker

import (
	"sync"
	"time"
)

// recordGrace bounds how long Shutdown waits, after asynq gave up on the
// syncs still running (worker.shutdown_timeout) and cancelled them, for each
// to record that it was interrupted. A run records within its own deadlines
// (5 s per Redis step); a syncer that ignores its context is not waited for
// past this.
const recordGrace = 10 * time.Second

// inflight counts the runs between the start and the end of ProcessTask.
// asynq's Shutdown returns once it has put the interrupted tasks back in
// the queue, without waiting for their handlers: the process would exit
// before they recorded. Server.Shutdown waits on this instead.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n falls to 0; nil while it is 0
}

// enter counts a run in; the run calls the returned leave when it ends.
func (f *inflight) enter() (leave func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.n--; f.n == 0 {
			close(f.idle)
			f.idle = nil
		}
	}
}

// wait waits until no run is in, at most d, and returns how many still are.
func (f *inflight) wait(d time.Duration) int {
	f.mu.Lock()
	idle := f.idle
	f.mu.Unlock()
	if idle == nil {
		return 0
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
		return 0
	case <-t.C:
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.n
	}
}

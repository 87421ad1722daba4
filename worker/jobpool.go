package worker

import (
	"context"
	"errors"
	"sync"

	"go.uber.org/zap"
)

// ErrJobPoolBusy is JobPool.Start's answer while MaxJobs jobs run.
var ErrJobPoolBusy = errors.New("too many resync jobs running; try again later")

// DefaultMaxJobs is how many jobs a JobPool runs at once unless told.
const DefaultMaxJobs = 4

// JobPool runs resync jobs in the background of a long-lived process (the
// ingress serving POST /v1/resyncs): one goroutine per job, at most maxJobs
// at once, all ended with the pool's context or by Stop. A job's request
// only creates it; its run belongs to the process, not to the request.
type JobPool struct {
	ctx    context.Context // the process's lifetime, ended by Stop
	cancel context.CancelFunc
	jobs   *Jobs
	sem    chan struct{}
	wg     sync.WaitGroup
	log    *zap.Logger
}

// NewJobPool returns a pool running jobs until ctx ends or Stop; maxJobs <= 0
// takes DefaultMaxJobs.
func NewJobPool(ctx context.Context, jobs *Jobs, maxJobs int, logger *zap.Logger) *JobPool {
	if maxJobs <= 0 {
		maxJobs = DefaultMaxJobs
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(ctx)
	return &JobPool{ctx: ctx, cancel: cancel, jobs: jobs, sem: make(chan struct{}, maxJobs), log: logger}
}

// Start creates a job reading src (desc says what it is, for its record)
// and runs it in the background; it returns once the job exists, or
// ErrJobPoolBusy.
func (p *JobPool) Start(ctx context.Context, src IDSource, desc string) (JobProgress, error) {
	select {
	case p.sem <- struct{}{}:
	default:
		return JobProgress{}, ErrJobPoolBusy
	}
	job, err := p.jobs.Create(ctx, desc)
	if err != nil {
		<-p.sem
		return job, err
	}
	p.wg.Go(func() {
		defer func() { <-p.sem }()
		if _, err := p.jobs.Run(p.ctx, job.ID, src); err != nil {
			p.log.Warn("resync job stopped", zap.String("job", job.ID), zap.Error(err))
		}
	})
	return job, nil
}

// Progress reads a job's progress; ErrJobNotFound for an unknown id.
func (p *JobPool) Progress(ctx context.Context, id string) (JobProgress, error) {
	return p.jobs.Progress(ctx, id)
}

// Stop ends the running jobs (they are marked failed: interrupted; what they
// enqueued still syncs) and waits for them.
func (p *JobPool) Stop() {
	p.cancel()
	p.wg.Wait()
}

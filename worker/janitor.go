package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// releaseArchived closes the epoch of every archived sync task that still
// holds its subscription's current epoch, and returns how many it closed.
//
// Every path that archives a task closes its epoch itself, bar one: a worker
// that dies on a task's second-to-last attempt and again on its last, before
// the lock (asynq's recoverer archives without calling zsync). Such a task
// would take every later callout for the subscription as "coalesced" until an
// operator deleted it. The sweep runs this as a safety net.
func releaseArchived(ctx context.Context, rdb redis.UniversalClient, keys keyspace, queues ...string) (int, error) {
	insp := asynq.NewInspectorFromRedisClient(rdb) // shares rdb: nothing to close
	const pageSize = 100
	closed := 0
	for _, q := range queues {
		for page := 1; ; page++ {
			if err := ctx.Err(); err != nil {
				return closed, err
			}
			tasks, err := insp.ListArchivedTasks(q, asynq.PageSize(pageSize), asynq.Page(page))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				break
			}
			if err != nil {
				return closed, fmt.Errorf("list archived tasks of %s: %w", q, err)
			}
			for _, t := range tasks {
				if t.Type != taskTypeSync {
					continue
				}
				key, epoch, ok := taskEpoch(t.ID, t.Payload)
				if !ok {
					continue
				}
				adv, err := runAdvance(ctx, rdb, keys, key, epoch, true)
				if err != nil {
					return closed, err
				}
				if adv.advanced {
					closed++
				}
			}
			if len(tasks) < pageSize {
				break
			}
		}
	}
	return closed, nil
}

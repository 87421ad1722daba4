package worker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The epoch protocol (docs/design.md "The epoch protocol"): every rule about a
// subscription's epochs is in this file, its Redis scripts, the claim and the
// advance, and how a task id names its epoch.
//
// The epoch of a subscription lives in one Redis hash, <prefix>epoch:X
// (keyspace.epoch), so that every script touching it names a single key
// (Redis Cluster safe without hash tags):
//
//	e   the current epoch: callouts enqueue (or coalesce into) task "X:<e>"
//	n   callouts accepted during epoch e
//	pe  the epoch the last advance closed, pn its callout count, so a retry
//	    of that task still knows how many callouts it carries
//	s   when the last advance happened (Redis clock, ms): a sync started
//	j:<e>:<job>  bulk jobs waiting on epoch e (jobFieldLua; settle.go)
//
// The hash never expires: epochs must only grow, or a retained or archived
// task id could be reused and swallow a callout.

// jobFieldLua names the field registering a bulk job as waiting on epoch e:
// the one spelling of j:<e>:<job>, which the claim, the put-back and
// settleScript (which reads it back) all go through.
const jobFieldLua = `
local function jobField(e, job) return 'j:' .. e .. ':' .. job end
`

// claimScript reads the epoch and counts the callout in it, atomically with
// respect to advanceScript: a callout either lands in the count the handler
// reads when it closes the epoch, or in the next epoch. With a job id
// (ARGV[1], bulk re-sync) it also registers the job as waiting on the key,
// in the same step (jobField), so the run that closes epoch e is sure to see
// it (settleJobs). It returns the epoch, the count, and how many milliseconds
// ago the last sync of the key started (-1: none).
var claimScript = redis.NewScript(claimLua)

const claimLua = jobFieldLua + `
local e = redis.call('HGET', KEYS[1], 'e') or '0'
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
if ARGV[1] ~= '' then
  redis.call('HINCRBY', KEYS[1], jobField(e, ARGV[1]), 1)
end
local s = tonumber(redis.call('HGET', KEYS[1], 's') or '-1')
local age = -1
if s >= 0 then
  local t = redis.call('TIME')
  age = math.max(0, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - s)
end
return {tonumber(e), n, age}
`

// reviveScript closes epoch ARGV[2] when it is still current, because its
// task will never run (archived or completed: an operator archived it in
// asynqmon), then claims like claimScript. It leaves the sync start time
// alone: no sync started. The count of the closed epoch is kept in pn, as
// an advance keeps it, for a re-run of that task.
var reviveScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'e') or '0')
if cur == tonumber(ARGV[2]) then
  local cn = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
  redis.call('HSET', KEYS[1], 'e', cur + 1, 'n', 0, 'pe', cur, 'pn', cn)
end
` + claimLua)

// claim is what claimScript answered.
type claim struct {
	epoch    int64
	callouts int64         // callouts counted in this epoch so far
	since    time.Duration // since the last sync of the key started; <0 none
}

func parseClaim(key string, v []int64, err error) (claim, error) {
	if err == nil && len(v) != 3 {
		err = fmt.Errorf("unexpected reply %v", v)
	}
	if err != nil {
		return claim{}, fmt.Errorf("read epoch of %s: %w", key, err)
	}
	since := time.Duration(v[2]) * time.Millisecond
	if v[2] < 0 {
		since = -1
	}
	return claim{epoch: v[0], callouts: v[1], since: since}, nil
}

// claimTimeout bounds one pipeline of claims: it serves many callouts, so it
// can't use any one callout's context.
const claimTimeout = 5 * time.Second

// claimer runs the epoch claims of concurrent callouts in shared
// pipelines. Under load a callout costs two Redis round trips (the claim,
// then asynq's enqueue, which needs the claimed epoch); batching the claims
// removes most of the first. One batch is in flight at a time. A bulk batch
// (enqueueBatch) goes through the same pipeline, claimMany, at once.
type claimer struct {
	rdb   redis.UniversalClient
	keys  keyspace
	batch batcher[*pendingClaim]
}

func newClaimer(rdb redis.UniversalClient, keys keyspace) *claimer {
	cl := &claimer{rdb: rdb, keys: keys}
	cl.batch = batcher[*pendingClaim]{send: cl.send, maxInFlight: 1}
	return cl
}

// claimReq asks to count one callout for key; job, when set, registers the
// bulk job as waiting on the key's epoch.
type claimReq struct{ key, job string }

type claimRes struct {
	c   claim
	err error
}

type pendingClaim struct {
	req  claimReq
	done chan claimRes // buffered: send never blocks on a caller that left
}

// claim counts one callout for key in its current epoch.
func (cl *claimer) claim(ctx context.Context, key string) (claim, error) {
	p := &pendingClaim{req: claimReq{key: key}, done: make(chan claimRes, 1)}
	cl.batch.add(p)
	select {
	case r := <-p.done:
		return r.c, r.err
	case <-ctx.Done():
		// The claim may still run: a callout counted but not enqueued only
		// makes the epoch's task skip the loop guard (a full sync).
		return claim{}, ctx.Err()
	}
}

func (cl *claimer) send(batch []*pendingClaim) {
	ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
	defer cancel()
	reqs := make([]claimReq, len(batch))
	for i, p := range batch {
		reqs[i] = p.req
	}
	for i, r := range cl.claimMany(ctx, reqs) {
		batch[i].done <- r
	}
}

// claimMany claims reqs in one pipeline of claimScript calls, answering each
// in order. (A MULTI/EXEC of plain commands would cost Redis less, but a
// transaction can't span hash slots on Redis Cluster, and a batch's keys
// do.) A NOSCRIPT answer (the script cache empty: first use, or flushed)
// means that command did not run; those claims go again, in one pipeline
// that sends the script itself.
func (cl *claimer) claimMany(ctx context.Context, reqs []claimReq) []claimRes {
	res := make([]claimRes, len(reqs))
	if len(reqs) == 1 {
		r := reqs[0]
		v, err := claimScript.Run(ctx, cl.rdb, []string{cl.keys.epoch(r.key)}, r.job).Int64Slice()
		res[0].c, res[0].err = parseClaim(r.key, v, err)
		return res
	}
	run := func(idx []int, eval bool) (again []int) {
		pipe := cl.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(idx))
		for j, i := range idx {
			keys := []string{cl.keys.epoch(reqs[i].key)}
			if eval {
				cmds[j] = claimScript.Eval(ctx, pipe, keys, reqs[i].job)
			} else {
				cmds[j] = claimScript.EvalSha(ctx, pipe, keys, reqs[i].job)
			}
		}
		_, _ = pipe.Exec(ctx) // errors are read per command
		for j, i := range idx {
			v, err := cmds[j].Int64Slice()
			if err != nil && !eval && redis.HasErrorPrefix(err, "NOSCRIPT") {
				again = append(again, i)
				continue
			}
			res[i].c, res[i].err = parseClaim(reqs[i].key, v, err)
		}
		return again
	}
	all := make([]int, len(reqs))
	for i := range all {
		all[i] = i
	}
	if again := run(all, false); len(again) > 0 {
		run(again, true)
	}
	return res
}

// revive closes epoch (if still current: its task will never run) and
// claims the callout again in the next one (reviveScript).
func (cl *claimer) revive(ctx context.Context, key string, epoch int64, job string) (claim, error) {
	v, err := reviveScript.Run(ctx, cl.rdb, []string{cl.keys.epoch(key)}, job, epoch).Int64Slice()
	return parseClaim(key, v, err)
}

// advanceScript closes the task's epoch (ARGV[1], -1 when unknown) so later
// callouts make a new task. With ARGV[2] == "1" it only does so when the
// task's epoch is still current (the dead-task paths). It returns the current
// epoch, the callouts the task carries (-1 when unknown), 1 if it advanced,
// and 1 if any bulk job is registered on the key (a jobField), so that a run
// that saw none needn't settle (settleJobs); a task whose epoch was already
// closed (a retry) gets the count remembered when it was closed.
var advanceScript = redis.NewScript(advanceLua + `
return advance(KEYS[1], tonumber(ARGV[1]), ARGV[2] == '1')
`)

// advanceLua is advanceScript's body as a function of the epoch hash, the
// task's epoch and cas, shared with lockAdvanceScript.
const advanceLua = `
local function advance(key, t, cas)
  local now = redis.call('TIME')
  local s = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local e = tonumber(redis.call('HGET', key, 'e') or '0')
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  local jobs = 0
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if string.sub(f, 1, 2) == 'j:' then jobs = 1 break end
  end
  if t < 0 then
    if cas then return {e, -1, 0, jobs} end
    redis.call('HSET', key, 'e', e + 1, 'n', 0, 'pe', e, 'pn', n, 's', s)
    return {e + 1, -1, 1, jobs}
  end
  if e == t then
    redis.call('HSET', key, 'e', e + 1, 'n', 0, 'pe', e, 'pn', n, 's', s)
    return {e + 1, n, 1, jobs}
  end
  if e < t then
    redis.call('HSET', key, 'e', t + 1, 'n', 0, 'pe', t, 'pn', -1, 's', s)
    return {t + 1, -1, 1, jobs}
  end
  if tonumber(redis.call('HGET', key, 'pe') or '-1') == t then
    return {e, tonumber(redis.call('HGET', key, 'pn') or '-1'), 0, jobs}
  end
  return {e, -1, 0, jobs}
end
`

// lockAdvanceScript takes the subscription's lock (KEYS[1], SET NX PX:
// ARGV[3] token, ARGV[4] ms) and, only when it got it, advances the epoch
// (KEYS[2]) as advanceScript does: the handler's two steps in one round
// trip. {-1} when the lock is someone else's (nothing advanced). Its two
// keys live in different Redis Cluster slots, so it is for a single Redis
// only (lockAndAdvance).
var lockAdvanceScript = redis.NewScript(advanceLua + `
if not redis.call('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[4]) then return {-1} end
return advance(KEYS[2], tonumber(ARGV[1]), false)
`)

type advance struct {
	epoch    int64 // current epoch after the call
	callouts int64 // callouts the task carries; -1 unknown
	advanced bool
	// jobs: a bulk job was registered on the key when the epoch was
	// advanced. Registrations on the epochs a run settles (up to its own) are
	// all made before its epoch closed, so a run that saw none has none to
	// credit (but for one a concurrent settle puts back on failure, which the
	// key's next run credits).
	jobs bool
}

func runAdvance(ctx context.Context, rdb redis.UniversalClient, k keyspace, key string, taskEpoch int64, onlyIfCurrent bool) (advance, error) {
	cas := "0"
	if onlyIfCurrent {
		cas = "1"
	}
	v, err := advanceScript.Run(ctx, rdb, []string{k.epoch(key)}, taskEpoch, cas).Int64Slice()
	return parseAdvance(key, v, err)
}

func parseAdvance(key string, v []int64, err error) (advance, error) {
	if err != nil {
		return advance{}, fmt.Errorf("advance epoch of %s: %w", key, err)
	}
	if len(v) != 4 {
		return advance{}, fmt.Errorf("advance epoch of %s: unexpected reply %v", key, v)
	}
	return advance{epoch: v[0], callouts: v[1], advanced: v[2] == 1, jobs: v[3] == 1}, nil
}

// lockAndAdvance takes the lock on lockKey and, once held, closes the
// task's epoch of key (step 2 of the protocol). On a single Redis both go
// in one script (lockAdvanceScript); on a cluster, where their keys live
// in different slots, in two round trips. A nil lock means it is someone
// else's, and nothing was advanced.
func lockAndAdvance(ctx context.Context, rdb redis.UniversalClient, k keyspace, lockKey, key string, taskEpoch int64, ttl time.Duration) (*subLock, advance, error) {
	if _, single := rdb.(*redis.Client); !single {
		l, err := tryLock(ctx, rdb, k.lock(lockKey), ttl)
		if err != nil || l == nil {
			return nil, advance{}, err
		}
		adv, err := runAdvance(ctx, rdb, k, key, taskEpoch, false)
		return l, adv, err // with an error, the caller releases the lock
	}
	l := newSubLock(rdb, k.lock(lockKey), ttl)
	v, err := lockAdvanceScript.Run(ctx, rdb, []string{l.key, k.epoch(key)}, taskEpoch, "0", l.token, ttl.Milliseconds()).Int64Slice()
	if err != nil {
		return nil, advance{}, fmt.Errorf("take lock %s: %w", l.key, err)
	}
	if len(v) == 1 && v[0] == -1 {
		return nil, advance{}, nil
	}
	adv, err := parseAdvance(key, v, nil)
	return l, adv, err
}

// settleScript takes the job registrations (jobField) of every epoch x up to
// ARGV[1] from an epoch hash: the run that closed that epoch read Zuora
// after each of them was made. It returns job, count pairs.
var settleScript = redis.NewScript(`
local upto = tonumber(ARGV[1])
local f = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #f, 2 do
  local k = f[i]
  if string.sub(k, 1, 2) == 'j:' then
    local c = string.find(k, ':', 3, true)
    local x = c and tonumber(string.sub(k, 3, c - 1))
    if x and x <= upto then
      table.insert(out, string.sub(k, c + 1))
      table.insert(out, f[i + 1])
      redis.call('HDEL', KEYS[1], k)
    end
  end
end
return out
`)

// takeJobs takes the registrations settleScript takes, as counts per job.
func takeJobs(ctx context.Context, rdb redis.UniversalClient, k keyspace, key string, upto int64) (map[string]int64, error) {
	v, err := settleScript.Run(ctx, rdb, []string{k.epoch(key)}, upto).StringSlice()
	if err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	for i := 0; i+1 < len(v); i += 2 {
		c, _ := strconv.ParseInt(v[i+1], 10, 64)
		counts[v[i]] += c
	}
	return counts, nil
}

// putBackScript registers ARGV[3] claims of job ARGV[2] on epoch ARGV[1]
// again, as claimScript registered them.
var putBackScript = redis.NewScript(jobFieldLua + `
return redis.call('HINCRBY', KEYS[1], jobField(ARGV[1], ARGV[2]), ARGV[3])
`)

// putBackJob gives back n registrations of job on key's epoch that takeJobs
// took, so that the next run of the key credits the job.
func putBackJob(ctx context.Context, rdb redis.UniversalClient, k keyspace, key string, epoch int64, job string, n int64) error {
	return putBackScript.Run(ctx, rdb, []string{k.epoch(key)}, epoch, job, n).Err()
}

// idHyphen stands for '-' in task ids: asynqmon shows a task id only up to
// its first ASCII '-' (it expects UUIDs), so "A-S00000201:3" read "A". The
// non-breaking hyphen reads the same and is never in a key (validateKey), so
// an id can be read back.
const idHyphen = '\u2011'

// taskID is the id of key's task for epoch: at most one task per epoch. It
// is key spelled with idHyphen for '-', ':' and the epoch: "A‑S00000201:3".
func taskID(key string, epoch int64) string {
	return idSpelling(key) + ":" + strconv.FormatInt(epoch, 10)
}

func idSpelling(key string) string { return strings.ReplaceAll(key, "-", string(idHyphen)) }

// taskEpoch is the subscription key and epoch of sync task id: from its
// payload, or, when that can't be read, from the id itself, so that even a
// task with a broken payload can close its epoch and not block its
// subscription's later callouts. ok is false when neither works.
func taskEpoch(id string, payload []byte) (key string, epoch int64, ok bool) {
	if p, err := decodePayload(payload); err == nil {
		if e := epochOf(id, p.Key); e >= 0 {
			return p.Key, e, true
		}
		return p.Key, -1, false
	}
	i := strings.LastIndexByte(id, ':')
	if i <= 0 {
		return "", -1, false
	}
	key = strings.ReplaceAll(id[:i], string(idHyphen), "-")
	if validateKey(key) != nil {
		return "", -1, false
	}
	if e := epochOf(id, key); e >= 0 {
		return key, e, true
	}
	return "", -1, false
}

// epochOf reads the epoch back from a task id made by taskID, or -1 when the
// task was not enqueued through the Enqueuer. Ids of the earlier spelling
// ("A-S00000201:3", plain hyphens) are read too: tasks an older ingress
// enqueued during a rolling upgrade still close their epochs.
func epochOf(id, key string) int64 {
	rest, ok := strings.CutPrefix(id, idSpelling(key)+":")
	if !ok {
		if rest, ok = strings.CutPrefix(id, key+":"); !ok {
			return -1
		}
	}
	e, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || e < 0 {
		return -1
	}
	return e
}

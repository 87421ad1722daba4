package syncer

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/limio/limiotest"
	"github.com/zsync/zsync/zuora"
)

// For each assumption about Limio, a sandbox switched the other way: with
// zsync's default dialect the sync fails loudly, with a permanent error
// naming the assumption (and records nothing as updated); with the dialect
// the failure calls for, it works, and a second sync finds nothing to do.

// withDialect rebuilds sb's syncer on a Limio client speaking d.
func withDialect(t *testing.T, sb *sandboxes, d limio.Dialect) {
	t.Helper()
	zc, err := zuora.New(sb.zs.Config())
	if err != nil {
		t.Fatal(err)
	}
	lc, err := limio.New(limio.Config{BaseURL: sb.ls.URL, ClientID: "sandbox", ClientSecret: "sandbox"},
		limio.WithIndex(sb.index), limio.WithDialect(d))
	if err != nil {
		t.Fatal(err)
	}
	sb.s = New(sb.fx.cfg, zc, lc, zaptest.NewLogger(t), WithClock(func() time.Time { return sb.fx.now }))
}

func TestSyncUnderEachSwitchedAssumption(t *testing.T) {
	t.Parallel()
	off := func(f func(*limiotest.Behaviour)) limiotest.Behaviour {
		b := limiotest.DefaultBehaviour()
		f(&b)
		return b
	}
	cases := []struct {
		name       string
		fixture    string
		behaviour  limiotest.Behaviour
		assumption string
		// alternative is the dialect that works; nil when there is none.
		alternative *limio.Dialect
		wantResult  Result
		prepare     func(t *testing.T, sb *sandboxes)
		verify      func(t *testing.T, sb *sandboxes)
	}{
		{
			name: "put_status", fixture: "cancelled_mid_term",
			behaviour:   off(func(b *limiotest.Behaviour) { b.PutStatus = false }),
			assumption:  limio.AssumptionPutStatus,
			alternative: &limio.Dialect{StatusField: limio.StatusInData}, wantResult: Updated,
			verify: func(t *testing.T, sb *sandboxes) {
				obj, _ := sb.ls.Get(limio.PathSubscriptions, sb.fx.limio.Subscription.ID)
				if data, _ := obj["data"].(map[string]any); data["status"] != limio.StatusCancelled {
					t.Errorf("data.status = %v, want cancelled", data["status"])
				}
			},
		},
		{
			name: "related_schedules", fixture: "renewal",
			behaviour:   off(func(b *limiotest.Behaviour) { b.RelatedSchedules = false }),
			assumption:  limio.AssumptionRelatedSchedules,
			alternative: &limio.Dialect{SchedulesFrom: limio.SchedulesList}, wantResult: Updated,
		},
		{
			name: "put_creates", fixture: "limio_unknown",
			behaviour:  off(func(b *limiotest.Behaviour) { b.PutCreates = false }),
			assumption: limio.AssumptionPutCreates,
		},
		{
			// The Limio subscription carries the Zuora number only in
			// data.zuora; summaries without it can't find it.
			name: "summary_zuora", fixture: "in_sync",
			behaviour:   off(func(b *limiotest.Behaviour) { b.SummaryZuora = false }),
			assumption:  limio.AssumptionSummaryZuora,
			alternative: &limio.Dialect{Lookup: limio.LookupFull}, wantResult: Unchanged,
			prepare: func(t *testing.T, sb *sandboxes) {
				obj, _ := sb.ls.Get(limio.PathSubscriptions, sb.fx.limio.Subscription.ID)
				obj["name"], obj["reference"] = "3V053CN9SFIG", "3V053CN9SFIG"
				if err := sb.ls.Put(limio.PathSubscriptions, obj); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := newSandboxes(t, tc.fixture)
			if tc.prepare != nil {
				tc.prepare(t, sb)
			}
			sb.ls.SetBehaviour(tc.behaviour)
			out, err := sb.s.Sync(t.Context(), number, manual)
			if err == nil {
				t.Fatalf("default dialect: Sync = %s with %d changes, nil; want a failure naming %s", out.Result, len(out.Changes), tc.assumption)
			}
			if got := limio.AssumptionOf(err); got != tc.assumption {
				t.Errorf("default dialect: error names assumption %q, want %q: %v", got, tc.assumption, err)
			}
			if !isPermanent(err) {
				t.Errorf("default dialect: %v is not permanent", err)
			}
			if out.Result != "" {
				t.Errorf("default dialect: outcome %s recorded for a failed sync", out.Result)
			}
			if tc.alternative == nil {
				return
			}
			withDialect(t, sb, *tc.alternative)
			out, err = sb.s.Sync(t.Context(), number, manual)
			if err != nil || out.Result != tc.wantResult {
				t.Fatalf("dialect %+v: Sync = %s, %v; want %s", *tc.alternative, out.Result, err, tc.wantResult)
			}
			if tc.verify != nil {
				tc.verify(t, sb)
			}
			out, err = sb.s.Sync(t.Context(), number, manual)
			if err != nil || out.Result != Unchanged {
				t.Fatalf("dialect %+v, second sync = %s %v, %v; want unchanged", *tc.alternative, out.Result, out.Changes, err)
			}
		})
	}
}

// isPermanent is the worker's reading: marked permanent, or a permanent
// upstream error first in the chain.
func isPermanent(err error) bool {
	var ue *upstream.Error
	return IsPermanent(err) || errors.As(err, &ue) && ue.Kind == upstream.Permanent
}

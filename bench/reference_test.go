package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/syncer"
	"github.com/zsync/zsync/zuora"
)

// refSyncer is the bare reference sync that zsync's CPU per sync is
// measured against: the same Zuora and Limio HTTP calls a sync makes (the
// same paths, bodies and parallelism), with net/http and encoding/json into
// the same types, then syncer.Plan (the pure diff any program must compute
// to know what to write), and for an update the same PUT and timeline POST.
// No queue, no lock, no Redis, no outcome record, no logging, no retries;
// the tenant limit is a channel (the least a single process could do to
// stay under it). The Limio id is computed (limio.NewID), not looked up.
type refSyncer struct {
	hc           *http.Client
	zuora, limio string
	ztok, ltok   string
	sem          chan struct{}
}

func newRefSyncer(b testing.TB, zuoraURL, limioURL string, limit int) *refSyncer {
	b.Helper()
	r := &refSyncer{hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}, zuora: zuoraURL, limio: limioURL,
		sem: make(chan struct{}, limit)}
	r.ztok = r.token(b, zuoraURL+"/oauth/token")
	r.ltok = r.token(b, limioURL+"/oauth2/token")
	return r
}

func (r *refSyncer) token(b testing.TB, u string) string {
	b.Helper()
	resp, err := r.hc.PostForm(u, url.Values{"grant_type": {"client_credentials"}, "client_id": {"sandbox"}, "client_secret": {"sandbox"}})
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil || t.AccessToken == "" {
		b.Fatalf("token from %s: %v", u, err)
	}
	return t.AccessToken
}

// do sends one request and decodes a 2xx JSON answer into out (nil: body
// discarded). Zuora calls hold a slot of the tenant limit meanwhile.
func (r *refSyncer) do(ctx context.Context, zuoraCall bool, method, u string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	tok := r.ltok
	if zuoraCall {
		tok = r.ztok
		r.sem <- struct{}{}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		if zuoraCall {
			<-r.sem
		}
		return err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if zuoraCall {
		<-r.sem
	}
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// sync reconciles one subscription; it fails on any plan other than
// Unchanged or the autoRenew update the bench makes (so it never does less
// than zsync would).
func (r *refSyncer) sync(ctx context.Context, number string) (syncer.Result, error) {
	id := limio.NewID("sub", number)
	var z syncer.ZuoraState
	var l syncer.LimioState
	var zs zuora.Subscription
	var ls limio.Subscription
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return r.do(gctx, true, http.MethodGet, r.zuora+"/v1/subscriptions/"+number+"?charge-detail=all-segments", nil, &zs)
	})
	g.Go(func() error {
		return r.do(gctx, false, http.MethodGet, r.limio+"/api/objects/limio/subscriptions/"+id, nil, &ls)
	})
	if err := g.Wait(); err != nil {
		return "", err
	}
	z.Subscription, l.Subscription = &zs, &ls

	g, gctx = errgroup.WithContext(ctx)
	var acc zuora.Account
	var bp zuora.BillingPreview
	var rel struct {
		Items []json.RawMessage `json:"items"`
	}
	g.Go(func() error {
		return r.do(gctx, true, http.MethodGet, r.zuora+"/v1/accounts/"+zs.AccountNumber, nil, &acc)
	})
	g.Go(func() error {
		req := zuora.BillingPreviewRequest{AccountNumber: zs.AccountNumber, TargetDate: zs.TermEndDate[:10]}
		return r.do(gctx, true, http.MethodPost, r.zuora+"/v1/operations/billing-preview", req, &bp)
	})
	g.Go(func() error {
		return r.do(gctx, false, http.MethodGet, r.limio+"/api/objects/limio/"+limio.RelatedSingular+"/"+id+"/related", nil, &rel)
	})
	if err := g.Wait(); err != nil {
		return "", err
	}
	z.Account = &acc
	for _, it := range bp.InvoiceItems {
		if strings.EqualFold(it.SubscriptionNumber, number) {
			z.Preview = append(z.Preview, it)
		}
	}
	for _, raw := range rel.Items {
		var head struct {
			RecordType string `json:"record_type"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return "", err
		}
		var err error
		switch head.RecordType {
		case limio.RecordCustomer:
			var cu limio.Customer
			err = json.Unmarshal(raw, &cu)
			l.Related.Customer = &cu
		case limio.RecordAddress:
			var a limio.Address
			err = json.Unmarshal(raw, &a)
			l.Related.Addresses = append(l.Related.Addresses, a)
		case limio.RecordSchedule:
			var s limio.Schedule
			err = json.Unmarshal(raw, &s)
			l.Related.Schedules = append(l.Related.Schedules, s)
		}
		if err != nil {
			return "", err
		}
	}

	cs, err := syncer.Plan(syncer.Config{}, z, l, time.Now().UTC())
	if err != nil {
		return "", err
	}
	if cs.Result == syncer.Unchanged {
		return cs.Result, nil
	}
	var p limio.Patch
	for _, c := range cs.Changes {
		if cs.Result != syncer.Updated || c.Object != limio.RecordSubscription || c.Op != syncer.OpUpdate || c.Field != limio.FieldAutoRenew {
			return "", fmt.Errorf("reference sync %s: unexpected plan %s %+v", number, cs.Result, cs.Changes)
		}
		v, _ := strconv.ParseBool(c.New)
		p.Set(c.Field, v)
	}
	body, err := p.Body()
	if err != nil {
		return "", err
	}
	if err := r.do(ctx, false, http.MethodPut, r.limio+"/api/objects/limio/subscriptions/"+id, body, nil); err != nil {
		return "", err
	}
	ev := limio.TimelineEvent{
		ForSubscription: limio.TimelineTarget{ID: id}, Name: "Synced from Zuora", Type: "zsync.sync", Source: "zsync",
		Fields: []limio.TimelineField{
			{Label: "Result", Type: "string", Value: string(cs.Result)},
			{Label: "Zuora subscription", Type: "string", Value: number},
			{Label: "Changes", Type: "number", Value: len(cs.Changes)},
			{Label: "Details", Type: "json", Value: cs.Changes},
		},
	}
	return cs.Result, r.do(ctx, false, http.MethodPost, r.limio+"/api/timeline/subscription", ev, nil)
}

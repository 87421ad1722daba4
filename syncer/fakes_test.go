package syncer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/zuora"
)

// In-memory fakes of the consumer interfaces, for unit tests of Sync. They
// keep objects as JSON maps and merge writes the way Limio's partial PUT does.

var (
	_ Zuora = (*fakeZuora)(nil)
	_ Limio = (*fakeLimio)(nil)
)

func notFound(api, op string) error {
	return &upstream.Error{API: api, Op: op, StatusCode: http.StatusNotFound, Kind: upstream.NotFound, Message: "not found"}
}

type fakeZuora struct {
	mu       sync.Mutex
	subs     map[string]*zuora.Subscription // by number and by id
	accounts map[string]*zuora.Account      // by number and by id
	preview  []zuora.InvoiceItem
	orders   map[string]*zuora.Order
	calls    map[string]int
	requests []zuora.BillingPreviewRequest
	fail     map[string]error // by op: subscription, account, preview, order
}

func newFakeZuora() *fakeZuora {
	return &fakeZuora{subs: map[string]*zuora.Subscription{}, accounts: map[string]*zuora.Account{},
		orders: map[string]*zuora.Order{}, calls: map[string]int{}}
}

func (f *fakeZuora) put(s *zuora.Subscription, a *zuora.Account, preview []zuora.InvoiceItem) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs[s.SubscriptionNumber], f.subs[s.ID] = s, s
	if a != nil {
		f.accounts[a.BasicInfo.AccountNumber], f.accounts[a.BasicInfo.ID] = a, a
	}
	f.preview = preview
}

func (f *fakeZuora) putAccount(a *zuora.Account) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts[a.BasicInfo.AccountNumber], f.accounts[a.BasicInfo.ID] = a, a
}

func (f *fakeZuora) count(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	return f.fail[op]
}

func (f *fakeZuora) reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls["subscription"] + f.calls["account"] + f.calls["preview"]
}

func (f *fakeZuora) GetSubscription(_ context.Context, key string) (*zuora.Subscription, error) {
	if err := f.count("subscription"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.subs[key]; ok {
		return s, nil
	}
	return nil, notFound("zuora", "GET /v1/subscriptions/{key}")
}

func (f *fakeZuora) GetAccount(_ context.Context, key string) (*zuora.Account, error) {
	if err := f.count("account"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.accounts[key]; ok {
		return a, nil
	}
	return nil, notFound("zuora", "GET /v1/accounts/{key}")
}

func (f *fakeZuora) BillingPreview(_ context.Context, req zuora.BillingPreviewRequest) (*zuora.BillingPreview, error) {
	if err := f.count("preview"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	return &zuora.BillingPreview{Success: true, InvoiceItems: f.preview}, nil
}

func (f *fakeZuora) GetOrder(_ context.Context, n string) (*zuora.Order, error) {
	if err := f.count("order"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, ok := f.orders[n]; ok {
		return o, nil
	}
	return nil, notFound("zuora", "GET /v1/orders/{orderNumber}")
}

type fakeLimio struct {
	mu       sync.Mutex
	objs     map[string]map[string]any // "path/id" → object
	index    map[string]string
	timeline []limio.TimelineEvent
	calls    map[string]int
	writes   int
	failAt   int // fail the failAt-th write (1-based), without applying it; 0: never
	// indexOnly makes Resolve use only ids and the Remember index, not a
	// scan by reference (to exercise the deterministic-id fallback).
	indexOnly bool
}

func newFakeLimio() *fakeLimio {
	return &fakeLimio{objs: map[string]map[string]any{}, index: map[string]string{}, calls: map[string]int{}}
}

// seed stores obj (any JSON-marshalable value) at path/id.
func (f *fakeLimio) seed(t *testing.T, path string, obj any) {
	t.Helper()
	m := toMap(t, obj)
	f.objs[path+"/"+m["id"].(string)] = m
}

func (f *fakeLimio) write(op string) error {
	f.calls[op]++
	f.writes++
	if f.failAt > 0 && f.writes == f.failAt {
		return &upstream.Error{API: "limio", Op: op, StatusCode: 502, Kind: upstream.Retryable, Message: "injected fault"}
	}
	return nil
}

func (f *fakeLimio) get(path, id string, out any) error {
	m, ok := f.objs[path+"/"+id]
	if !ok {
		return notFound("limio", "GET /api/objects/limio/"+path+"/{id}")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func (f *fakeLimio) GetSubscription(_ context.Context, id string) (*limio.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["get"]++
	var s limio.Subscription
	if err := f.get(limio.PathSubscriptions, id, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (f *fakeLimio) Resolve(_ context.Context, key string) (*limio.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["resolve"]++
	id := f.index[key]
	if id == "" && strings.HasPrefix(key, "sub-") {
		id = key
	}
	if id == "" && !f.indexOnly {
		for k, m := range f.objs {
			if !strings.HasPrefix(k, limio.PathSubscriptions+"/") {
				continue
			}
			data, _ := m["data"].(map[string]any)
			z, _ := data["zuora"].(map[string]any)
			if m["reference"] == key || z != nil && z["subscriptionNumber"] == key {
				id = m["id"].(string)
			}
		}
	}
	var s limio.Subscription
	if err := f.get(limio.PathSubscriptions, id, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (f *fakeLimio) GetRelated(_ context.Context, subID string) (*limio.Related, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["related"]++
	var s limio.Subscription
	if err := f.get(limio.PathSubscriptions, subID, &s); err != nil {
		return nil, err
	}
	rel := &limio.Related{}
	if s.Customer != "" {
		var c limio.Customer
		if f.get(limio.PathCustomers, s.Customer, &c) == nil {
			rel.Customer = &c
		}
	}
	keys := make([]string, 0, len(f.objs))
	for k := range f.objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if f.objs[k]["related"] != subID {
			continue
		}
		path, id, _ := strings.Cut(k, "/")
		switch path {
		case limio.PathAddress:
			var a limio.Address
			_ = f.get(path, id, &a)
			rel.Addresses = append(rel.Addresses, a)
		case limio.PathSchedules:
			var e limio.Schedule
			_ = f.get(path, id, &e)
			rel.Schedules = append(rel.Schedules, e)
		}
	}
	return rel, nil
}

func (f *fakeLimio) GetCustomer(_ context.Context, id string) (*limio.Customer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["customer"]++
	var c limio.Customer
	if err := f.get(limio.PathCustomers, id, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func (f *fakeLimio) Update(_ context.Context, path, id string, p limio.Patch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, ok := f.objs[path+"/"+id]
	if !ok {
		f.calls["update"]++
		return notFound("limio", "PUT /api/objects/limio/"+path+"/{id}")
	}
	if err := f.write("update"); err != nil {
		return err
	}
	merge(cur, expand(mustMap(p)))
	return nil
}

func (f *fakeLimio) Create(_ context.Context, path, id string, obj any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write("create"); err != nil {
		return err
	}
	m := mustMap(obj)
	if cur, ok := f.objs[path+"/"+id]; ok {
		merge(cur, m) // a PUT to an existing id: partial update
		return nil
	}
	f.objs[path+"/"+id] = m
	return nil
}

func (f *fakeLimio) Remember(_ context.Context, key, subID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write("remember"); err != nil {
		return err
	}
	f.index[key] = subID
	return nil
}

func (f *fakeLimio) PostTimeline(_ context.Context, ev limio.TimelineEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write("timeline"); err != nil {
		return err
	}
	f.timeline = append(f.timeline, ev)
	return nil
}

// snapshot is the fake's objects as canonical JSON (without the index and
// timeline), for comparing final states.
func (f *fakeLimio) snapshot(t *testing.T) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.MarshalIndent(f.objs, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(fmt.Sprintf("%T does not marshal to an object: %s", v, b))
	}
	return m
}

func toMap(t *testing.T, v any) map[string]any {
	t.Helper()
	return mustMap(v)
}

// expand turns dotted keys ("data.attributes.autoRenew") into nested objects,
// so a patch given as field paths or as a nested body merges the same way.
func expand(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = expand(sub)
		}
		parts := strings.Split(k, ".")
		cur := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		last := parts[len(parts)-1]
		if a, ok := cur[last].(map[string]any); ok {
			if b, ok := v.(map[string]any); ok {
				merge(a, b)
				continue
			}
		}
		cur[last] = v
	}
	return out
}

// merge applies src onto dst: nested objects merge, anything else replaces.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if s, ok := v.(map[string]any); ok {
			if d, ok := dst[k].(map[string]any); ok {
				merge(d, s)
				continue
			}
		}
		dst[k] = v
	}
}

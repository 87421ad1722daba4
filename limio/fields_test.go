package limio_test

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/zsync/zsync/limio"
)

func TestPatchBody(t *testing.T) {
	t.Parallel()
	type kv struct {
		f string
		v any
	}
	tests := []struct {
		desc    string
		set     []kv
		want    string
		wantErr bool
	}{
		{desc: "empty patch still sends data", want: `{"data":{}}`},
		{desc: "nested field", set: []kv{{limio.FieldAutoRenew, true}},
			want: `{"data":{"attributes":{"autoRenew":true}}}`},
		{desc: "status stays top-level", set: []kv{{limio.FieldStatus, "cancelled"}, {limio.FieldTermEnd, "2027-01-01"}},
			want: `{"data":{"termEndDate":"2027-01-01"},"status":"cancelled"}`},
		{desc: "null for evergreen", set: []kv{{limio.FieldTermEnd, nil}}, want: `{"data":{"termEndDate":null}}`},
		{desc: "siblings share parents", set: []kv{{limio.FieldZuoraVersion, 4}, {"data.zuora.accountNumber", "A1"}, {limio.FieldAutoRenew, false}},
			want: `{"data":{"attributes":{"autoRenew":false},"zuora":{"accountNumber":"A1","version":4}}}`},
		{desc: "struct value", set: []kv{{limio.FieldZuora, limio.ZuoraRef{SubscriptionNumber: "A-S1", Version: 2}}},
			want: `{"data":{"zuora":{"subscriptionNumber":"A-S1","version":2}}}`},
		{desc: "overlapping fields refused", set: []kv{{limio.FieldZuora, map[string]any{}}, {limio.FieldZuoraVersion, 3}}, wantErr: true},
		{desc: "overlap with a sibling between them in sort order", set: []kv{{"data.a", 1}, {"data.a-x", 2}, {"data.a.b", 3}}, wantErr: true},
		{desc: "data itself refused", set: []kv{{"data", map[string]any{"x": 1}}}, wantErr: true},
		{desc: "empty segment refused", set: []kv{{"data..x", 1}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var p limio.Patch
			for _, s := range tc.set {
				p.Set(s.f, s.v)
			}
			got, err := json.Marshal(p)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Marshal = %s; want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("Marshal = %s; want %s", got, tc.want)
			}
			if p.Len() != len(tc.set) {
				t.Errorf("Len = %d; want %d", p.Len(), len(tc.set))
			}
		})
	}
}

func TestPatchFields(t *testing.T) {
	t.Parallel()
	var p limio.Patch
	p.Set(limio.FieldTermStart, "2026-01-01")
	p.Set(limio.FieldStatus, "active")
	p.Set(limio.FieldStatus, "cancelled") // a second Set replaces
	got := p.Fields()
	if len(got) != 2 || got[0] != limio.FieldTermStart || got[1] != limio.FieldStatus {
		t.Errorf("Fields = %v; want [%s %s]", got, limio.FieldTermStart, limio.FieldStatus)
	}
	if v, ok := p.Get(limio.FieldStatus); !ok || v != "cancelled" {
		t.Errorf("Get(status) = %v, %v; want cancelled, true", v, ok)
	}
}

func TestNewID(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^schedule-[0-9a-f]{32}$`)
	tests := []struct {
		desc string
		a, b []string
		same bool
	}{
		{"same parts, same id", []string{"A-S1", "C-1:2026-01-01"}, []string{"A-S1", "C-1:2026-01-01"}, true},
		{"different parts", []string{"A-S1", "C-1:2026-01-01"}, []string{"A-S1", "C-1:2026-02-01"}, false},
		{"joins are unambiguous", []string{"ab", "c"}, []string{"a", "bc"}, false},
		{"order matters", []string{"a", "b"}, []string{"b", "a"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			a, b := limio.NewID("schedule", tc.a...), limio.NewID("schedule", tc.b...)
			if !shape.MatchString(a) {
				t.Errorf("NewID = %q; want schedule-<32 hex>", a)
			}
			if (a == b) != tc.same {
				t.Errorf("NewID(%q) = %s, NewID(%q) = %s; same = %v, want %v", tc.a, a, tc.b, b, a == b, tc.same)
			}
		})
	}
	// Pinned: a changed derivation would orphan every object created so far.
	if got, want := limio.NewID("sub", "A-S00000101"), "sub-c9f4faa132b5971e46f0ac7694afe258"; got != want {
		t.Errorf("NewID(sub, A-S00000101) = %q; want %q", got, want)
	}
}

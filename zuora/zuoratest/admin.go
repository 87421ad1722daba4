package zuoratest

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/zuora"
)

// PutSubscription stores sub as its latest version. A new id adds a version
// (the old id still finds the subscription); the version row's UpdatedDate is
// the sandbox clock, for the sweep's query.
func (s *Server) PutSubscription(sub zuora.Subscription) error {
	b, err := json.Marshal(sub)
	if err != nil {
		return err
	}
	return s.putSubscription(b, "")
}

// PutAccount stores an account under its number and id.
func (s *Server) PutAccount(a zuora.Account) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return s.putAccount(b, "")
}

// PutOrder stores an order under its number.
func (s *Server) PutOrder(o zuora.Order) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return s.putOrder(b, "")
}

// PutPreview makes the billing preview of an account (by number or id) the
// given answer, as is, instead of the computed one (Zuora's documented
// examples, seeded by the contract tests).
func (s *Server) PutPreview(account string, answer []byte) error {
	if !json.Valid(answer) {
		return fmt.Errorf("zuoratest: preview for %s is not JSON", account)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.previews[account] = json.RawMessage(answer)
	return nil
}

// PutQueryAnswer makes every /v1/action/query answer the given body, as is,
// until Reset (nil restores the computed answers).
func (s *Server) PutQueryAnswer(answer []byte) error {
	if answer != nil && !json.Valid(answer) {
		return fmt.Errorf("zuoratest: query answer is not JSON")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queryAnswer = json.RawMessage(answer)
	return nil
}

// Subscription returns the latest stored version of a subscription.
func (s *Server) Subscription(number string) (zuora.Subscription, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.subs[number]
	if !ok {
		return zuora.Subscription{}, false
	}
	return rec.sub, true
}

// Seed loads subscriptions/*.json, accounts/*.json and orders/*.json from
// fsys, each in the API's own GET response shape. Missing folders are fine.
func (s *Server) Seed(fsys fs.FS) error {
	kinds := []struct {
		dir string
		put func([]byte, string) error
	}{{"accounts", s.putAccount}, {"subscriptions", s.putSubscription}, {"orders", s.putOrder}}
	for _, k := range kinds {
		names, err := fs.Glob(fsys, k.dir+"/*.json")
		if err != nil {
			return err
		}
		for _, name := range names {
			b, err := fs.ReadFile(fsys, name)
			if err != nil {
				return err
			}
			if err := k.put(b, ""); err != nil {
				return fmt.Errorf("zuoratest: seed %s: %w", name, err)
			}
		}
	}
	return nil
}

func checkNumber(what, n, want string) error {
	switch {
	case n == "":
		return fmt.Errorf("%s is missing", what)
	case strings.ContainsAny(n, "/ ") || strings.Contains(n, ".."), len(n) > 100:
		return fmt.Errorf("%s %q is not a valid key", what, n)
	case want != "" && n != want:
		return fmt.Errorf("%s %q does not match the path %q", what, n, want)
	}
	return nil
}

// decodeRaw parses b both as a field map (kept for answers) and into dst
// (for the sandbox's own logic), dropping "success".
func decodeRaw(b []byte, dst any) (map[string]json.RawMessage, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return nil, err
	}
	delete(raw, "success")
	return raw, nil
}

func (s *Server) putSubscription(b []byte, want string) error {
	var sub zuora.Subscription
	raw, err := decodeRaw(b, &sub)
	if err != nil {
		return err
	}
	if sub.SubscriptionNumber == "" && want != "" {
		sub.SubscriptionNumber = want
		raw["subscriptionNumber"], _ = json.Marshal(want)
	}
	if err := checkNumber("subscriptionNumber", sub.SubscriptionNumber, want); err != nil {
		return err
	}
	if sub.ID == "" {
		sub.ID = "8a8" + randomHex(14)
		raw["id"], _ = json.Marshal(sub.ID)
	}
	now := s.Base.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.subs[sub.SubscriptionNumber]
	row := queryRow{ID: sub.ID, Name: sub.SubscriptionNumber, Status: sub.Status, Version: int(sub.Version), Updated: now,
		TermType: sub.TermType, TermEndDate: dateOnly(sub.TermEndDate)}
	switch {
	case rec == nil:
		rec = &subRecord{versions: []queryRow{row}}
		s.subs[sub.SubscriptionNumber] = rec
	case rec.sub.ID == sub.ID:
		rec.versions[len(rec.versions)-1] = row
	default:
		rec.versions = append(rec.versions, row)
	}
	rec.raw, rec.sub = raw, sub
	s.subIDs[sub.ID] = sub.SubscriptionNumber
	return nil
}

func (s *Server) putAccount(b []byte, want string) error {
	var a zuora.Account
	raw, err := decodeRaw(b, &a)
	if err != nil {
		return err
	}
	if a.BasicInfo.AccountNumber == "" && want != "" {
		// Fill the number in basicInfo, keeping its other fields.
		var bi map[string]json.RawMessage
		if len(raw["basicInfo"]) > 0 {
			_ = json.Unmarshal(raw["basicInfo"], &bi)
		}
		if bi == nil {
			bi = map[string]json.RawMessage{}
		}
		bi["accountNumber"], _ = json.Marshal(want)
		raw["basicInfo"], _ = json.Marshal(bi)
		a.BasicInfo.AccountNumber = want
	}
	if err := checkNumber("basicInfo.accountNumber", a.BasicInfo.AccountNumber, want); err != nil {
		return err
	}
	now := s.Base.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storeAccountLocked(a, raw, now)
	return nil
}

// putOrder accepts the GET response ({success, order}) or the bare order.
func (s *Server) putOrder(b []byte, want string) error {
	var wrapped struct {
		Order json.RawMessage `json:"order"`
	}
	if err := json.Unmarshal(b, &wrapped); err != nil {
		return err
	}
	if len(wrapped.Order) > 0 && string(wrapped.Order) != "null" {
		b = wrapped.Order
	}
	var o zuora.Order
	raw, err := decodeRaw(b, &o)
	if err != nil {
		return err
	}
	if o.OrderNumber == "" && want != "" {
		o.OrderNumber = want
		raw["orderNumber"], _ = json.Marshal(want)
	}
	if err := checkNumber("orderNumber", o.OrderNumber, want); err != nil {
		return err
	}
	out, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders[o.OrderNumber] = out
	return nil
}

// registerAdmin mounts the seeding and limit endpoints.
func (s *Server) registerAdmin(mux *http.ServeMux) {
	put := func(param string, fn func([]byte, string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
			if err != nil {
				sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "read body: " + err.Error()})
				return
			}
			if err := fn(b, r.PathValue(param)); err != nil {
				sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("PUT /sandbox/subscriptions/{subscriptionNumber}", put("subscriptionNumber", s.putSubscription))
	mux.HandleFunc("PUT /sandbox/accounts/{accountNumber}", put("accountNumber", s.putAccount))
	mux.HandleFunc("PUT /sandbox/orders/{orderNumber}", put("orderNumber", s.putOrder))
	mux.HandleFunc("PUT /sandbox/limits", func(w http.ResponseWriter, r *http.Request) {
		var l limitsBody
		if !sandbox.DecodeJSON(w, r, &l) {
			return
		}
		if err := l.validate(); err != nil {
			sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		s.applyLimits(l)
		sandbox.WriteJSON(w, http.StatusOK, l)
	})
	mux.HandleFunc("PUT /sandbox/billing-preview-form", func(w http.ResponseWriter, r *http.Request) {
		var f PreviewForm
		if !sandbox.DecodeJSON(w, r, &f) {
			return
		}
		s.SetPreviewForm(f)
		sandbox.WriteJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("PUT /sandbox/not-found-style", func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Status int `json:"status"` // 404 or 200
		}
		if !sandbox.DecodeJSON(w, r, &v) {
			return
		}
		switch v.Status {
		case http.StatusNotFound:
			s.SetNotFoundStyle(NotFound404)
		case http.StatusOK:
			s.SetNotFoundStyle(NotFound200)
		default:
			sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "status must be 404 or 200"})
			return
		}
		sandbox.WriteJSON(w, http.StatusOK, v)
	})
}

// dateOnly is the YYYY-MM-DD part of a Zuora date.
func dateOnly(s string) string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

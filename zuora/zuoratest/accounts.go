package zuoratest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zsync/zsync/internal/sandbox"
	"github.com/zsync/zsync/zuora"
)

// Accounts as the sandbox keeps them: the object as put, plus what ZOQL
// answers about it. An edit is a put: it moves the account's UpdatedDate and
// the UpdatedDate of each contact whose content changed, as an edit in Zuora
// would, so the sweep's Account and Contact queries see it.

// accountRecord keeps raw as it was put, so fields zsync doesn't model (and
// the spec's type oddities) go back out unchanged.
type accountRecord struct {
	raw      map[string]json.RawMessage
	id       string
	updated  time.Time
	contacts []contactRow
}

// contactRow is one contact of an account: bill-to and sold-to (one row when
// they are the same contact id).
type contactRow struct {
	id      string
	role    string // billToContact | soldToContact
	body    json.RawMessage
	updated time.Time
}

var contactRoles = []string{"billToContact", "soldToContact"}

// storeAccountLocked files an account put at now; s.mu is held.
func (s *Server) storeAccountLocked(a zuora.Account, raw map[string]json.RawMessage, now time.Time) {
	number := a.BasicInfo.AccountNumber
	prev := s.accounts[number]
	id := a.BasicInfo.ID
	if id == "" && prev != nil {
		id = prev.id
	}
	if id == "" {
		id = "8a8" + randomHex(14)
	}
	if a.BasicInfo.ID == "" {
		// Zuora always has an id: fill it in basicInfo, keeping the rest.
		var bi map[string]json.RawMessage
		_ = json.Unmarshal(raw["basicInfo"], &bi)
		if bi == nil {
			bi = map[string]json.RawMessage{}
		}
		bi["id"], _ = json.Marshal(id)
		raw["basicInfo"], _ = json.Marshal(bi)
	}
	rec := &accountRecord{raw: raw, id: id, updated: now}
	seen := map[string]bool{}
	for _, role := range contactRoles {
		body := raw[role]
		if len(bytes.TrimSpace(body)) == 0 || string(body) == "null" {
			continue
		}
		var c struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &c)
		cid := c.ID
		if cid == "" {
			cid = id + "-" + strings.TrimSuffix(role, "Contact")
		}
		if seen[cid] {
			continue
		}
		seen[cid] = true
		row := contactRow{id: cid, role: role, body: body, updated: now}
		if prev != nil {
			for _, old := range prev.contacts {
				if old.id == cid && sameContact(old.body, body) {
					row.updated = old.updated // unchanged contact: not edited
				}
			}
		}
		rec.contacts = append(rec.contacts, row)
	}
	s.accounts[number] = rec
	s.accountIDs[id] = number
}

// accountNumberLocked resolves an account number or id; "" when unknown.
func (s *Server) accountNumberLocked(key string) string {
	if _, ok := s.accounts[key]; ok {
		return key
	}
	return s.accountIDs[key]
}

// maxAccountPageSize is the spec's maximum pageSize for the listing.
const maxAccountPageSize = 40

// accountSubscriptions answers GET /v1/subscriptions/accounts/{account-key}:
// the latest version of each subscription the account owns, paged by page
// and pageSize (default 20, at most 40) with a nextPage URL while more remain.
func (s *Server) accountSubscriptions(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("accountKey")
	q := r.URL.Query()
	size, page := 20, 1
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAccountPageSize {
			writeInvalid(w, "pageSize must be between 1 and 40")
			return
		}
		size = n
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeInvalid(w, "page must be a positive integer")
			return
		}
		page = n
	}
	s.mu.Lock()
	number := s.accountNumberLocked(key)
	if number == "" {
		s.mu.Unlock()
		s.writeNotFound(w, key)
		return
	}
	var subs []map[string]json.RawMessage
	var names []string
	for name, rec := range s.subs {
		if rec.sub.AccountNumber == number || (rec.sub.AccountNumber == "" && rec.sub.AccountID == s.accounts[number].id) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	from := min((page-1)*size, len(names))
	to := min(from+size, len(names))
	for _, name := range names[from:to] {
		subs = append(subs, s.subs[name].raw)
	}
	s.mu.Unlock()
	resp := map[string]any{"success": true, "subscriptions": subs}
	if subs == nil {
		resp["subscriptions"] = []any{}
	}
	if to < len(names) {
		next := url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path,
			RawQuery: url.Values{"page": {strconv.Itoa(page + 1)}, "pageSize": {strconv.Itoa(size)}}.Encode()}
		resp["nextPage"] = next.String()
	}
	sandbox.WriteJSON(w, http.StatusOK, resp)
}

// sameContact compares two contacts by the fields zsync reads (a put of the
// decoded account drops the ones it doesn't model, which is no edit).
func sameContact(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ca, cb zuora.Contact
	if json.Unmarshal(a, &ca) != nil || json.Unmarshal(b, &cb) != nil {
		return false
	}
	return reflect.DeepEqual(ca, cb)
}

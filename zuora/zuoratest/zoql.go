package zuoratest

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/zsync/zsync/internal/sandbox"
)

// The sandbox understands the ZOQL the client sends: select fields from
// Subscription, with conditions on Name, Id, Status, UpdatedDate, TermType and
// TermEndDate joined by
// "and" (=, !=, >, >=, <, <=, single-quoted literals). Like Zuora, it returns
// one row per subscription version. Account (Id, AccountNumber, UpdatedDate)
// and Contact (Id, AccountId, UpdatedDate) are queried the same way, for the
// sweep's contact and account edits.

type queryRow struct {
	ID          string
	Name        string
	Status      string
	Version     int
	Updated     time.Time
	TermType    string
	TermEndDate string // YYYY-MM-DD; empty for evergreen
	// AccountID and AccountNumber: the account of a subscription or a
	// contact, or the account itself.
	AccountID, AccountNumber string
}

// zoqlObjects are the objects the sandbox queries, each with its selectable
// fields (lower case → as written in answers) and its filterable fields.
var zoqlObjects = map[string]struct {
	fields  map[string]string
	filters map[string]bool
}{
	"subscription": {
		fields:  map[string]string{"id": "Id", "name": "Name", "status": "Status", "updateddate": "UpdatedDate", "version": "Version"},
		filters: map[string]bool{"id": true, "name": true, "status": true, "updateddate": true, "termtype": true, "termenddate": true},
	},
	"account": {
		fields:  map[string]string{"id": "Id", "accountnumber": "AccountNumber", "updateddate": "UpdatedDate"},
		filters: map[string]bool{"id": true, "accountnumber": true, "updateddate": true},
	},
	"contact": {
		fields:  map[string]string{"id": "Id", "accountid": "AccountId", "updateddate": "UpdatedDate"},
		filters: map[string]bool{"id": true, "accountid": true, "updateddate": true},
	},
}

const zoqlTime = "2006-01-02T15:04:05.000-07:00"

var (
	selectRe = regexp.MustCompile(`(?is)^\s*select\s+(.+?)\s+from\s+(\w+)(?:\s+where\s+(.+?))?\s*$`)
	condRe   = regexp.MustCompile(`(?is)^\s*(\w+)\s*(>=|<=|!=|=|>|<)\s*'([^']*)'\s*$`)
	andRe    = regexp.MustCompile(`(?i)\s+and\s+`)
)

type cond struct {
	field, op, value string
	at               time.Time
}

// queryFault answers as Zuora's Actions do: HTTP 500 with a SOAP-style
// fault, code fns:<code>, and the fault's detail.
func queryFault(w http.ResponseWriter, code, detail, msg string) {
	sandbox.WriteJSON(w, http.StatusInternalServerError, map[string]any{
		"faultcode":   "fns:" + code,
		"faultstring": msg,
		"detail":      map[string]any{detail: map[string]string{"FaultCode": code, "FaultMessage": msg}},
	})
}

// queryError is a fault for a query Zuora refuses to run.
type queryError struct{ code, msg string }

func (e *queryError) Error() string { return e.msg }

func malformed(format string, a ...any) error {
	return &queryError{"MALFORMED_QUERY", fmt.Sprintf(format, a...)}
}

func parseZOQLTime(s string) (time.Time, bool) {
	for _, layout := range []string{zoqlTime, time.RFC3339Nano, "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func parseQuery(q string) (object string, fields []string, conds []cond, err error) {
	m := selectRe.FindStringSubmatch(q)
	if m == nil {
		return "", nil, nil, malformed("malformed query: %s", q)
	}
	object = strings.ToLower(m[2])
	obj, ok := zoqlObjects[object]
	if !ok {
		return "", nil, nil, &queryError{"INVALID_TYPE", "invalid type specified: " + m[2]}
	}
	for _, f := range strings.Split(m[1], ",") {
		name, ok := obj.fields[strings.ToLower(strings.TrimSpace(f))]
		if !ok {
			return "", nil, nil, &queryError{"INVALID_FIELD", "invalid field for " + m[2] + ": " + strings.TrimSpace(f)}
		}
		fields = append(fields, name)
	}
	if m[3] == "" {
		return object, fields, nil, nil
	}
	for _, part := range andRe.Split(m[3], -1) {
		cm := condRe.FindStringSubmatch(part)
		if cm == nil {
			return "", nil, nil, malformed("unsupported condition: %s", strings.TrimSpace(part))
		}
		c := cond{field: strings.ToLower(cm[1]), op: cm[2], value: cm[3]}
		if !obj.filters[c.field] {
			return "", nil, nil, &queryError{"INVALID_FIELD", "invalid field for " + m[2] + ": " + cm[1]}
		}
		switch c.field {
		case "updateddate":
			t, ok := parseZOQLTime(c.value)
			if !ok {
				return "", nil, nil, &queryError{"INVALID_VALUE", "invalid datetime: " + c.value}
			}
			c.at = t
		case "termenddate":
			if _, err := time.Parse(time.DateOnly, c.value); err != nil {
				return "", nil, nil, &queryError{"INVALID_VALUE", "invalid date: " + c.value}
			}
		}
		conds = append(conds, c)
	}
	return object, fields, conds, nil
}

func compare(op string, c int) bool {
	switch op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	case "<":
		return c < 0
	default:
		return c <= 0
	}
}

func (c cond) match(r queryRow) bool {
	switch c.field {
	case "updateddate":
		return compare(c.op, r.Updated.Compare(c.at))
	case "id":
		return compare(c.op, strings.Compare(r.ID, c.value))
	case "name":
		return compare(c.op, strings.Compare(r.Name, c.value))
	case "termenddate":
		return r.TermEndDate != "" && compare(c.op, strings.Compare(r.TermEndDate, c.value))
	case "termtype":
		return compare(c.op, strings.Compare(r.TermType, c.value))
	case "accountid":
		return compare(c.op, strings.Compare(r.AccountID, c.value))
	case "accountnumber":
		return compare(c.op, strings.Compare(r.AccountNumber, c.value))
	default: // status: picklist values are case-sensitive in ZOQL, as in Zuora
		return compare(c.op, strings.Compare(r.Status, c.value))
	}
}

func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	var req struct {
		QueryString string `json:"queryString"`
	}
	if !sandbox.DecodeJSON(w, r, &req) {
		return
	}
	s.mu.Lock()
	canned := s.queryAnswer
	s.mu.Unlock()
	if canned != nil {
		sandbox.WriteJSON(w, http.StatusOK, canned)
		return
	}
	object, fields, conds, err := parseQuery(req.QueryString)
	if err != nil {
		qe, ok := err.(*queryError)
		if !ok {
			qe = &queryError{"MALFORMED_QUERY", err.Error()}
		}
		queryFault(w, qe.code, "MalformedQueryFault", qe.msg)
		return
	}
	s.mu.Lock()
	var rows []queryRow
	for _, v := range s.rowsLocked(object) {
		ok := true
		for _, c := range conds {
			ok = ok && c.match(v)
		}
		if ok {
			rows = append(rows, v)
		}
	}
	s.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Name != rows[j].Name {
			return rows[i].Name < rows[j].Name
		}
		if rows[i].ID != rows[j].ID {
			return rows[i].ID < rows[j].ID
		}
		return rows[i].Version < rows[j].Version
	})
	s.answerPage(w, fields, rows, len(rows))
}

// rowsLocked is every row of a ZOQL object; s.mu is held.
func (s *Server) rowsLocked(object string) []queryRow {
	var rows []queryRow
	switch object {
	case "account":
		for number, rec := range s.accounts {
			rows = append(rows, queryRow{ID: rec.id, AccountID: rec.id, AccountNumber: number, Updated: rec.updated})
		}
	case "contact":
		for number, rec := range s.accounts {
			for _, c := range rec.contacts {
				rows = append(rows, queryRow{ID: c.id, AccountID: rec.id, AccountNumber: number, Updated: c.updated})
			}
		}
	default:
		for _, rec := range s.subs {
			rows = append(rows, rec.versions...)
		}
	}
	return rows
}

func (s *Server) queryMore(w http.ResponseWriter, r *http.Request) {
	var req struct {
		QueryLocator string `json:"queryLocator"`
	}
	if !sandbox.DecodeJSON(w, r, &req) {
		return
	}
	s.mu.Lock()
	c, ok := s.cursors[req.QueryLocator]
	delete(s.cursors, req.QueryLocator)
	s.mu.Unlock()
	if !ok {
		queryFault(w, "INVALID_QUERY_LOCATOR", "InvalidQueryLocatorFault", "invalid query locator: "+req.QueryLocator)
		return
	}
	s.answerPage(w, c.fields, c.rows, c.size)
}

// cursor is what a queryLocator stands for.
type cursor struct {
	fields []string
	rows   []queryRow
	size   int
}

func (s *Server) answerPage(w http.ResponseWriter, fields []string, rows []queryRow, size int) {
	s.mu.Lock()
	n := min(s.pageSize, len(rows))
	page, rest := rows[:n], rows[n:]
	resp := map[string]any{"size": size, "done": len(rest) == 0}
	if len(rest) > 0 {
		if len(s.cursors) >= 10000 { // abandoned queries: forget them all
			s.cursors = map[string]cursor{}
		}
		loc := randomHex(16)
		s.cursors[loc] = cursor{fields: fields, rows: rest, size: size}
		resp["queryLocator"] = loc
	}
	s.mu.Unlock()
	records := make([]map[string]any, 0, len(page))
	for _, r := range page {
		rec := map[string]any{"Id": r.ID}
		for _, f := range fields {
			switch f {
			case "Name":
				rec["Name"] = r.Name
			case "Status":
				rec["Status"] = r.Status
			case "UpdatedDate":
				rec["UpdatedDate"] = r.Updated.UTC().Format(zoqlTime)
			case "Version":
				rec["Version"] = r.Version
			case "AccountId":
				rec["AccountId"] = r.AccountID
			case "AccountNumber":
				rec["AccountNumber"] = r.AccountNumber
			}
		}
		records = append(records, rec)
	}
	resp["records"] = records
	sandbox.WriteJSON(w, http.StatusOK, resp)
}

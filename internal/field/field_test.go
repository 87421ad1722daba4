package field

import (
	"errors"
	"testing"
)

// Rename names each field error by its key, keeps the message and the fields
// it has no key for, and leaves other errors alone.
func TestRename(t *testing.T) {
	t.Parallel()
	var es Errors
	es.Add("Timeout", "must be positive, got %d", -1)
	es.AddAt("Clients", []int{1, 0}, "too short")
	es.Add("Other", "bad")
	plain := errors.New("plain")
	err := Rename(errors.Join(es.Err(), plain), func(e Error) Error {
		switch {
		case e.Field == "Timeout":
			e = Keys(map[string]string{"Timeout": "x.timeout"})(e)
		case e.Field == "Clients" && len(e.Index) == 2:
			e.Field, e.Msg = "x.clients[1].secret", "secret too short"
		}
		return e
	})
	want := "x.timeout: must be positive, got -1\nx.clients[1].secret: secret too short\nOther: bad\nplain"
	if err == nil || err.Error() != want {
		t.Fatalf("Rename = %q; want %q", err, want)
	}
	if !errors.Is(err, plain) {
		t.Error("a plain error lost in the rename")
	}
	if Rename(nil, Keys(nil)) != nil || (Errors{}).Err() != nil {
		t.Error("nothing found must be nil")
	}
}

package zuora

import "testing"

func TestSuccessTrueSkipsOnlyGoodAnswers(t *testing.T) {
	for body, want := range map[string]bool{
		`{"success":true,"id":"x"}`:                          true,
		`{"id":"x","Success" :  true}`:                       true,
		`{"status":"success","n":1}`:                         true, // a value, not a key
		`{"a":{"success":true},"success":true}`:              true,
		`{"items":[]}`:                                       true, // no key: nothing to fail on
		`{"success":false,"reasons":[]}`:                     false,
		`{"SUCCESS":false}`:                                  false,
		`{"success":"false"}`:                                false, // decode tells
		`{"success":0}`:                                      false,
		`{"a":{"success":false},"success":true}`:             false, // nested: decode tells
		`{"succ\u0065ss":false}`:                             false,
		`{"name":"\u00e9","success":true}`:                   false, // any escape: decode tells
		`{"success":true,"more":{"isSuccess":false}}`:        false,
		`{"processId":"1","success":true,"reasons":null}   `: true,
	} {
		if got := successTrue([]byte(body)); got != want {
			t.Errorf("successTrue(%s) = %v; want %v", body, got, want)
		}
	}
}

// Whatever the fast path says, checkBody answers as the full decode does.
func TestCheckBodyFastPathAgreesWithDecode(t *testing.T) {
	for _, body := range []string{
		`{"success":true}`, `{"success":false,"reasons":[{"code":50000040,"message":"no"}]}`,
		`{"Success":false}`, `{"success":"false"}`, `{"status":"success"}`, `not json`, ``,
	} {
		fast := checkBody(200, []byte(body)) == nil
		slow := decodeCheck(200, []byte(body)) == nil
		if fast != slow {
			t.Errorf("checkBody(200, %s): good %v; the decode says %v", body, fast, slow)
		}
	}
}

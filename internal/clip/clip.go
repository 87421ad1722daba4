// Package clip shortens strings that go into messages, evidence and records:
// upstream error bodies, echoed request values, ids in a refusal. One rule for
// every package: cut at n bytes and mark the cut with "…".
package clip

import (
	"strings"
	"unicode/utf8"
)

// To returns s when it is at most n bytes long, else its first n bytes and
// "…", cut before a rune that would not fit whole (a record or log line
// stays valid UTF-8).
func To(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Line folds every run of white space in s to one space (a body on one log
// line), then clips it to n bytes like To.
func Line(s string, n int) string {
	return To(strings.Join(strings.Fields(s), " "), n)
}

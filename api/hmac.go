package api

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"regexp"
	"strings"
)

// Zuora's HMAC merge fields. The Header Value is free text around
// signedMarker; the Data (what is signed) is literal text, the body and
// request headers.
const (
	signedMarker = "{{Request.HMAC.Signed}}"
	bodyMarker   = "{{Request.Body}}"
	headerPrefix = "{{Request.Headers."
)

// mergeFieldRE finds anything that looks like a merge field: the advanced
// and data-source form {{…}} and the legacy <Object.Field> form. Only the
// ones zsync can reproduce are accepted; the others render values zsync
// cannot know, so a signature over them could never be checked.
var mergeFieldRE = regexp.MustCompile(`\{\{[^{}]*\}\}|<[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+>`)

// dataPart is one piece of the signed data: literal text, the body, or the
// value of one request header.
type dataPart struct {
	literal string
	body    bool
	header  string
}

// parseHMACData reads the Data of Zuora's HMAC settings.
func parseHMACData(tmpl string) ([]dataPart, error) {
	var parts []dataPart
	rest := tmpl
	for rest != "" {
		loc := mergeFieldRE.FindStringIndex(rest)
		if loc == nil {
			parts = append(parts, dataPart{literal: rest})
			break
		}
		if loc[0] > 0 {
			parts = append(parts, dataPart{literal: rest[:loc[0]]})
		}
		field := rest[loc[0]:loc[1]]
		switch {
		case field == bodyMarker:
			parts = append(parts, dataPart{body: true})
		case strings.HasPrefix(field, headerPrefix) && strings.HasSuffix(field, "}}"):
			name := strings.TrimSuffix(strings.TrimPrefix(field, headerPrefix), "}}")
			if name == "" || strings.ContainsAny(name, " :\r\n") {
				return nil, fmt.Errorf("%s names no header", field)
			}
			parts = append(parts, dataPart{header: name})
		default:
			return nil, fmt.Errorf("%s can't be verified: zsync only knows %s, %s<name>}} and literal text", field, bodyMarker, headerPrefix)
		}
		rest = rest[loc[1]:]
	}
	if len(parts) == 0 {
		return nil, errors.New("is empty")
	}
	return parts, nil
}

// parseValueFormat splits the Header Value around the one signedMarker.
func parseValueFormat(f string) (prefix, suffix string, err error) {
	if n := strings.Count(f, signedMarker); n != 1 {
		return "", "", fmt.Errorf("must contain %s exactly once (found %d)", signedMarker, n)
	}
	prefix, suffix, _ = strings.Cut(f, signedMarker)
	for _, lit := range []string{prefix, suffix} {
		if m := mergeFieldRE.FindString(lit); m != "" {
			return "", "", fmt.Errorf("%s can't be verified: only %s may appear in the header value", m, signedMarker)
		}
	}
	return prefix, suffix, nil
}

// hmacVerifier checks Zuora's HMAC header.
type hmacVerifier struct {
	secret  []byte
	header  string
	newHash func() hash.Hash
	alg     string
	base64  bool
	data    []dataPart
	prefix  string // header value around the signature
	suffix  string
	plain   bool // the default value format: an "alg=" prefix is tolerated too
}

// newHMACVerifier builds the verifier of a validated config (nil: no HMAC).
func newHMACVerifier(cfg Config) *hmacVerifier {
	if cfg.HMACSecret == "" {
		return nil
	}
	data, _ := parseHMACData(cfg.HMACData)
	prefix, suffix, _ := parseValueFormat(cfg.HMACValueFormat)
	return &hmacVerifier{
		secret:  []byte(cfg.HMACSecret),
		header:  cfg.HMACHeader,
		newHash: hashFor(cfg.HMACAlgorithm),
		alg:     strings.ToLower(strings.ReplaceAll(cfg.HMACAlgorithm, "-", "")),
		base64:  strings.EqualFold(cfg.HMACEncoding, "base64"),
		data:    data,
		prefix:  prefix,
		suffix:  suffix,
		plain:   prefix == "" && suffix == "",
	}
}

// verify reports whether r's signature header holds the HMAC of the signed
// data (built from body and r's headers). The text around the signature
// must be the configured text exactly (surrounding spaces aside). Hex is
// case-insensitive; base64 may be padded or not. The signatures are
// compared in constant time.
func (v *hmacVerifier) verify(r *http.Request, body []byte) bool {
	val := strings.TrimSpace(r.Header.Get(v.header))
	prefix, suffix := strings.TrimLeft(v.prefix, " \t"), strings.TrimRight(v.suffix, " \t")
	if !strings.HasPrefix(val, prefix) || !strings.HasSuffix(val, suffix) || len(val) < len(prefix)+len(suffix) {
		return false
	}
	sig := strings.TrimSpace(val[len(prefix) : len(val)-len(suffix)])
	if v.plain {
		if p, rest, ok := strings.Cut(sig, "="); ok && strings.EqualFold(p, v.alg) {
			sig = rest
		}
	}
	if sig == "" {
		return false
	}
	got, err := v.decode(sig)
	if err != nil {
		return false
	}
	m := hmac.New(v.newHash, v.secret)
	for _, p := range v.data {
		switch {
		case p.body:
			m.Write(body)
		case p.header != "":
			m.Write([]byte(r.Header.Get(p.header)))
		default:
			m.Write([]byte(p.literal))
		}
	}
	return hmac.Equal(got, m.Sum(nil))
}

func (v *hmacVerifier) decode(sig string) ([]byte, error) {
	if !v.base64 {
		return hex.DecodeString(sig)
	}
	b, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(sig, "="))
	}
	return b, err
}

// Package zuoraspec holds Zuora's published OpenAPI (Swagger 2.0, vendored in
// specs/ and pinned by specs/SHA256SUMS) and judges HTTP exchanges against it:
// a request against its operation (path, method, required headers and query
// parameters, body schema), a response against the operation's response
// schema, and it lists each operation's documented response examples. Tests
// of the Zuora client and of the sandbox use it (Transport); nothing in the
// service imports it.
package zuoraspec

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"go.yaml.in/yaml/v4"
)

//go:embed specs/*.yml specs/SHA256SUMS
var files embed.FS

// Spec is every vendored API document, converted to OpenAPI 3 and routed.
type Spec struct {
	docs []*document
}

type document struct {
	file   string
	doc    *openapi3.T
	router routers.Router
}

var (
	loadOnce sync.Once
	loaded   *Spec
	loadErr  error
)

// Load reads, verifies and converts the vendored specs once per process (it
// takes about a second); every caller shares the result, read-only.
func Load() (*Spec, error) {
	loadOnce.Do(func() { loaded, loadErr = load(files) })
	return loaded, loadErr
}

func load(fsys fs.FS) (*Spec, error) {
	sums, err := checkSums(fsys)
	if err != nil {
		return nil, err
	}
	s := &Spec{}
	for _, name := range sums {
		b, err := fs.ReadFile(fsys, path.Join("specs", name))
		if err != nil {
			return nil, err
		}
		d3, err := convert(b)
		if err != nil {
			return nil, fmt.Errorf("zuoraspec: %s: %w", name, err)
		}
		applyQuirks(d3)
		r, err := gorillamux.NewRouter(d3)
		if err != nil {
			return nil, fmt.Errorf("zuoraspec: %s: router: %w", name, err)
		}
		s.docs = append(s.docs, &document{file: name, doc: d3, router: r})
	}
	return s, nil
}

// checkSums verifies every file SHA256SUMS names and returns their names; a
// changed or missing copy refuses to load, so the judge is the published text.
func checkSums(fsys fs.FS) ([]string, error) {
	b, err := fs.ReadFile(fsys, "specs/SHA256SUMS")
	if err != nil {
		return nil, fmt.Errorf("zuoraspec: %w", err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("zuoraspec: SHA256SUMS: malformed line %q", line)
		}
		want, name := f[0], strings.TrimPrefix(f[1], "*")
		data, err := fs.ReadFile(fsys, path.Join("specs", name))
		if err != nil {
			return nil, fmt.Errorf("zuoraspec: %w", err)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != want {
			return nil, fmt.Errorf("zuoraspec: %s: sha256 %s, SHA256SUMS pins %s (the vendored spec was changed)", name, got, want)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// convert reads a Swagger 2.0 YAML document into OpenAPI 3. YAML goes through
// JSON first: the specs key responses by unquoted integers (200:), which only
// the JSON decoding of openapi2 accepts as response codes.
func convert(b []byte) (*openapi3.T, error) {
	var generic any
	if err := yaml.Unmarshal(b, &generic); err != nil {
		return nil, err
	}
	jb, err := json.Marshal(stringKeys(generic))
	if err != nil {
		return nil, err
	}
	var d2 openapi2.T
	if err := json.Unmarshal(jb, &d2); err != nil {
		return nil, err
	}
	return openapi2conv.ToV3(&d2)
}

func stringKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = stringKeys(e)
		}
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = stringKeys(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = stringKeys(e)
		}
	}
	return v
}

// Description is the info.description of the spec file name (the markdown
// that holds, among others, the table of tenants' base URLs).
func (s *Spec) Description(file string) string {
	for _, d := range s.docs {
		if d.file == file && d.doc.Info != nil {
			return d.doc.Info.Description
		}
	}
	return ""
}

// Route finds the operation a request is for.
func (s *Spec) Route(r *http.Request) (*routers.Route, map[string]string, error) {
	for _, d := range s.docs {
		route, params, err := d.router.FindRoute(r)
		if err == nil {
			return route, params, nil
		}
	}
	return nil, nil, fmt.Errorf("zuoraspec: %s %s: no operation in Zuora's spec", r.Method, r.URL.Path)
}

// Operation returns the operation for method and a path template as the spec
// writes it ("/v1/accounts/{account-key}").
func (s *Spec) Operation(method, template string) (*openapi3.Operation, error) {
	for _, d := range s.docs {
		if item := d.doc.Paths.Value(template); item != nil {
			if op := item.GetOperation(strings.ToUpper(method)); op != nil {
				return op, nil
			}
		}
	}
	return nil, fmt.Errorf("zuoraspec: %s %s: no such operation", method, template)
}

// Example is one documented response example.
type Example struct {
	Status int    // the response it documents
	Body   []byte // JSON, as the spec writes it
}

// Examples lists the documented JSON response examples of an operation, by
// status.
func (s *Spec) Examples(method, template string) ([]Example, error) {
	op, err := s.Operation(method, template)
	if err != nil {
		return nil, err
	}
	var out []Example
	for code, ref := range op.Responses.Map() {
		if ref == nil || ref.Value == nil {
			continue
		}
		mt := ref.Value.Content.Get("application/json")
		if mt == nil || mt.Example == nil {
			continue
		}
		var status int
		if _, err := fmt.Sscan(code, &status); err != nil {
			continue // "default"
		}
		b, err := json.Marshal(mt.Example)
		if err != nil {
			return nil, err
		}
		out = append(out, Example{Status: status, Body: bytes.TrimSpace(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Status < out[j].Status })
	return out, nil
}

package zuoraspec

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/zsync/zsync/zuora"
)

// Every way this package reads Zuora's spec other than literally is here,
// each with its reason. The type disagreements between the declared schemas
// and the documented examples are not here: they are the client's list,
// zuora.Disagreements, which widen applies.

// applyQuirks adjusts a converted document in memory (the files stay as
// published).
func applyQuirks(d *openapi3.T) {
	// Servers: the specs name only rest.zuora.com; the contract is the same
	// on every tenant's host (the description's table) and on the loopback
	// sandboxes, so routing matches the path on any host.
	d.Servers = openapi3.Servers{{URL: "/"}}

	// Security: the specs declare no security schemes; the bearer token is
	// the documented optional Authorization header parameter, which the
	// parameter checks cover. Nothing to relax.

	// Null: Zuora answers an unset field with null (termEndDate of an
	// evergreen subscription, most examples' empty fields) but the Swagger
	// 2.0 schemas never say x-nullable, so every schema admits null.
	seen := map[*openapi3.Schema]bool{}
	for _, s := range d.Components.Schemas {
		nullable(s, seen)
	}
	for _, item := range d.Paths.Map() {
		for _, op := range item.Operations() {
			for _, p := range op.Parameters {
				if p.Value != nil {
					nullable(p.Value.Schema, seen)
				}
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for _, mt := range op.RequestBody.Value.Content {
					nullable(mt.Schema, seen)
				}
			}
			for _, r := range op.Responses.Map() {
				if r.Value != nil {
					for _, mt := range r.Value.Content {
						nullable(mt.Schema, seen)
					}
				}
			}
		}
	}
	for _, dis := range zuora.Disagreements {
		widen(d, dis)
	}
}

func nullable(ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return
	}
	s := ref.Value
	seen[s] = true
	s.Nullable = true
	for _, p := range s.Properties {
		nullable(p, seen)
	}
	nullable(s.Items, seen)
	if s.AdditionalProperties.Schema != nil {
		nullable(s.AdditionalProperties.Schema, seen)
	}
	for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, m := range group {
			nullable(m, seen)
		}
	}
}

// widen lets what a disagreement names also take the form Zuora's examples
// send: a class (a declared format) everywhere, a field in the 2xx response
// schemas of its operation. Schemas are widened in place, so a shared one is
// widened once for all its users.
func widen(d *openapi3.T, dis zuora.Disagreement) {
	if dis.Format == "date-time" {
		return // a format, not a type: see schemaOptions
	}
	if dis.Format != "" {
		seen := map[*openapi3.Schema]bool{}
		var walk func(ref *openapi3.SchemaRef)
		walk = func(ref *openapi3.SchemaRef) {
			if ref == nil || ref.Value == nil || seen[ref.Value] {
				return
			}
			s := ref.Value
			seen[s] = true
			if s.Format == dis.Format && s.Type.Is("string") {
				alsoAccept(s, dis)
				return
			}
			for _, p := range s.Properties {
				walk(p)
			}
			walk(s.Items)
			for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
				for _, m := range group {
					walk(m)
				}
			}
		}
		for _, s := range d.Components.Schemas {
			walk(s)
		}
		for _, item := range d.Paths.Map() {
			for _, op := range item.Operations() {
				for _, r := range op.Responses.Map() {
					if r.Value != nil {
						for _, mt := range r.Value.Content {
							walk(mt.Schema)
						}
					}
				}
			}
		}
		return
	}
	method, template, ok := strings.Cut(dis.Op, " ")
	if !ok {
		return
	}
	item := d.Paths.Value(template)
	if item == nil {
		return
	}
	op := item.GetOperation(method)
	if op == nil {
		return
	}
	segs := strings.Split(dis.Field, ".")
	for code, r := range op.Responses.Map() {
		if !strings.HasPrefix(code, "2") || r.Value == nil {
			continue
		}
		for _, mt := range r.Value.Content {
			for _, parent := range parents(mt.Schema, segs[:len(segs)-1]) {
				if prop := parent.Properties[segs[len(segs)-1]]; prop != nil && prop.Value != nil {
					alsoAccept(prop.Value, dis)
				}
			}
		}
	}
}

// alsoAccept turns s into "s, or a value of the type dis says is sent".
func alsoAccept(s *openapi3.Schema, dis zuora.Disagreement) {
	if s.Extensions["x-zsync-widened"] != nil {
		return
	}
	declared := *s
	*s = openapi3.Schema{
		AnyOf:      openapi3.SchemaRefs{{Value: &declared}, {Value: &openapi3.Schema{Type: &openapi3.Types{dis.Sent}}}},
		Nullable:   true,
		Extensions: map[string]any{"x-zsync-widened": dis.Reason},
	}
}

// parents finds the schemas (through allOf/anyOf/oneOf and array items)
// reached by following path's property names from ref.
func parents(ref *openapi3.SchemaRef, path []string) []*openapi3.Schema {
	cur := objects(ref, map[*openapi3.Schema]bool{})
	for _, name := range path {
		var next []*openapi3.Schema
		for _, s := range cur {
			if p := s.Properties[name]; p != nil {
				next = append(next, objects(p, map[*openapi3.Schema]bool{})...)
			}
		}
		cur = next
	}
	return cur
}

// objects is ref's schema and the members of its compositions and array
// items: every schema whose properties describe the same JSON object.
func objects(ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) []*openapi3.Schema {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return nil
	}
	s := ref.Value
	seen[s] = true
	out := []*openapi3.Schema{}
	if s.Properties != nil {
		out = append(out, s)
	}
	out = append(out, objects(s.Items, seen)...)
	for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, m := range group {
			out = append(out, objects(m, seen)...)
		}
	}
	return out
}

// dateTime accepts RFC 3339 (what format: date-time declares) and the
// "YYYY-MM-DD HH:MM:SS" form Zuora's examples and tenants write
// (the date-time entry of zuora.Disagreements).
var dateTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?)?$`)

func dateTimeFormat(v string) error {
	if !dateTime.MatchString(v) {
		return fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DD HH:MM:SS", v)
	}
	return nil
}

// schemaOptions: the other formats the specs name (decimal, UUID, int, long,
// url, string…) are unknown to kin-openapi and check nothing.
var schemaOptions = func() []openapi3.SchemaValidationOption {
	opts := []openapi3.SchemaValidationOption{openapi3.MultiErrors()}
	for _, dis := range zuora.Disagreements {
		if dis.Format == "date-time" {
			// "datetime" is two fields' misspelling of the same format.
			v := openapi3.NewCallbackValidator(dateTimeFormat)
			opts = append(opts, openapi3.WithStringFormatValidator("date-time", v),
				openapi3.WithStringFormatValidator("datetime", v))
		}
	}
	return opts
}()

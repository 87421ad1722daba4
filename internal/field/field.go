// Package field is the error a component's Validate reports for one field.
// Components name their own fields; config/ renames each to the key it came
// from, so one rule lives in the component and the message still names what
// an operator set.
package field

import (
	"errors"
	"fmt"
)

// Error is one invalid field. Index locates the element of a list field it
// is about (a client, then its secret), for a caller that maps elements to
// keys of their own; it is not printed.
type Error struct {
	Field string
	Index []int
	Msg   string
}

func (e *Error) Error() string { return e.Field + ": " + e.Msg }

// Errors collects what a Validate found.
type Errors []error

// Add records that field is invalid.
func (es *Errors) Add(field, format string, args ...any) {
	es.AddAt(field, nil, format, args...)
}

// AddAt records that the element index of list field is invalid.
func (es *Errors) AddAt(field string, index []int, format string, args ...any) {
	*es = append(*es, &Error{Field: field, Index: index, Msg: fmt.Sprintf(format, args...)})
}

// Err is every finding joined, or nil.
func (es Errors) Err() error { return errors.Join(es...) }

// Rename returns err with each field error e replaced by name(e) (which
// renames its Field, and may reword Msg to name keys too). Errors that are
// not field errors pass unchanged.
func Rename(err error, name func(e Error) Error) error {
	if err == nil {
		return nil
	}
	var out []error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if fe, ok := err.(*Error); ok {
			renamed := name(*fe)
			err = &renamed
		}
		out = append(out, err)
	}
	walk(err)
	return errors.Join(out...)
}

// Keys renames the fields m has a key for; the others keep their names.
func Keys(m map[string]string) func(Error) Error {
	return func(e Error) Error {
		if k, ok := m[e.Field]; ok {
			e.Field = k
		}
		return e
	}
}

package zuoraspec

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3filter"
)

func filterOptions() *openapi3filter.Options {
	return &openapi3filter.Options{
		MultiError: true,
		// No security schemes are declared (see applyQuirks); the token is
		// checked as the Authorization header parameter.
		AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc,
		SkipSettingDefaults:     true,
		SchemaValidationOptions: schemaOptions,
	}
}

// ValidateRequest checks r against its operation: the path and method exist,
// required headers, query and path parameters are there and well-formed, and
// the body matches its schema. r's body is read and put back.
func (s *Spec) ValidateRequest(ctx context.Context, r *http.Request) error {
	route, params, err := s.Route(r)
	if err != nil {
		return err
	}
	body, err := readBody(&r.Body)
	if err != nil {
		return err
	}
	// The validator consumes the body of the request it is given: give it a
	// copy, so r is sent as it came.
	cp := r.Clone(ctx)
	cp.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{Request: cp, PathParams: params, Route: route, Options: filterOptions()}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		return fmt.Errorf("zuoraspec: request %s %s (%s): %w", r.Method, r.URL.Path, route.Operation.OperationID, err)
	}
	return nil
}

// ValidateResponse checks a response to r against the operation's response
// for its status (an undocumented status is not an error: the specs document
// few error answers) and, for JSON, its schema.
func (s *Spec) ValidateResponse(ctx context.Context, r *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := s.Route(r)
	if err != nil {
		return err
	}
	cp := r.Clone(ctx)
	cp.Body = http.NoBody
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: cp, PathParams: params, Route: route,
			Options: filterOptions()},
		Status:  status,
		Header:  header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: filterOptions(),
	}
	if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
		return fmt.Errorf("zuoraspec: response %d to %s %s (%s): %w", status, r.Method, r.URL.Path,
			route.Operation.OperationID, err)
	}
	return nil
}

func readBody(rc *io.ReadCloser) ([]byte, error) {
	if *rc == nil || *rc == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(*rc)
	(*rc).Close()
	if err != nil {
		return nil, err
	}
	*rc = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

package worker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/zsync/zsync/zuora"
)

// IDSource streams subscription ids: it calls yield once per id and stops,
// returning yield's error, when yield fails. It never needs every id in
// memory at once.
type IDSource func(ctx context.Context, yield func(id string) error) error

// maxLine bounds one line of an id file.
const maxLine = 4096

// LinesSource reads one id per line from r. Blank lines and comments (from
// '#' to the end of the line) are ignored; surrounding space is trimmed.
func LinesSource(r io.Reader) IDSource {
	return func(ctx context.Context, yield func(string) error) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 1024), maxLine)
		for n := 1; sc.Scan(); n++ {
			line, _, _ := strings.Cut(sc.Text(), "#")
			if line = strings.TrimSpace(line); line == "" {
				continue
			}
			if err := yield(line); err != nil {
				return err
			}
			if n%1024 == 0 && ctx.Err() != nil {
				return context.Cause(ctx)
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read ids: %w", err)
		}
		return nil
	}
}

// ListSource streams ids already in memory (an API request's list).
func ListSource(ids []string) IDSource {
	return func(_ context.Context, yield func(string) error) error {
		for _, id := range ids {
			if err := yield(id); err != nil {
				return err
			}
		}
		return nil
	}
}

// SubscriptionQuerier selects subscriptions in Zuora (*zuora.Client).
type SubscriptionQuerier interface {
	QuerySubscriptions(ctx context.Context, q zuora.SubscriptionQuery, fn func(number string) error) error
}

// ZuoraSource streams the numbers of the Zuora subscriptions matching q.
func ZuoraSource(z SubscriptionQuerier, q zuora.SubscriptionQuery) IDSource {
	return func(ctx context.Context, yield func(string) error) error {
		return z.QuerySubscriptions(ctx, q, yield)
	}
}

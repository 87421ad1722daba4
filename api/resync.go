package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/zsync/zsync/internal/clip"
	"github.com/zsync/zsync/worker"
	"github.com/zsync/zsync/zuora"
)

// ResyncSelection says which subscriptions a bulk re-sync covers: either IDs,
// or the Zuora subscriptions matching Status and/or UpdatedSince.
type ResyncSelection struct {
	IDs          []string
	Status       string
	UpdatedSince time.Time
}

// Resyncs starts bulk re-sync jobs and reports their progress.
type Resyncs interface {
	// StartResync creates the job and returns once it exists; the job then
	// runs in the background of the implementation, not of the request.
	StartResync(ctx context.Context, sel ResyncSelection) (worker.JobProgress, error)
	// ResyncProgress returns worker.ErrJobNotFound for an unknown id.
	ResyncProgress(ctx context.Context, id string) (worker.JobProgress, error)
}

// Errors a Resyncs implementation returns for the ingress to map.
var (
	// ErrResyncBusy: too many jobs running in this process (429).
	ErrResyncBusy = errors.New("too many resync jobs running; try again later")
	// ErrResyncUnsupported: the selection needs something this process
	// lacks, e.g. a Zuora query without Zuora configured (501).
	ErrResyncUnsupported = errors.New("this selection is not available in this process")
)

// resyncRequest is the body of POST /v1/resyncs, as decodeResync reads it.
type resyncRequest struct {
	IDs          []string // "ids"
	Status       string   // "status"
	UpdatedSince string   // "updated_since": YYYY-MM-DD or RFC 3339
}

type resyncAccepted struct {
	ID       string          `json:"id"`
	State    worker.JobState `json:"state"`
	Progress string          `json:"progress"` // where to follow it
}

const maxInvalidShown = 10

func (s *server) startResync(c echo.Context) error {
	if s.deps.Resyncs == nil {
		return errStatus(http.StatusNotImplemented, "bulk re-sync not available in this process")
	}
	sel, err := parseResync(c.Request().Body, s.cfg.MaxResyncIDs)
	switch {
	case overResyncLimit(err):
		return s.cfg.resyncTooLarge()
	case err != nil:
		return errStatus(http.StatusBadRequest, err.Error())
	}
	p, err := s.deps.Resyncs.StartResync(c.Request().Context(), sel)
	switch {
	case errors.Is(err, ErrResyncBusy):
		return errStatus(http.StatusTooManyRequests, err.Error())
	case errors.Is(err, ErrResyncUnsupported):
		return errStatus(http.StatusNotImplemented, err.Error())
	case err != nil:
		c.Set(ctxCause, "start resync: "+err.Error())
		return errStatus(http.StatusServiceUnavailable, "queue unavailable")
	}
	c.Set(ctxStatus, string(p.State))
	loc := "/v1/resyncs/" + p.ID
	c.Response().Header().Set(echo.HeaderLocation, loc)
	return c.JSON(http.StatusAccepted, resyncAccepted{ID: p.ID, State: p.State, Progress: loc})
}

// parseResync reads and validates the body (resync_body.go): at most
// maxIDs ids, or a Zuora selection. Over a limit it returns errTooManyIDs
// or the body's *http.MaxBytesError.
func parseResync(body io.Reader, maxIDs int) (ResyncSelection, error) {
	if body == nil {
		body = http.NoBody
	}
	r, err := decodeResync(body, maxIDs)
	switch {
	case overResyncLimit(err):
		return ResyncSelection{}, err
	case err != nil:
		return ResyncSelection{}, fmt.Errorf("body must be JSON {\"ids\":[...]} or {\"status\":...,\"updated_since\":...}: %v", err)
	}
	query := r.Status != "" || r.UpdatedSince != ""
	switch {
	case r.IDs != nil && query:
		return ResyncSelection{}, errors.New("send either ids or status/updated_since, not both")
	case r.IDs == nil && !query:
		return ResyncSelection{}, errors.New("send ids, or status and/or updated_since")
	case r.IDs != nil:
		if len(r.IDs) == 0 {
			return ResyncSelection{}, errors.New("ids is empty")
		}
		// Only the first invalid ids are kept: a million of them must not
		// make a million-line answer.
		var bad []string
		n := 0
		for _, id := range r.IDs {
			if err := validateID(id); err != nil {
				if n++; n <= maxInvalidShown {
					bad = append(bad, fmt.Sprintf("%q", clip.To(id, 70)))
				}
			}
		}
		if n > 0 {
			more := ""
			if n > maxInvalidShown {
				more = fmt.Sprintf(" and %d more", n-maxInvalidShown)
			}
			return ResyncSelection{}, fmt.Errorf("%d invalid ids: %s%s", n, strings.Join(bad, ", "), more)
		}
		return ResyncSelection{IDs: r.IDs}, nil
	}
	sel := ResyncSelection{Status: r.Status}
	if r.Status != "" && !validStatus(r.Status) {
		return sel, errors.New("invalid status: letters and spaces only (e.g. Active)")
	}
	if r.UpdatedSince != "" {
		t, err := zuora.ParseUpdatedSince(r.UpdatedSince)
		if err != nil {
			return sel, fmt.Errorf("updated_since: %w", err)
		}
		sel.UpdatedSince = t
	}
	return sel, nil
}

// validStatus is what the Zuora query accepts in its status filter.
func validStatus(s string) bool {
	return len(s) <= 40 && strings.IndexFunc(s, func(r rune) bool {
		return !(r == ' ' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0
}

func (s *server) resyncProgress(c echo.Context) error {
	if s.deps.Resyncs == nil {
		return errStatus(http.StatusNotImplemented, "bulk re-sync not available in this process")
	}
	id := c.Param("id")
	if !worker.ValidJobID(id) {
		return errStatus(http.StatusBadRequest, "invalid resync job id: want rs-<time>-<hex>")
	}
	p, err := s.deps.Resyncs.ResyncProgress(c.Request().Context(), id)
	switch {
	case errors.Is(err, worker.ErrJobNotFound):
		return errStatus(http.StatusNotFound, "no resync job "+id)
	case err != nil:
		c.Set(ctxCause, "resync progress: "+err.Error())
		return errStatus(http.StatusServiceUnavailable, "job store unavailable")
	}
	return c.JSON(http.StatusOK, p)
}

package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/zsync/zsync/internal/clip"
	"github.com/zsync/zsync/internal/upstream"
	"github.com/zsync/zsync/zuora"
)

func (r *runner) zuoraChecks(ctx context.Context, zc *zuora.Client) {
	now := r.cfg.Now().UTC()
	m := r.rec.mark()
	// The sweep's first query is the vehicle for the token, the version and
	// the limit headers: it is what every sweep sends first.
	rows := 0
	qerr := zc.QuerySubscriptions(ctx, zuora.SubscriptionQuery{UpdatedSince: now.Add(-15 * time.Minute)}, func(string) error {
		rows++
		return nil
	})
	tok := r.rec.last(m, http.MethodPost, "/oauth/token")
	if !r.tokenResult("zuora.token", "the OAuth client gets a token from POST /oauth/token", tok) {
		r.add(Result{ID: "zuora.version", Assumption: "the pinned Zuora-Version is accepted", Status: Unknown, Evidence: "no token"})
		return
	}
	q := r.rec.last(m, http.MethodPost, "/v1/action/query")
	r.add(versionResult(q, qerr))
	r.add(queryResult("zuora.sweep_query", "the sweep's ZOQL query on UpdatedDate is accepted", q, qerr, rows))

	mt := r.rec.mark()
	rows = 0
	day := now.Format(time.DateOnly)
	terr := zc.QuerySubscriptions(ctx, zuora.SubscriptionQuery{TermEndFrom: now.AddDate(0, 0, -1).Format(time.DateOnly), TermEndTo: day},
		func(string) error { rows++; return nil })
	r.add(queryResult("zuora.sweep_query_term_end", "the sweep's ZOQL query on TermType and TermEndDate is accepted",
		r.rec.last(mt, http.MethodPost, "/v1/action/query"), terr, rows))

	r.add(entityResult(tok, r.rec.since(m)))
	if r.cfg.Subscription != "" {
		r.zuoraSubscription(ctx, zc, r.cfg.Subscription)
	} else {
		r.add(Result{ID: "zuora.subscription", Assumption: "a subscription reads with its account, billing preview and order",
			Status: Unknown, Evidence: "not checked: pass --subscription A-S… (a subscription of this tenant)"})
	}
	r.add(limitHeadersResult(r.rec.since(m)))
}

// tokenResult adds the token check of an API; false when there is no token.
func (r *runner) tokenResult(id, assumption string, ex *exchange) bool {
	res := Result{ID: id, Assumption: assumption}.from(ex)
	switch {
	case ex == nil:
		res.Status, res.Evidence = Fail, "no answer from the token endpoint (check the base URL and the network)"
		res.Fix = "check " + strings.SplitN(id, ".", 2)[0] + ".base_url"
	case ex.status != http.StatusOK:
		res.Status, res.Evidence = Fail, "refused: "+clip.Line(string(ex.body), 200)
		res.Fix = "check " + strings.SplitN(id, ".", 2)[0] + ".client_id and client_secret"
	default:
		var t struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			ExpiresIn   int    `json:"expires_in"`
		}
		if json.Unmarshal(ex.body, &t) != nil || t.AccessToken == "" {
			res.Status, res.Evidence = Fail, "answer carries no access_token: "+clip.Line(string(ex.body), 120)
		} else {
			res.Status, res.Evidence = Pass, fmt.Sprintf("token_type %s, expires_in %d", t.TokenType, t.ExpiresIn)
		}
	}
	r.add(res)
	return res.Status == Pass
}

func versionResult(ex *exchange, err error) Result {
	res := Result{ID: "zuora.version", Assumption: "the pinned Zuora-Version is accepted"}.from(ex)
	if ex == nil {
		return errResult(res, nil, err, false)
	}
	v := ex.reqHeader.Get("Zuora-Version")
	switch {
	case ex.status >= 200 && ex.status <= 299:
		res.Status, res.Evidence = Pass, "Zuora-Version "+v+" answered "+fmt.Sprint(ex.status)
	case strings.Contains(strings.ToLower(string(ex.body)), "version"):
		res.Status, res.Evidence = Fail, "Zuora-Version "+v+" refused: "+clip.Line(string(ex.body), 200)
		res.Fix = "set zuora.version to a version the tenant supports (zsync decodes the shapes of 2025-08-12)"
	default:
		res.Status, res.Evidence = Unknown, "Zuora-Version "+v+" sent; the answer doesn't say: "+clip.Line(string(ex.body), 160)
	}
	return res
}

func queryResult(id, assumption string, ex *exchange, err error, rows int) Result {
	res := Result{ID: id, Assumption: assumption}.from(ex)
	if err != nil {
		res = errResult(res, ex, err, ex != nil && ex.status >= 400 && ex.status < 600)
		res.Fix = "the sweep can't run on this tenant: check the integration user's access to ZOQL (Subscription object)"
		return res
	}
	res.Status, res.Evidence = Pass, fmt.Sprintf("%d subscription(s) in the answer", rows)
	return res
}

// entityResult reads the token's scope: a token valid for several entities
// needs Zuora-Entity-Ids on every call, which zsync doesn't send.
func entityResult(tok *exchange, exs []*exchange) Result {
	res := Result{ID: "zuora.entity_ids", Assumption: "no Zuora-Entity-Ids header is needed (one entity)"}.from(tok)
	for _, ex := range exs {
		if strings.Contains(string(ex.body), "Entity-Ids") || strings.Contains(strings.ToLower(string(ex.body)), "entity id") {
			res = res.from(ex)
			res.Status, res.Evidence = Fail, "the tenant asks for an entity: "+clip.Line(string(ex.body), 200)
			res.Fix = "multi-entity tenant: zsync sends no Zuora-Entity-Ids; use an OAuth client valid for one entity only"
			return res
		}
	}
	var t struct {
		Scope string `json:"scope"`
	}
	if tok != nil {
		_ = json.Unmarshal(tok.body, &t)
	}
	var entities []string
	for _, s := range strings.Fields(t.Scope) {
		if strings.HasPrefix(s, "entity.") {
			entities = append(entities, s)
		}
	}
	switch len(entities) {
	case 0:
		res.Status, res.Evidence = Unknown, "the token's scope names no entity ("+clip.Line(t.Scope, 80)+"); calls went through without Zuora-Entity-Ids"
	case 1:
		res.Status, res.Evidence = Pass, "token scope names one entity ("+entities[0]+")"
	default:
		res.Status, res.Evidence = Fail, fmt.Sprintf("token scope names %d entities (%s): Zuora requires Zuora-Entity-Ids", len(entities), strings.Join(entities, " "))
		res.Fix = "zsync sends no Zuora-Entity-Ids: use an OAuth client whose user has access to one entity only"
	}
	return res
}

// limitHeadersResult looks for Zuora's limit headers on the API answers.
func limitHeadersResult(exs []*exchange) Result {
	res := Result{ID: "zuora.rate_limit_headers", Assumption: "answers carry the rate-limit and concurrency headers"}
	seen := map[string]string{}
	var from *exchange
	for _, ex := range exs {
		if !strings.HasPrefix(ex.path, "/v1/") {
			continue
		}
		for k, v := range ex.header {
			lk := strings.ToLower(k)
			if strings.HasPrefix(lk, "ratelimit-") || strings.HasPrefix(lk, "x-ratelimit-") || strings.HasPrefix(lk, "concurrency-limit-") {
				seen[k] = strings.Join(v, ",")
				from = ex
			}
		}
	}
	res = res.from(from)
	if len(seen) == 0 {
		res.Status = Unknown
		res.Evidence = "no RateLimit-* or Concurrency-Limit-* header on any answer: zsync's own zuora.concurrency and zuora.rate_per_minute are the only guard"
		return res
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k+"="+seen[k])
	}
	sort.Strings(keys)
	res.Status, res.Evidence = Pass, strings.Join(keys, " ")
	return res
}

// zuoraSubscription reads a subscription as a sync does: the subscription,
// its account, its account's billing preview, and the order that made it.
func (r *runner) zuoraSubscription(ctx context.Context, zc *zuora.Client, number string) {
	m := r.rec.mark()
	zs, err := zc.GetSubscription(ctx, number)
	ex := r.rec.last(m, http.MethodGet, "/v1/subscriptions/")
	res := Result{ID: "zuora.subscription", Assumption: "GET /v1/subscriptions/{number} reads the subscription"}
	if err != nil {
		res = errResult(res, ex, err, true)
		if errors.Is(err, upstream.ErrNotFound) {
			res.Status, res.Fix = Unknown, ""
			res.Evidence = "Zuora knows no " + number + ": name a subscription of this tenant"
		}
		r.add(res)
		return
	}
	res = res.from(ex)
	res.Status, res.Evidence = Pass, fmt.Sprintf("%s version %d, status %s, %s, term %s → %s, account %s, %d rate plan(s)",
		zs.SubscriptionNumber, zs.Version, zs.Status, zs.TermType, zs.TermStartDate, zs.TermEndDate, zs.AccountNumber, len(zs.RatePlans))
	r.add(res)

	m = r.rec.mark()
	acc, err := zc.GetAccount(ctx, zs.AccountNumber)
	res = Result{ID: "zuora.account", Assumption: "GET /v1/accounts/{number} reads the account with its contacts"}
	if err != nil {
		r.add(errResult(res, r.rec.last(m, http.MethodGet, "/v1/accounts/"), err, true))
	} else {
		res = res.from(r.rec.last(m, http.MethodGet, "/v1/accounts/"))
		res.Status, res.Evidence = Pass, fmt.Sprintf("currency %s, billToContact %v, soldToContact %v",
			acc.BillingAndPayment.Currency, acc.BillToContact != nil, acc.SoldToContact != nil)
		r.add(res)
	}

	m = r.rec.mark()
	target := zs.TermEndDate
	if target == "" || strings.EqualFold(zs.TermType, "EVERGREEN") || target < r.cfg.Now().Format(time.DateOnly) {
		target = r.cfg.Now().AddDate(0, 12, 0).Format(time.DateOnly)
	}
	bp, err := zc.BillingPreview(ctx, zuora.BillingPreviewRequest{AccountNumber: zs.AccountNumber, TargetDate: target,
		IncludingEvergreenSubscription: strings.EqualFold(zs.TermType, "EVERGREEN")})
	res = Result{ID: "zuora.billing_preview", Assumption: "POST /v1/operations/billing-preview previews the account's charges"}
	if err != nil {
		r.add(errResult(res, r.rec.last(m, http.MethodPost, "/billing-preview"), err, true))
	} else {
		mine := 0
		for _, it := range bp.InvoiceItems {
			if strings.EqualFold(it.SubscriptionNumber, zs.SubscriptionNumber) || strings.EqualFold(it.SubscriptionName, zs.SubscriptionNumber) {
				mine++
			}
		}
		res = res.from(r.rec.last(m, http.MethodPost, "/billing-preview"))
		res.Status, res.Evidence = Pass, fmt.Sprintf("%d item(s) up to %s, %d of %s", len(bp.InvoiceItems), target, mine, zs.SubscriptionNumber)
		r.add(res)
	}

	res = Result{ID: "zuora.order", Assumption: "GET /v1/orders/{number} reads the order (the loop guard's createdBy and Source__c)"}
	if zs.OrderNumber == "" {
		res.Status, res.Evidence = Unknown, "the subscription names no orderNumber (a tenant without Orders?): the loop guard then judges by the callout body alone"
		r.add(res)
		return
	}
	m = r.rec.mark()
	o, err := zc.GetOrder(ctx, zs.OrderNumber)
	if err != nil {
		res = errResult(res, r.rec.last(m, http.MethodGet, "/v1/orders/"), err, !errors.Is(err, upstream.ErrNotFound))
		if res.Status == Unknown {
			res.Evidence = "the subscription's order " + zs.OrderNumber + " is not found (" + res.Evidence + "): the loop guard then syncs"
		}
		r.add(res)
		return
	}
	res = res.from(r.rec.last(m, http.MethodGet, "/v1/orders/"))
	src, init := o.CustomFields.Get("Source__c"), o.CustomFields.Get("InitiatedSource__c")
	res.Status, res.Evidence = Pass, fmt.Sprintf("%s createdBy %q, Source__c %q, InitiatedSource__c %q", o.OrderNumber, o.CreatedBy, src, init)
	r.add(res)
	cf := Result{ID: "zuora.order_source_fields", Assumption: "orders carry the custom fields Source__c and InitiatedSource__c"}.from(r.rec.last(m, http.MethodGet, "/v1/orders/"))
	_, hasSrc := o.CustomFields["Source__c"]
	_, hasInit := o.CustomFields["InitiatedSource__c"]
	if hasSrc || hasInit {
		cf.Status, cf.Evidence = Pass, fmt.Sprintf("Source__c present %v, InitiatedSource__c present %v", hasSrc, hasInit)
	} else {
		cf.Status = Unknown
		cf.Evidence = "neither field is on the order: the loop guard can judge Limio's own orders only by loopguard.integration_user_ids"
	}
	r.add(cf)
}

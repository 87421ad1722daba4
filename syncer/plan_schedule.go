package syncer

import (
	"sort"
	"strings"

	"github.com/zsync/zsync/limio"
)

// schedule reconciles the schedule (rule 2): create missing entries, update
// changed ones, cancel pending future entries Zuora no longer bills. Past
// entries (date before today) are history and never touched.
func (p *planner) schedule() {
	existing := p.l.Related.Schedules
	// The entry that holds a reference: the one at the deterministic id when
	// there are several (any other is cancelled below if pending).
	byRef := map[string]int{}
	for i, e := range existing {
		ref := e.Data.Reference
		if ref == "" {
			continue
		}
		if j, ok := byRef[ref]; !ok || existing[j].ID != limio.NewID("schedule", p.subID, ref) && e.ID == limio.NewID("schedule", p.subID, ref) {
			byRef[ref] = i
		}
	}
	matched := map[int]bool{}
	for _, c := range p.wantSchedule() {
		amount := formatAmount(c.amount, p.currency)
		i, ok := byRef[c.ref]
		if !ok {
			id := limio.NewID("schedule", p.subID, c.ref)
			data := limio.ScheduleData{Date: c.date, Amount: amount, Currency: p.currency, Description: c.desc, Reference: c.ref, Type: "payment"}
			d := newDiff(limio.RecordSchedule, limio.PathSchedules, id)
			d.created(limio.Schedule{
				Envelope: limio.Envelope{ID: id, RecordType: limio.RecordSchedule, Status: limio.SchedulePending, Related: p.subID, Owner: p.owner},
				Data:     data,
			}, []fv{{limio.FieldReference, c.ref}, {limio.FieldDate, c.date}, {limio.FieldAmount, amount}, {limio.FieldCurrency, p.currency}, {limio.FieldDescription, c.desc}})
			p.emit(d)
			continue
		}
		matched[i] = true
		e := existing[i]
		if day(e.Data.Date) < p.today {
			continue
		}
		d := newDiff(limio.RecordSchedule, limio.PathSchedules, e.ID)
		if strings.EqualFold(e.Status, limio.ScheduleCancelled) {
			d.text(limio.FieldStatus, e.Status, limio.SchedulePending) // billed again
		}
		d.text(limio.FieldDate, day(e.Data.Date), c.date)
		if !sameAmount(e.Data.Amount, c.amount) {
			d.set(OpUpdate, limio.FieldAmount, e.Data.Amount, amount, amount)
		}
		if !strings.EqualFold(e.Data.Currency, p.currency) {
			d.set(OpUpdate, limio.FieldCurrency, e.Data.Currency, p.currency, p.currency)
		}
		d.text(limio.FieldDescription, e.Data.Description, c.desc)
		p.emit(d)
	}
	// A pending entry the preview no longer holds was either billed (the
	// preview starts at the next billing period, so on a bill run the period
	// just billed drops out of it) or is no longer billed at all.
	billed, netted := p.billedThrough(), p.nettedCharges()
	var cancel []limio.Schedule
	for i, e := range existing {
		if matched[i] || !strings.EqualFold(e.Status, limio.SchedulePending) || day(e.Data.Date) < p.today {
			continue
		}
		charge, _, _ := strings.Cut(e.Data.Reference, ":")
		// A discount's or credit's own entry (earlier zsync versions made
		// them) is netted now: cancelled, even for a billed period.
		if through, ok := billed[charge]; ok && day(e.Data.Date) < through && !netted[charge] {
			d := newDiff(limio.RecordSchedule, limio.PathSchedules, e.ID)
			d.text(limio.FieldStatus, e.Status, limio.ScheduleActive)
			p.emit(d)
			continue
		}
		cancel = append(cancel, e)
	}
	sort.Slice(cancel, func(i, j int) bool {
		if a, b := day(cancel[i].Data.Date), day(cancel[j].Data.Date); a != b {
			return a < b
		}
		return cancel[i].ID < cancel[j].ID
	})
	for _, e := range cancel {
		d := newDiff(limio.RecordSchedule, limio.PathSchedules, e.ID)
		d.set(OpCancel, limio.FieldStatus, e.Status, limio.ScheduleCancelled, limio.ScheduleCancelled)
		p.emit(d)
	}
}

// billedThrough maps each charge number to the date Zuora has billed it
// through (its chargedThroughDate; the latest across segments).
func (p *planner) billedThrough() map[string]string {
	out := map[string]string{}
	for _, rp := range p.zs.RatePlans {
		for _, c := range rp.RatePlanCharges {
			if c.Number == "" {
				continue
			}
			out[c.Number] = max(out[c.Number], day(c.ChargedThroughDate))
			for _, sg := range c.ChargeSegments {
				out[c.Number] = max(out[c.Number], day(sg.ChargedThroughDate))
			}
		}
	}
	return out
}

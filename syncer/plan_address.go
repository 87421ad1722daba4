package syncer

import (
	"strings"

	"github.com/zsync/zsync/limio"
	"github.com/zsync/zsync/zuora"
)

// address reconciles one address (rule 3): the bill-to contact is the billing
// address, the sold-to contact the delivery address. A contact that is
// missing, or has no address lines at all, leaves the Limio address alone:
// Zuora not sending one is no reason to erase what the customer gave Limio.
func (p *planner) address(typ string, c *zuora.Contact) {
	want, ok := wantAddress(typ, c)
	if !ok {
		return
	}
	var existing *limio.Address
	for i := range p.l.Related.Addresses {
		if strings.EqualFold(p.l.Related.Addresses[i].Data.Type, typ) {
			existing = &p.l.Related.Addresses[i]
			break
		}
	}
	if existing == nil {
		id := limio.NewID("address", p.subID, typ)
		d := newDiff(limio.RecordAddress, limio.PathAddress, id)
		d.created(limio.Address{
			Envelope: limio.Envelope{ID: id, RecordType: limio.RecordAddress, Related: p.subID, Owner: p.owner},
			Data:     want,
		}, addressFields(want))
		p.emit(d)
		return
	}
	d := newDiff(limio.RecordAddress, limio.PathAddress, existing.ID)
	oldF, newF := addressFields(existing.Data), addressFields(want)
	for i := 1; i < len(newF); i++ { // [0] is the type, the address's identity
		d.text(newF[i].field, oldF[i].value, newF[i].value)
	}
	p.emit(d)
}

func wantAddress(typ string, c *zuora.Contact) (limio.AddressData, bool) {
	if c == nil || c.Address1 == "" && c.Address2 == "" && c.City == "" && c.State == "" && c.Zip() == "" && c.Country == "" {
		return limio.AddressData{}, false
	}
	company := c.Company
	if company == "" {
		company = customField(c.CustomFields, "Company__c")
	}
	return limio.AddressData{
		Type: typ, FirstName: c.FirstName, LastName: c.LastName, Company: company,
		Address1: c.Address1, Address2: c.Address2, City: c.City, State: c.State,
		PostalCode: c.Zip(), Country: c.Country, Email: c.Email(),
	}, true
}

func addressFields(a limio.AddressData) []fv {
	return []fv{
		{limio.FieldAddressType, a.Type}, {limio.FieldFirstName, a.FirstName}, {limio.FieldLastName, a.LastName}, {limio.FieldCompany, a.Company},
		{limio.FieldAddress1, a.Address1}, {limio.FieldAddress2, a.Address2}, {limio.FieldCity, a.City}, {limio.FieldState, a.State},
		{limio.FieldPostalCode, a.PostalCode}, {limio.FieldCountry, a.Country}, {limio.FieldEmail, a.Email},
	}
}

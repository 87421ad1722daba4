package syncer

import "testing"

// Legacy merge fields render the creator as a user name or e-mail: the
// guard matches those against IntegrationUserNames, ids against
// IntegrationUserIDs, and a name never needs the order read.
func TestGuardMatchesIntegrationUserNames(t *testing.T) {
	t.Parallel()
	cfg := Config{IntegrationUserIDs: []string{"2c92c0f8limio"}, IntegrationUserNames: []string{"limio-integration@example.com"}}
	for _, tt := range []struct {
		creator string
		want    bool
	}{
		{"2c92c0f8limio", true},
		{" Limio-Integration@Example.com ", true},
		{"jane@example.com", false},
		{"limio-integration", false},
	} {
		skip, reason := loopGuard(cfg, Trigger{Source: SourceCallout, CreatedByID: tt.creator}, nil)
		if skip != tt.want {
			t.Errorf("creator %q: skip = %v (%s); want %v", tt.creator, skip, reason, tt.want)
		}
	}
	if skip, _ := loopGuard(cfg, Trigger{Source: SourceManual, CreatedByID: "limio-integration@example.com"}, nil); skip {
		t.Errorf("a manual sync was guarded")
	}
}

// CalloutLoop names the field that decided, the same for the ingress (which
// formats its own reason) and loopGuard; the first field that matches wins.
func TestCalloutLoopNamesTheField(t *testing.T) {
	t.Parallel()
	cfg := Config{IntegrationUserIDs: []string{"2c92c0f8limio"}}
	for _, tt := range []struct {
		name string
		trig Trigger
		want string
	}{
		{"order source", Trigger{OrderSource: " SHOP ", InitiatedSource: "salesforce"}, LoopOrderSource},
		{"initiated source", Trigger{OrderSource: "zuora-ui", InitiatedSource: "Salesforce"}, LoopInitiatedSource},
		{"creator", Trigger{CreatedByID: "2C92C0F8LIMIO"}, LoopCreatedBy},
		{"none", Trigger{OrderSource: "zuora-ui", CreatedByID: "someone"}, ""},
		{"empty", Trigger{}, ""},
	} {
		if got := CalloutLoop(cfg, tt.trig); got != tt.want {
			t.Errorf("%s: CalloutLoop = %q; want %q", tt.name, got, tt.want)
		}
	}
	if got := CalloutLoop(Config{LoopSources: []string{}}, Trigger{OrderSource: "shop"}); got != "" {
		t.Errorf("no loop sources: CalloutLoop = %q; want none", got)
	}
}

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
		skip, reason := Guard(cfg, Trigger{Source: SourceCallout, CreatedByID: tt.creator}, nil)
		if skip != tt.want {
			t.Errorf("creator %q: skip = %v (%s); want %v", tt.creator, skip, reason, tt.want)
		}
	}
	if skip, _ := Guard(cfg, Trigger{Source: SourceManual, CreatedByID: "limio-integration@example.com"}, nil); skip {
		t.Errorf("a manual sync was guarded")
	}
}

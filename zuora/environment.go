package zuora

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Environments names the base URL of each Zuora tenant environment, from the
// table "Access to the API" of Zuora's published reference (the test holds it
// to the vendored spec). US Cloud 2 is Zuora's default US data centre, so it
// also answers to the shorter us-production and us-sandbox.
var Environments = map[string]string{
	"us-cloud1-production": "https://rest.na.zuora.com",
	"us-cloud1-sandbox":    "https://rest.sandbox.na.zuora.com",
	"us-cloud2-production": "https://rest.zuora.com",
	"us-cloud2-sandbox":    "https://rest.apisandbox.zuora.com",
	"us-production":        "https://rest.zuora.com",
	"us-sandbox":           "https://rest.apisandbox.zuora.com",
	"us-central-sandbox":   "https://rest.test.zuora.com",
	"us-performance-test":  "https://rest.pt1.zuora.com",
	"eu-production":        "https://rest.eu.zuora.com",
	"eu-sandbox":           "https://rest.sandbox.eu.zuora.com",
	"eu-central-sandbox":   "https://rest.test.eu.zuora.com",
}

// EnvironmentURL is the base URL of a named environment.
func EnvironmentURL(name string) (string, error) {
	if u, ok := Environments[strings.ToLower(strings.TrimSpace(name))]; ok {
		return u, nil
	}
	names := make([]string, 0, len(Environments))
	for n := range Environments {
		names = append(names, n)
	}
	sort.Strings(names)
	return "", fmt.Errorf("unknown environment %q (one of %s)", name, strings.Join(names, ", "))
}

// entityID is what a Zuora entity id looks like (a UUID or a 32-hex id).
var entityID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// CheckEntityIDs refuses an entity id that could not be one (it goes into
// a header on every call), and more than one: every operation zsync calls
// declares Zuora-Entity-Ids as "an entity ID" (GLOBAL_HEADER_Zuora_Entity_Ids_Single).
func CheckEntityIDs(ids []string) error {
	if len(ids) > 1 {
		return fmt.Errorf("%d entity ids: the operations zsync calls take one (Zuora-Entity-Ids)", len(ids))
	}
	for _, id := range ids {
		if !entityID.MatchString(id) {
			return fmt.Errorf("entity id %q is not an id (letters, digits and -, at most 64)", id)
		}
	}
	return nil
}

// Package docs holds zsync's documentation; this test keeps it, and every
// other file in the repository, free of references to files that live
// outside the repository.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// outside matches the names of notes that were never part of the repository.
var outside = regexp.MustCompile(`DESIGN\.md|DESIGN "|limio-api\.md|zuora-api\.md|asynq-notes\.md|fidelity-findings\.md|go-style-anchors\.md|limio-zuora-sync-doc\.md|\.\./shared|/work/shared`)

func TestNoReferencesOutsideTheRepository(t *testing.T) {
	root := ".."
	var bad []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if name == ".git" || name == "bin" || name == "specs" {
				return filepath.SkipDir
			}
			return nil
		}
		if path == filepath.Join(root, "docs", "refs_test.go") {
			return nil // the patterns themselves
		}
		b, err := os.ReadFile(path)
		if err != nil || strings.ContainsRune(string(b[:min(len(b), 512)]), 0) {
			return err // binary files are skipped
		}
		for i, line := range strings.Split(string(b), "\n") {
			if outside.MatchString(line) {
				bad = append(bad, path+":"+strconv.Itoa(i+1)+": "+strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("reference to a file outside the repository: %s", b)
	}
}

// The design page exists and the README points at it.
func TestDesignPageIsLinked(t *testing.T) {
	if _, err := os.Stat("design.md"); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "docs/design.md") {
		t.Error("README.md does not point at docs/design.md")
	}
}

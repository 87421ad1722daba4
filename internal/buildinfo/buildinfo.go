// Package buildinfo says which zsync this is: the version stamped at build
// time (make build and the Dockerfile pass -ldflags "-X
// github.com/zsync/zsync/internal/buildinfo.version=…"), else what the Go
// toolchain recorded (module version, VCS revision).
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// version is set by the linker; empty in a plain go build.
var version string

// Info is the build's identity, as zsync --version prints it and
// zsync_build_info labels it.
type Info struct {
	Version   string
	Revision  string
	GoVersion string
}

// Get returns the build's Info. Unknown parts are "unknown".
func Get() Info {
	i := Info{Version: version, Revision: "unknown", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Revision = s.Value[:min(len(s.Value), 12)]
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && i.Revision != "unknown" {
			i.Revision += "-dirty"
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	return i
}

// String is the one line zsync --version prints.
func (i Info) String() string {
	return i.Version + " (revision " + i.Revision + ", " + i.GoVersion + ")"
}

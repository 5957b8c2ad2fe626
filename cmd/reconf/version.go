package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at build time: go build -ldflags "-X main.version=1.2.3 -X main.commit=abc1234".
// When empty they come from the module and VCS information Go embeds in the binary.
var (
	version string
	commit  string
)

// versionString is what -version prints: "reconf 1.2.3 (commit abc1234, go1.26.8 linux/amd64)".
func versionString() string {
	v, c := buildVersion()
	return fmt.Sprintf("reconf %s (commit %s, %s %s/%s)", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildVersion returns the version ("(devel)" when unknown) and commit ("unknown") of this
// binary: from -ldflags, else from the build information Go embeds.
func buildVersion() (v, c string) {
	v, c = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		if c == "" {
			var rev, dirty string
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					if s.Value == "true" {
						dirty = "-dirty"
					}
				}
			}
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if rev != "" {
				c = rev + dirty
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
}

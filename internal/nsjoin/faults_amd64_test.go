package nsjoin

import (
	"go/build"
	"slices"
	"testing"
)

// TestFaultInjectionNeedsItsTag proves that the code that kills the helper
// at a step is compiled into the fault build only, never into the binary
// that gets installed.
func TestFaultInjectionNeedsItsTag(t *testing.T) {
	tests := []struct {
		name string
		tags []string
		want bool
	}{
		{name: "default build", tags: nil, want: false},
		{name: "fault build", tags: []string{"netns_session_faults"}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := build.Default
			ctx.BuildTags = tt.tags
			pkg, err := ctx.ImportDir(".", 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Contains(pkg.GoFiles, "faults_amd64.go"); got != tt.want {
				t.Errorf("faults_amd64.go in the build with tags %q: %t, want %t (files: %q)", tt.tags, got, tt.want, pkg.GoFiles)
			}
		})
	}
}

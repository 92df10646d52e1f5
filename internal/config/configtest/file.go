package configtest

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteConfig writes content as the only config file of a fresh directory
// and returns its path. config.Load refuses a file an unprivileged user
// could have written, and a test's files belong to whoever runs it, so a
// test that loads one needs root: without it the test is skipped, saying so.
func WriteConfig(t testing.TB, content string) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: the config must be owned by root")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "netns-session.conf")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

package reconcile

import (
	"context"
	"errors"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/netns-session/netns-session/internal/config/configtest"
)

// TestCancelledSyncWritesNothing: the watcher gives up on a sync stuck in an
// NSS lookup and cancels its context; when the lookup returns, that sync
// must not write or remove a drop-in, reload, or record anything: a newer
// sync, perhaps under a newer config, may have run meanwhile.
func TestCancelledSyncWritesNothing(t *testing.T) {
	s := newTestSystem(t)
	s.writeDropIn(t, "dave", 1004, present) // a drop-in the old config would remove
	s.writeDropIn(t, "bob", 1002, "/run/netns/old")
	s.linger(t, "carol")
	before := s.dropIns(t)
	// The lookup of carol does not answer until released, as an LDAP
	// source does when its server hangs.
	users := testUsers()
	hanging, release := make(chan struct{}), make(chan struct{})
	users.Hook = func(l configtest.Lookup) error {
		if l.Kind == configtest.UserByName && l.Name == "carol" {
			close(hanging)
			<-release
		}
		return nil
	}
	cfg := parseConfig(t, "alice "+present+"\n@lab "+present+"\n")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Sync(ctx, cfg, users, s.m, s.opts())
		done <- err
	}()
	select {
	case <-hanging:
	case <-time.After(5 * time.Second):
		t.Fatal("sync never looked carol up")
	}
	cancel() // the watcher gives up
	close(release)
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("sync did not return after its lookup did")
	}

	if !errors.Is(err, context.Canceled) {
		t.Errorf("Sync() error = %v, want context.Canceled", err)
	}
	if got := s.dropIns(t); !maps.Equal(got, before) {
		t.Errorf("drop-ins after a cancelled sync = %v, want them untouched (%v)", got, before)
	}
	if s.sd.reloads != 0 || len(s.sd.started) != 0 {
		t.Errorf("cancelled sync reloaded %d times and started %v", s.sd.reloads, s.sd.started)
	}
	if _, err := os.Stat(s.recordPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cancelled sync wrote the record of lingering users: %v", err)
	}
}

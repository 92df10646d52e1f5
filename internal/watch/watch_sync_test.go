package watch

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/netns-session/netns-session/internal/config"
	"github.com/netns-session/netns-session/internal/reconcile"
)

// TestWatchRetriesAFailedSync: a sync that fails (the directory is down) is
// tried again, after a wait that grows, until one succeeds; then no more.
func TestWatchRetriesAFailedSync(t *testing.T) {
	var mu sync.Mutex
	var waits []time.Duration
	var calls atomic.Int32
	synced := make(chan int32, 10)
	startWatch(t, newFakeSystem(), aliceInNs0, func(c *Config) {
		after := c.After
		c.After = func(d time.Duration, f func()) {
			if d >= minSyncRetry {
				mu.Lock()
				waits = append(waits, d)
				mu.Unlock()
			}
			after(d, f)
		}
		c.Sync = func(context.Context, *config.Config) (*reconcile.Report, error) {
			n := calls.Add(1)
			synced <- n
			if n <= 3 {
				return &reconcile.Report{}, errors.New("looking up user \"erin\": source unavailable")
			}
			return &reconcile.Report{}, nil
		}
	})
	for want := int32(1); want <= 4; want++ {
		select {
		case n := <-synced:
			if n != want {
				t.Fatalf("sync %d, want %d", n, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("sync %d never came: a failed sync was not tried again", want)
		}
	}
	select {
	case n := <-synced:
		t.Errorf("sync %d after one succeeded", n)
	case <-time.After(100 * time.Millisecond):
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []time.Duration{minSyncRetry, 2 * minSyncRetry, 4 * minSyncRetry}; !slices.Equal(waits, want) {
		t.Errorf("waits before the retries %v, want %v", waits, want)
	}
}

// TestWatchDoesNotStackSyncsOnAHungOne: while a sync given up on is still
// stuck in NSS, a retry starts no second one; once it returns, the next
// retry syncs.
func TestWatchDoesNotStackSyncsOnAHungOne(t *testing.T) {
	var calls atomic.Int32
	hung := make(chan struct{})
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(hung) }) })
	r := startWatch(t, newFakeSystem(), aliceInNs0, func(c *Config) {
		c.SyncTimeout = 20 * time.Millisecond
		c.Sync = func(context.Context, *config.Config) (*reconcile.Report, error) {
			if calls.Add(1) == 1 {
				<-hung
				return nil, context.DeadlineExceeded
			}
			return &reconcile.Report{}, nil
		}
	})
	r.waitRecord(t, map[string]string{"ACTION": "sync"}) // gave up
	if rec := r.waitRecord(t, map[string]string{"ACTION": "sync"}); !strings.Contains(rec.msg, "has not returned yet") {
		t.Errorf("retry during the hung sync logged %q, want it to say the hung sync has not returned", rec.msg)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d syncs while the first hangs, want 1", n)
	}
	release.Do(func() { close(hung) })
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no sync after the hung one returned")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWatchSyncsWhenTheLingeringUsersChange: a change of the lingering
// users is followed, lingerSettle later, by a sync, one for a burst of
// changes; a sync that fails then is tried again as any other.
func TestWatchSyncsWhenTheLingeringUsersChange(t *testing.T) {
	changed := make(chan struct{})
	settle := make(chan func(), 1)
	var calls atomic.Int32
	synced := make(chan int32, 10)
	r := startWatch(t, newFakeSystem(), aliceInNs0, func(c *Config) {
		c.WatchLinger = func() (LingerWatch, error) { return &fakeLingerWatch{changes: changed}, nil }
		after := c.After
		c.After = func(d time.Duration, f func()) {
			if d == lingerSettle {
				settle <- f // the test says when the time has passed
				return
			}
			after(d, f)
		}
		c.Sync = func(context.Context, *config.Config) (*reconcile.Report, error) {
			n := calls.Add(1)
			synced <- n
			if n == 2 {
				return &reconcile.Report{}, errors.New("looking up user \"erin\": source unavailable")
			}
			return &reconcile.Report{}, nil
		}
	})
	r.waitNote(t, "READY=1")
	<-synced // at start

	for range 3 {
		changed <- struct{}{}
	}
	var due func()
	select {
	case due = <-settle:
	case <-time.After(5 * time.Second):
		t.Fatal("no sync scheduled after the lingering users changed")
	}
	select {
	case n := <-synced:
		t.Fatalf("sync %d before the changes settled", n)
	case <-time.After(50 * time.Millisecond):
	}
	due()
	r.waitRecord(t, map[string]string{"ACTION": "sync-linger"})
	if n := <-synced; n != 2 {
		t.Fatalf("sync %d after the changes, want 2", n)
	}
	// It failed: the retry comes as for any failed sync.
	r.waitRecord(t, map[string]string{"ACTION": "sync-retry"})
	select {
	case n := <-synced:
		if n != 3 {
			t.Errorf("sync %d, want 3", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the failed sync was not tried again")
	}
	select {
	case n := <-synced:
		t.Errorf("sync %d: want one for the burst of changes and one retry", n)
	case <-time.After(100 * time.Millisecond):
	}
}

// fakeLingerWatch is a watch of the lingering users that ends when told.
type fakeLingerWatch struct {
	changes chan struct{}
	err     error // set before changes is closed
	closed  atomic.Bool
}

func (l *fakeLingerWatch) Changes() <-chan struct{} { return l.changes }
func (l *fakeLingerWatch) Err() error               { return l.err }
func (l *fakeLingerWatch) Close() error             { l.closed.Store(true); return nil }

// TestWatchReportsAnEndedLingerWatchAndWatchesAgainAtTheNextSync: a watch
// of the lingering users that ends on its own (the directory, created
// again, could not be watched) is an error, and the next sync, here a
// reload's, watches them again.
func TestWatchReportsAnEndedLingerWatchAndWatchesAgainAtTheNextSync(t *testing.T) {
	watches := make(chan *fakeLingerWatch, 10)
	r := startWatch(t, newFakeSystem(), aliceInNs0, func(c *Config) {
		c.WatchLinger = func() (LingerWatch, error) {
			l := &fakeLingerWatch{changes: make(chan struct{})}
			watches <- l
			return l, nil
		}
	})
	r.waitNote(t, "READY=1")
	first := <-watches
	first.err = errors.New("watching /var/lib/systemd/linger again: no space left on device")
	close(first.changes)
	rec := r.waitRecord(t, map[string]string{"ACTION": "watch-linger"})
	if rec.prio != journal.PriErr || !strings.Contains(rec.msg, "stopped watching the lingering users") || !strings.Contains(rec.msg, "no space left") {
		t.Errorf("record %q at priority %d, want an error saying the watch stopped and why", rec.msg, rec.prio)
	}
	select {
	case <-watches:
		t.Fatal("watched again before a sync")
	case <-time.After(50 * time.Millisecond):
	}
	if !first.closed.Load() {
		t.Error("the watch that ended was not closed")
	}

	r.reloads <- Reload{}
	var second *fakeLingerWatch
	select {
	case second = <-watches:
	case <-time.After(5 * time.Second):
		t.Fatal("not watched again at the reload's sync")
	}
	second.changes <- struct{}{}
	r.waitRecord(t, map[string]string{"ACTION": "sync-linger"})
}

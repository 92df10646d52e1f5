package proc

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// SleepLog remembers how long the system had slept at instants of
// CLOCK_MONOTONIC, which stops while the system sleeps, so that a monotonic
// instant logind reports (a session's TimestampMonotonic) converts to a
// lower bound on CLOCK_BOOTTIME, the clock of StartTime, which does not
// stop. CLOCK_BOOTTIME − CLOCK_MONOTONIC is the time slept since boot; it
// only grows. The zero SleepLog knows of no sleep: every bound is the
// monotonic instant itself, which is sound, but proves nothing of a process
// started after the system last slept.
type SleepLog struct {
	mu sync.Mutex
	// records grow in both fields; a record {mono, slept} says the system
	// had slept at least slept by monotonic instant mono.
	records []sleepRecord
}

type sleepRecord struct{ mono, slept time.Duration }

// maxSleepRecords bounds the log; a record is added only when the system
// has slept since the last one. The oldest go first: the bounds they gave
// fall back to the next older record, or 0.
const maxSleepRecords = 64

// Record notes how long the system has slept by now.
func (l *SleepLog) Record() {
	// Boot time is read first: the sleep it shows, taken against the
	// monotonic time read after it, can only be less than the sleep by
	// then, even if the system sleeps between the two reads.
	boot := clock(unix.CLOCK_BOOTTIME)
	mono := clock(unix.CLOCK_MONOTONIC)
	l.add(mono, max(boot-mono, 0))
}

func (l *SleepLog) add(mono, slept time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.records); n > 0 && slept <= l.records[n-1].slept {
		return
	}
	if len(l.records) == maxSleepRecords {
		l.records = append(l.records[:0], l.records[1:]...)
	}
	l.records = append(l.records, sleepRecord{mono, slept})
}

// SleptBy returns a lower bound on how long the system had slept by
// monotonic instant mono: the sleep of the last record at or before mono,
// 0 if there is none. Boot time at mono is at least mono + SleptBy(mono).
func (l *SleepLog) SleptBy(mono time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var slept time.Duration
	for _, r := range l.records {
		if r.mono > mono {
			break
		}
		slept = r.slept
	}
	return slept
}

func clock(id int32) time.Duration {
	var ts unix.Timespec
	// Cannot fail for these clocks (Linux 2.6.39 and later).
	_ = unix.ClockGettime(id, &ts)
	return time.Duration(ts.Nano())
}

// SleptSoFar returns an upper bound on how long the system has slept since
// boot, as of now.
func (l *SleepLog) SleptSoFar() time.Duration {
	// Monotonic time is read first: the difference can only exceed the
	// sleep by then.
	mono := clock(unix.CLOCK_MONOTONIC)
	boot := clock(unix.CLOCK_BOOTTIME)
	return max(boot-mono, 0)
}

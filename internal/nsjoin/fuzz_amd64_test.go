package nsjoin

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzParseSyscall feeds parseSyscall arbitrary bytes, which must never make
// it panic or report a blocked thread from anything but the nine fields the
// kernel prints for one, and lines in the kernel's own format, which must
// parse back to the syscall and arguments they were printed from. Its seed
// corpus is testdata/fuzz/FuzzParseSyscall.
func FuzzParseSyscall(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte, nr int32, a0, a1 uint64) {
		if w, blocked := parseSyscall(raw); blocked && len(strings.Fields(string(raw))) != 9 {
			t.Errorf("parseSyscall(%q) = %+v, blocked, from a line without 9 fields", raw, w)
		}

		// fs/proc/base.c, proc_pid_syscall: a negative nr means the thread
		// is not in a syscall, and only sp and pc follow.
		line := fmt.Sprintf("%d %#x %#x\n", nr, uint64(0x7ffc8d10), uint64(0x7f3a1b2c))
		want := waiter{}
		if nr >= 0 {
			line = fmt.Sprintf("%d %#x %#x 0x0 0x0 0x0 0x0 %#x %#x\n", nr, a0, a1, uint64(0x7ffc8d10), uint64(0x7f3a1b2c))
			want = waiter{nr: uint64(nr), a0: a0, a1: a1}
		}
		if got, blocked := parseSyscall([]byte(line)); got != want || blocked != (nr >= 0) {
			t.Errorf("parseSyscall(%q) = %+v, %t; want %+v, %t", line, got, blocked, want, nr >= 0)
		}
	})
}

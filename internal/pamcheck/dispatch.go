package pamcheck

import "slices"

// passesHook says how the module line at handlers[i], before the hook at
// handlers[hook], can make libpam's walk pass the hook without running it:
// the "value=action" of its control that end the (sub)stack before the
// hook when the module succeeds, or jump past the hook on some result.
// done on a failure does not count: it makes the failure the stack's
// result, and the session is denied. A jump that lands at the hook or
// before it, or that libpam finds bad (too long), does not count either.
func (st Stack) passesHook(i, hook int) []string {
	actions, err := controlActions(st.Entries[st.handlers[i].entry].Control)
	if err != nil {
		// libpam fails every result of a control it cannot read.
		return nil
	}
	var how []string
	for _, value := range returnValues[:len(returnValues)-1] {
		passes := false
		switch a := actions.of(value); {
		case a == "done":
			passes = value == "success" && st.decided(i) > hook
		case jump(a) > 0:
			passes = st.jumped(i, jump(a)) > hook
		}
		if w := actions.written(value); passes && !slices.Contains(how, w) {
			how = append(how, w)
		}
	}
	return how
}

// decided is the index of the handler the walk goes on with when the one
// at i ends its stack with "done": the first after the substack it is in,
// len(handlers) at the top.
func (st Stack) decided(i int) int {
	j := i + 1
	for j < len(st.handlers) && st.handlers[j].level >= st.handlers[i].level {
		j++
	}
	return j
}

// jumped is the index of the handler the walk goes on with after the one
// at i jumps n, as _pam_dispatch_aux counts: a substack is one module, and
// a jump does not leave the substack it is in; -1 for a jump too long,
// which libpam fails.
func (st Stack) jumped(i, n int) int {
	level := st.handlers[i].level
	j := i
	for ; n > 0 && j+1 < len(st.handlers) && st.handlers[j+1].level >= level; n-- {
		j++
		for j+1 < len(st.handlers) && st.handlers[j+1].level > level {
			j++
		}
	}
	if n > 0 {
		return -1
	}
	return j + 1
}

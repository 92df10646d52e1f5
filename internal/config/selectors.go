package config

import "hash/maphash"

// maxRules bounds the rules of one config: selectorSet keeps rule indices in
// 24 bits.
const maxRules = 1<<24 - 1

// selectorSet finds the rule an earlier line gave a selector, across all
// files. It is an open-addressed table of 32-bit slots, each a rule index and
// 8 bits of its hash: a sixth of the memory of a map[string]int. On a
// 100k-line config, cache misses and page faults on that memory were most of
// the parse time, and a login parses the whole config.
type selectorSet struct {
	seed  maphash.Seed
	slots []uint32 // hash tag<<24 | (rule index + 1); 0 = empty
	used  int
}

const (
	slotIndex = 1<<24 - 1
	slotTag   = ^uint32(slotIndex)
)

// newSelectorSet returns a set with room for n selectors at a load of at
// most one half, which keeps linear probes short.
func newSelectorSet(n int) *selectorSet {
	size := 16
	for size < 2*n {
		size *= 2
	}
	return &selectorSet{seed: maphash.MakeSeed(), slots: make([]uint32, size)}
}

func (s *selectorSet) hash(kind SelectorKind, name string) uint64 {
	return maphash.String(s.seed, name) ^ uint64(kind)
}

// add records that rule index, about to be added to c, has selector kind
// and name, unless an earlier rule has it: then it returns that rule's index
// and false. index must be below maxRules.
func (s *selectorSet) add(c *Config, index int, kind SelectorKind, name string) (int, bool) {
	if 2*(s.used+1) > len(s.slots) {
		s.grow(c)
	}
	hash := s.hash(kind, name)
	tag := uint32(hash>>56) << 24
	mask := uint64(len(s.slots) - 1)
	for i := hash & mask; ; i = (i + 1) & mask {
		slot := s.slots[i]
		if slot == 0 {
			s.slots[i] = tag | uint32(index+1)
			s.used++
			return index, true
		}
		if slot&slotTag == tag {
			earlier := int(slot&slotIndex) - 1
			if r := &c.rules[earlier]; r.kind == kind && c.str(r, r.name) == name {
				return earlier, false
			}
		}
	}
}

// grow doubles the table; the slots keep too little of the hash to move
// without rehashing the rules' names.
func (s *selectorSet) grow(c *Config) {
	old := s.slots
	s.slots = make([]uint32, 2*len(old))
	mask := uint64(len(s.slots) - 1)
	for _, slot := range old {
		if slot == 0 {
			continue
		}
		r := &c.rules[slot&slotIndex-1]
		i := s.hash(r.kind, c.str(r, r.name)) & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = slot
	}
}

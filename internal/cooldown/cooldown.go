// Package cooldown counts, per key, how many tries to skip after a refusal: the ledger's and
// the warehouse's COPY paths send a table's next groups to their statements for a while once
// a COPY met a row the table holds, instead of paying for another refused COPY each time.
package cooldown

import "sync"

// Counter is a per-key countdown; the zero value is not usable (New).
type Counter[K comparable] struct {
	n    int
	mu   sync.Mutex
	left map[K]int
}

// New returns a Counter whose Refused skips a key's next n tries.
func New[K comparable](n int) *Counter[K] {
	return &Counter[K]{n: n, left: map[K]int{}}
}

// Try reports whether k may be tried now; a try it refuses counts down k's cooldown.
func (c *Counter[K]) Try(k K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if left := c.left[k]; left > 0 {
		if left == 1 {
			delete(c.left, k)
		} else {
			c.left[k] = left - 1
		}
		return false
	}
	return true
}

// Refused starts k's cooldown: its next n tries are refused.
func (c *Counter[K]) Refused(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.left[k] = c.n
}

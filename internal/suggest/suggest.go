// Package suggest finds the "did you mean" for a misspelt name among the names that are
// allowed: configuration keys, mapping types, column and ranking rule names. Error messages
// that name the fix are the point; a wrong suggestion is worse than none, so only close
// matches count.
package suggest

import "strings"

// Closest returns the option closest to s, case-insensitively, if it is within an edit
// distance of 2 or a third of s's length, whichever is larger; otherwise "".
func Closest(s string, options []string) string {
	best, bestD := "", 1<<30
	for _, o := range options {
		if dd := levenshtein(strings.ToLower(s), strings.ToLower(o)); dd < bestD {
			best, bestD = o, dd
		}
	}
	if bestD <= max(2, len(s)/3) {
		return best
	}
	return ""
}

// levenshtein is the edit distance between a and b in bytes, with two rows of the table.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

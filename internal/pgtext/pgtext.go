// Package pgtext makes free text (error messages, reasons) storable in a Postgres text
// column. Postgres refuses a NUL byte and invalid UTF-8 anywhere in a text value, with a data
// error that fails the whole statement: an error text quoting a bad value, or one cut in the
// middle of a character, would then fail the transaction that was meant to record it, and a
// sink settling its batch would retry the same batch forever.
package pgtext

import (
	"strings"
	"unicode/utf8"
)

// Ellipsis marks a text that was cut.
const Ellipsis = "…"

// Clean returns s without NUL bytes, with each run of invalid UTF-8 bytes replaced by U+FFFD,
// and at most max bytes long: a longer text is cut on a character boundary and ends with
// Ellipsis. A max below len(Ellipsis) cuts without the mark; max <= 0 means no limit.
func Clean(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, string(utf8.RuneError))
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if max <= 0 || len(s) <= max {
		return s
	}
	mark := Ellipsis
	if max < len(mark) {
		mark = ""
	}
	return cut(s, max-len(mark)) + mark
}

// cut returns the longest prefix of s, a valid UTF-8 string, that is at most n bytes long
// and does not end inside a character.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

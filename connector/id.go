package connector

// MaxIDLen is the longest id Appwrite allows: 36 characters on SQL-backed servers, 255 on
// MongoDB-backed ones. It also keeps a ledger key far below Postgres' limit for an index
// entry (about 2,700 bytes), which a longer id would exceed and fail its whole group commit.
const MaxIDLen = 255

// IDPattern is the regular expression of an Appwrite id (database, table or row), without
// anchors or the length limit, for building larger patterns. It allows '.', which is why an
// event string cannot be split on dots.
const IDPattern = `[A-Za-z0-9][A-Za-z0-9._-]*`

// ValidID reports whether s is a well-formed Appwrite id: IDPattern, 1 to MaxIDLen bytes.
func ValidID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

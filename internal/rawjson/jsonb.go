package rawjson

// JSONBHolds reports whether Postgres's jsonb accepts a valid JSON text (json.Valid and valid
// UTF-8 are the caller's to check): jsonb refuses the escape \u0000 and a \u surrogate escape
// that is not half of a pair, both of which JSON allows.
func JSONBHolds(text []byte) bool {
	for i := 0; i < len(text); i++ {
		if text[i] != '\\' {
			continue
		}
		if i+1 >= len(text) || text[i+1] != 'u' {
			i++ // a two-character escape: skip the escaped character
			continue
		}
		switch c := hex4(text[i:]); {
		case c <= 0, c >= 0xDC00 && c <= 0xDFFF:
			return false
		case c >= 0xD800 && c <= 0xDBFF:
			if lo := hex4(text[i+6:]); lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 11
		default:
			i += 5
		}
	}
	return true
}

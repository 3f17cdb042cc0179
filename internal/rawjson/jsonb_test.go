package rawjson

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJSONBHolds(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]bool{
		`{"a":"plain","b":1}`:               true,
		`{"a":"\u00e9\n\"\\"}`:              true,
		`{"a":"\ud83d\ude00"}`:              true,  // a surrogate pair
		`{"a":"\\u0000"}`:                   true,  // an escaped backslash, then the text u0000
		`{"a":"\u0000"}`:                    false, // jsonb refuses NUL
		`{"a":"x\u0000y"}`:                  false,
		`{"a":"\ud83d"}`:                    false, // a high surrogate alone
		`{"a":"\ud83d\u0041"}`:              false, // followed by no low surrogate
		`{"a":"\ude00"}`:                    false, // a low surrogate alone
		`{"a":"\ud83d\ude00","b":"\u0000"}`: false,
	} {
		require.Equal(t, want, JSONBHolds([]byte(text)), text)
	}
}

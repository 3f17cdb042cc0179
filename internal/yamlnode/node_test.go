package yamlnode

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExpandEnv(t *testing.T) {
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"A": "1", "EMPTY": ""}[k]
		return v, ok
	}
	cases := []struct {
		in, out string
		missing []string
	}{
		{"plain", "plain", nil},
		{"${A}", "1", nil},
		{"x${A}y${A}", "x1y1", nil},
		{"${B:-def}", "def", nil},
		{"${EMPTY:-def}", "def", nil},
		{"${EMPTY}", "", nil},
		{"${B}", "", []string{"B"}},
		{"$${A}", "${A}", nil},
		{"${unterminated", "${unterminated", nil},
	}
	for _, c := range cases {
		out, missing, _ := ExpandEnv(c.in, env)
		require.Equal(t, c.out, out, c.in)
		require.Equal(t, c.missing, missing, c.in)
	}
}

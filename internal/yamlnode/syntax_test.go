package yamlnode

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// Each document has its syntax error on line 2 (the last one on line 3); yaml/v3 alone
// reported most of them one line early.
func TestYAMLSyntaxErrorLine(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"unclosed flow sequence": "listen: \":8080\"\ntables: [posts, authors\n",
		"unclosed flow mapping":  "listen: \":8080\"\nadmin: {listen: x\n",
		"unclosed quote":         "listen: \":8080\"\nadmin: \"open\n",
		"tab indentation":        "listen: \":8080\"\n\tadmin: x\n",
		"list item in a mapping": "listen: \":8080\"\n- admin\n",
		"nested colon":           "listen: \":8080\"\nadmin: listen: x\n",
		"reserved character":     "listen: \":8080\"\nadmin: @x\n",
		"bad indentation":        "admin:\n   listen: x\n  token: y\n",
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var n yaml.Node
			err := yaml.Unmarshal([]byte(src), &n)
			require.Error(t, err)
			ce := YAMLSyntaxError("config.yaml", []byte(src), err)
			want := 2
			if name == "bad indentation" {
				want = 3
			}
			require.Equal(t, want, ce.Line, "%s (yaml/v3 said: %v)", ce.Error(), err)
			require.Contains(t, ce.Error(), fmt.Sprintf("config.yaml:%d: not valid YAML: ", want))
		})
	}
}

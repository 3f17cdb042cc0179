package yamlnode

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

type testSection struct {
	Name    string        `yaml:"name"`
	Secret  string        `yaml:"secret" redact:"hide"`
	Size    int           `yaml:"size" check:"positive"`
	Big     int64         `yaml:"big"`
	Wait    time.Duration `yaml:"wait"`
	On      bool          `yaml:"on"`
	List    []string      `yaml:"list"`
	Custom  string        `yaml:"custom" decode:"upper"`
	Ignored string        // no tag: not a key
	_       struct{}      `yaml:"raw"`
	Inner   struct {
		Depth int `yaml:"depth"`
	} `yaml:"inner"`
}

var testHooks = Hooks{
	Redact: map[string]func(string) string{"hide": func(string) string { return "<hidden>" }},
	Check: map[string]func(any) (string, string){"positive": func(v any) (string, string) {
		if v.(int) <= 0 {
			return "must be positive", "use a positive number"
		}
		return "", ""
	}},
	Decode: map[string]func(*Node, *yaml.Node, string, any){"upper": func(d *Node, n *yaml.Node, path string, dst any) {
		*dst.(*string) = strings.ToUpper(d.String(n, path))
	}},
}

func decodeText(t *testing.T, text string, env map[string]string) (testSection, *Node, []Field) {
	t.Helper()
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(text), &root))
	d := NewNode("t.yaml", &root, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	s := testSection{Name: "default", Size: 7}
	extra := d.Decode(root.Content[0], "", &s, testHooks)
	return s, d, extra
}

// The keys are the struct tags: values of every supported type are decoded, absent keys keep
// their defaults, a blank field's key is handed back, ${VAR} is expanded per value.
func TestDecodeFillsTaggedFields(t *testing.T) {
	t.Parallel()
	s, d, extra := decodeText(t, `
secret: s
big: 1_000
wait: 250ms
on: yes
list: [a, b]
custom: abc
raw: {anything: 1}
inner: {depth: 3}
size: ${SIZE}
`, map[string]string{"SIZE": "12"})
	require.Empty(t, d.Errs)
	require.Equal(t, "default", s.Name, "an absent key keeps its default")
	require.Equal(t, "s", s.Secret)
	require.Equal(t, 12, s.Size)
	require.Equal(t, int64(1000), s.Big)
	require.Equal(t, 250*time.Millisecond, s.Wait)
	require.True(t, s.On)
	require.Equal(t, []string{"a", "b"}, s.List)
	require.Equal(t, "ABC", s.Custom)
	require.Equal(t, 3, s.Inner.Depth)
	require.Len(t, extra, 1)
	require.Equal(t, "raw", extra[0].Path)
}

// Strict: an unknown key (a field without a tag included) is an error with a did-you-mean
// and the known keys in field order; checks and type errors name line, path and fix; a
// redacted value is never shown.
func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	_, d, _ := decodeText(t, `nmae: x
ignored: y
size: 0
secret: [1]
inner: {dept: 1}
wait: soon
`, nil)
	msg := d.Errs.Error()
	require.Contains(t, msg, `t.yaml:1: nmae: unknown key "nmae"; did you mean "name"? (known keys: name, secret, size, big, wait, on, list, custom, raw, inner)`)
	require.Contains(t, msg, `t.yaml:2: ignored: unknown key "ignored"`)
	require.Contains(t, msg, `t.yaml:3: size: must be positive (got "0"); use a positive number`)
	require.Contains(t, msg, `t.yaml:5: inner.dept: unknown key "dept"; did you mean "depth"?`)
	require.Contains(t, msg, `t.yaml:6: wait: must be a non-negative duration (got "soon")`)
	_, d, _ = decodeText(t, "secret: ${S}\nsize: ${S}\n", map[string]string{"S": "hunter2"})
	require.NotContains(t, d.Errs.Error(), "hunter2")
	_, d, _ = decodeText(t, "secret: 5\nsize: [x]\n", nil)
	require.NotContains(t, d.Errs.Error(), `"5"`)
}

// An unset variable is reported once: no second error (a failed check) at the same path.
func TestDecodeUnsetVariableReportedOnce(t *testing.T) {
	t.Parallel()
	_, d, _ := decodeText(t, "size: ${NOPE}\n", nil)
	require.Len(t, d.Errs, 1)
	require.Contains(t, d.Errs[0].Problem, "environment variable NOPE is not set")
}

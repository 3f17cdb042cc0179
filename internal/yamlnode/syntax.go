package yamlnode

import (
	"errors"
	"github.com/appwrite-sync/appwrite-sync/connector"
	"regexp"
	"strconv"
	"strings"

	goyaml "github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// YAMLSyntaxError turns a syntax error of go.yaml.in/yaml/v3 on data into a connector.ConfigError at the
// line where the problem is. yaml/v3 reports the line where the enclosing construct began, and
// for parser (not scanner) errors counts it from 0, so an unclosed `[` or a bad indent on line
// 2 shows up as line 1. The file is parsed again with goccy/go-yaml (already linked in, by
// gin), whose errors carry the position of the offending token. Neither line is ever past the
// problem, so the later one is the better: its parser's message goes with it.
func YAMLSyntaxError(file string, data []byte, err error) connector.ConfigError {
	ce := connector.ConfigError{File: file, Problem: err.Error(), Fix: "check indentation and quoting"}
	if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
		ce.Line, _ = strconv.Atoi(m[1])
		ce.Problem = m[2]
	} else {
		ce.Problem = strings.TrimPrefix(ce.Problem, "yaml: ")
	}
	var se *goyaml.SyntaxError
	if _, gerr := parser.ParseBytes(data, 0); errors.As(gerr, &se) && se.Token != nil && se.Token.Position != nil {
		if line := se.Token.Position.Line; line > ce.Line {
			ce.Line, ce.Problem = line, se.Message
		}
	}
	ce.Problem = "not valid YAML: " + ce.Problem
	return ce
}

package mapping

import (
	"fmt"
	"strconv"
	"strings"
)

// path is a compiled source path into a row: dotted segments that walk nested relationship
// objects, index arrays by number, and fan out over to-many arrays.
type path struct {
	raw  string
	segs []string
	// idx[i] is segment i as an array index, or -1.
	idx []int
	// joined[i][k] is strings.Join(segs[i:i+k+2], "."): the keys tried when segment i is
	// not a key of the object, because Appwrite column keys may themselves contain dots.
	joined [][]string
}

// compilePath parses a dotted source path such as "author.name", "comments.body" or
// "$createdAt".
func compilePath(s string) (path, error) {
	if s == "" {
		return path{}, fmt.Errorf("empty path")
	}
	segs := strings.Split(s, ".")
	p := path{raw: s, segs: segs, idx: make([]int, len(segs)), joined: make([][]string, len(segs))}
	for i, seg := range segs {
		if seg == "" {
			return path{}, fmt.Errorf("path %q has an empty segment", s)
		}
		p.idx[i] = -1
		if n, err := strconv.Atoi(seg); err == nil && n >= 0 && seg == strconv.Itoa(n) {
			p.idx[i] = n
		}
		for j := i + 2; j <= len(segs); j++ {
			p.joined[i] = append(p.joined[i], strings.Join(segs[i:j], "."))
		}
	}
	return p, nil
}

// get resolves the path in v. ok is false when the path is missing (an absent key, an index
// past the end, a scalar where an object was expected); an explicit JSON null returns
// (nil, true). Callers treat both as null.
func (p *path) get(v any) (any, bool) {
	if r, ok := v.(Row); ok {
		v = map[string]any(r)
	}
	return p.resolve(v, 0)
}

func (p *path) resolve(cur any, i int) (any, bool) {
	for i < len(p.segs) {
		switch c := cur.(type) {
		case map[string]any:
			if len(p.joined[i]) == 0 { // last segment: no dotted key to try
				x, ok := c[p.segs[i]]
				return x, ok
			}
			if x, ok := c[p.segs[i]]; ok {
				if v, ok := p.resolve(x, i+1); ok {
					return v, true
				}
			}
			for k, key := range p.joined[i] {
				if x, ok := c[key]; ok {
					if v, ok := p.resolve(x, i+k+2); ok {
						return v, true
					}
				}
			}
			return nil, false
		case []any:
			if n := p.idx[i]; n >= 0 {
				if n >= len(c) {
					return nil, false
				}
				cur = c[n]
				i++
				continue
			}
			return p.fanOut(c, i), true
		default:
			return nil, false
		}
	}
	return cur, true
}

// fanOut resolves the rest of the path in every element of a to-many array. Missing and null
// results are left out; list results are spliced in, so the result is always a flat list.
func (p *path) fanOut(list []any, i int) []any {
	out := make([]any, 0, len(list))
	for _, e := range list {
		v, ok := p.resolve(e, i)
		if !ok || v == nil {
			continue
		}
		if l, isList := v.([]any); isList {
			out = append(out, l...)
			continue
		}
		out = append(out, v)
	}
	return out
}

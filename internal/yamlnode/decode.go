package yamlnode

import (
	"fmt"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"
)

// Hooks name what a struct tag asks for beyond decoding a plain value:
//
//	`yaml:"key"`            the key, spelled only here; a field without a yaml tag is not decoded
//	`redact:"name"`         messages show the written value through Redact[name]
//	`check:"name"`          Check[name] accepts the decoded value or says what is wrong
//	`decode:"name"`         Decode[name] decodes the value itself (lists of mappings, units)
//
// A blank field (_ struct{} with a yaml tag) is a key the caller decodes: Decode returns it.
type Hooks struct {
	Redact map[string]func(string) string
	// Check returns the problem and its fix when v (the decoded value) is not accepted.
	Check map[string]func(v any) (problem, fix string)
	// Decode decodes n into dst, a pointer to the field, recording its own errors.
	Decode map[string]func(d *Node, n *yaml.Node, path string, dst any)
}

var durationType = reflect.TypeFor[time.Duration]()

// Decode decodes mapping node n into the struct dst points to, strictly: a key no field is
// tagged with is an error with a did-you-mean, every problem is recorded with its line and
// path, and a key absent from the file leaves its field as it was (its default). Nested
// structs are nested mappings. Supported field types: string, bool, int, int64,
// time.Duration, []string, structs, and anything with a decode hook. It returns the keys of
// blank fields, for the caller to decode.
func (d *Node) Decode(n *yaml.Node, path string, dst any, h Hooks) []Field {
	v := reflect.ValueOf(dst).Elem()
	t := v.Type()
	var keys []string
	index := map[string]int{}
	for i := range t.NumField() {
		key := t.Field(i).Tag.Get("yaml")
		if key == "" || key == "-" {
			continue
		}
		keys = append(keys, key)
		index[key] = i
	}
	var extra []Field
	for _, f := range d.Fields(n, path, keys...) {
		sf := t.Field(index[f.Key])
		if sf.Name == "_" {
			extra = append(extra, f)
			continue
		}
		d.decodeField(f, sf, v.Field(index[f.Key]), h)
	}
	return extra
}

func (d *Node) decodeField(f Field, sf reflect.StructField, fv reflect.Value, h Hooks) {
	if name := sf.Tag.Get("redact"); name != "" {
		d.Redact(f.Value, mustHook(h.Redact, name, sf))
	}
	if name := sf.Tag.Get("decode"); name != "" {
		mustHook(h.Decode, name, sf)(d, f.Value, f.Path, fv.Addr().Interface())
		return
	}
	ok := true
	switch {
	case sf.Type == durationType:
		var dur time.Duration
		if dur, ok = d.Duration(f.Value, f.Path); ok {
			fv.SetInt(int64(dur))
		}
	case sf.Type.Kind() == reflect.String:
		fv.SetString(d.String(f.Value, f.Path))
	case sf.Type.Kind() == reflect.Bool:
		fv.SetBool(d.Bool(f.Value, f.Path))
	case sf.Type.Kind() == reflect.Int || sf.Type.Kind() == reflect.Int64:
		var i int64
		if i, ok = d.Int(f.Value, f.Path); ok {
			fv.SetInt(i)
		}
	case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.String:
		fv.Set(reflect.ValueOf(d.StringList(f.Value, f.Path)))
	case sf.Type.Kind() == reflect.Struct:
		d.Decode(f.Value, f.Path, fv.Addr().Interface(), h)
		return
	default:
		panic(fmt.Sprintf("yamlnode: field %s of type %s needs a decode hook", sf.Name, sf.Type))
	}
	if name := sf.Tag.Get("check"); name != "" && ok {
		if problem, fix := mustHook(h.Check, name, sf)(fv.Interface()); problem != "" {
			d.Errorf(f.Value, f.Path, fix, "%s", problem)
		}
	}
}

// mustHook finds a named hook; a tag naming none is a programming error, caught by any test
// that decodes the key.
func mustHook[T any](hooks map[string]T, name string, sf reflect.StructField) T {
	fn, ok := hooks[name]
	if !ok {
		panic(fmt.Sprintf("yamlnode: field %s names hook %q, which is not registered", sf.Name, name))
	}
	return fn
}

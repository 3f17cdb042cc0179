package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/rawjson"
)

// payload holds the only fields Decode reads from a row: the top-level $ keys. Nested
// relationship rows carry $ keys of their own; they are not read.
type payload struct {
	ID           string
	DatabaseID   string
	TableID      string
	CollectionID string
	UpdatedAt    string
	// Sequence is $sequence as text: a JSON number on 1.8, a string on 1.9+, a UUIDv7 string
	// on MongoDB-backed servers. It is opaque, so a number keeps its exact spelling.
	Sequence string
	// Hash is the row's connector.ContentHash.
	Hash []byte
}

var errNotObject = errors.New("the payload is not a JSON object")

// readPayload validates body as one JSON object, hashes its content and reads the top-level
// $ fields of the object.
//
// The validation is the content hash: connector.ContentHash parses the whole row and accepts
// exactly what json.Valid accepts when it is an object (a fuzz test holds it to that), and
// the recorder needs the hash anyway, so no json.Valid pass parses the body a second time.
//
// Why not json.Unmarshal into a struct: it reflects over every member and decodes a second
// time after validating; it also matches keys case-insensitively. rawjson.EachMember walks the validated bytes once, handing out the
// top-level members raw; set reads only the $ keys. Unknown keys are ignored; a repeated key
// keeps its last value, like encoding/json.
func readPayload(body []byte) (payload, error) {
	var p payload
	hash, err := connector.ContentHash(body)
	if err != nil {
		if errors.Is(err, connector.ErrInvalidUTF8) {
			return p, err
		}
		if json.Valid(body) {
			return p, errNotObject
		}
		var v struct{}
		err := json.Unmarshal(body, &v) // only for encoding/json's precise syntax message
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return p, err
	}
	p.Hash = hash
	err = rawjson.EachMember(body, p.set)
	return p, err
}

// set stores the member key (raw, without quotes) = value (raw JSON) if it is one we read.
func (p *payload) set(key, value []byte) error {
	if bytes.IndexByte(key, '\\') >= 0 {
		// PHP never escapes these keys, but "\u0024id" is "$id" all the same.
		k, bad := rawjson.Unescape(nil, key)
		if bad >= 0 {
			return fmt.Errorf("invalid member name %.40q", key)
		}
		key = k
	}
	if len(key) == 0 || key[0] != '$' {
		return nil
	}
	var dst *string
	switch string(key) {
	case "$id":
		dst = &p.ID
	case "$databaseId":
		dst = &p.DatabaseID
	case "$tableId":
		dst = &p.TableID
	case "$collectionId":
		dst = &p.CollectionID
	case "$updatedAt":
		dst = &p.UpdatedAt
	case "$sequence":
		if c := value[0]; c == '-' || '0' <= c && c <= '9' {
			p.Sequence = string(value)
			return nil
		}
		dst = &p.Sequence
	default:
		return nil
	}
	s, _, err := rawjson.String(value) // null is the empty string
	if err != nil {
		if string(key) == "$sequence" {
			return fmt.Errorf("$sequence must be a number or a string, got %s", jsonKind(value))
		}
		return fmt.Errorf("%s must be a string, got %s", key, jsonKind(value))
	}
	*dst = s
	return nil
}

// jsonKind names the type of a raw JSON value, for error messages.
func jsonKind(value []byte) string {
	switch value[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '"':
		return "a string"
	}
	return "a number"
}

// Package rawjson reads and writes JSON text without decoding it into values: it cuts an
// object into its members and an array into its elements, finds where a string or a number
// ends, and unescapes and escapes strings exactly as encoding/json does.
//
// It exists for speed on the ingest path (a page of rows cut into rows, a row's few top-level
// fields read, a document written) where a full encoding/json pass per step would cost several
// times more. Its users (the content hash, the webhook and REST decoders, the mapping's row
// decoder and document encoder) hold it to encoding/json with fuzz tests.
package rawjson

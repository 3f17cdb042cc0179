package meilitest

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// drainLimit bounds how much of an oversized body is read and discarded before answering 413,
// so the client sees the answer instead of a connection reset while it is still writing.
const drainLimit = 1 << 30

// readBody reads the request body and enforces the payload limit. Meilisearch also accepts
// gzip, deflate and br bodies; the sink never compresses (it does not set meilisearch-go's
// WithContentEncoding), so the double decodes none and answers every Content-Encoding the way
// Meilisearch answers one it does not support.
func (s *Server) readBody(r *http.Request) ([]byte, *APIError) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	defer r.Body.Close()
	limit := s.opts.PayloadLimit
	tooLarge := func() *APIError {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, drainLimit))
		return apiErrorf(CodePayloadTooLarge, "The provided payload reached the size limit. The maximum accepted payload size is %s.", humanBytes(limit))
	}
	switch encoding := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); encoding {
	case "", "identity":
	default:
		return nil, apiErrorf(CodeBadRequest, "Unsupported Content-Encoding `%s`: meilitest reads identity bodies only.", encoding)
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1)); err != nil {
		return nil, apiErrorf(CodeBadRequest, "reading the request body: %v", err)
	}
	if int64(buf.Len()) > limit {
		return nil, tooLarge()
	}
	return buf.Bytes(), nil
}

// humanBytes formats a size with binary units, as Meilisearch's payload_too_large message
// does ("10 MiB", "95.37 MiB").
func humanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
	return s + " " + units[i]
}

// writeReply writes a JSON reply, never compressed: meilisearch-go decodes responses itself
// only when configured WithContentEncoding, which the sink is not.
func (s *Server) writeReply(w http.ResponseWriter, r *http.Request, rep reply) {
	h := w.Header()
	body := rep.body
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rep.status)
	_, _ = w.Write(body)
}

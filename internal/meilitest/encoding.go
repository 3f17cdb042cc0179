package meilitest

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/andybalholm/brotli"
)

// drainLimit bounds how much of an oversized body is read and discarded before answering 413,
// so the client sees the answer instead of a connection reset while it is still writing.
const drainLimit = 1 << 30

// readBody reads the request body, decompressing it per Content-Encoding (gzip, deflate, br,
// as Meilisearch accepts), and enforces the payload limit on the decompressed size.
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
	var src io.Reader = r.Body
	encoding := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch encoding {
	case "", "identity":
		if r.ContentLength > limit {
			return nil, tooLarge()
		}
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, incompletePayload(err)
		}
		src = zr
	case "deflate":
		zr, err := zlib.NewReader(r.Body)
		if err != nil {
			return nil, incompletePayload(err)
		}
		src = zr
	case "br":
		src = brotli.NewReader(r.Body)
	default:
		return nil, apiErrorf(CodeBadRequest, "Unsupported Content-Encoding `%s`: expected one of `gzip`, `deflate`, `br`.", encoding)
	}
	var buf bytes.Buffer
	if encoding == "" && r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(io.LimitReader(src, limit+1)); err != nil {
		if encoding != "" && encoding != "identity" {
			return nil, incompletePayload(err)
		}
		return nil, apiErrorf(CodeBadRequest, "reading the request body: %v", err)
	}
	if int64(buf.Len()) > limit {
		return nil, tooLarge()
	}
	return buf.Bytes(), nil
}

// incompletePayload is Meilisearch's answer to a body that does not decompress.
func incompletePayload(error) *APIError {
	return newAPIError(CodeBadRequest, "The provided payload is incomplete and cannot be parsed")
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

// negotiateEncoding picks the response compression from Accept-Encoding: the first of gzip,
// br, deflate the client accepts with the highest quality. "" means identity.
func negotiateEncoding(header string) string {
	best, bestQ := "", 0.0
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if name == "*" {
			name = "gzip"
		}
		if (name == "gzip" || name == "br" || name == "deflate") && q > bestQ {
			best, bestQ = name, q
		}
	}
	return best
}

func compress(encoding string, body []byte) ([]byte, error) {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch encoding {
	case "gzip":
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	case "deflate":
		w, _ = zlib.NewWriterLevel(&buf, zlib.BestSpeed)
	case "br":
		w = brotli.NewWriterLevel(&buf, brotli.BestSpeed)
	default:
		return nil, fmt.Errorf("unknown encoding %q", encoding)
	}
	if _, err := w.Write(body); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeReply writes a JSON reply, compressed when the client asked for it. Meilisearch
// compresses every response body, error bodies included; meilisearch-go configured with
// WithContentEncoding depends on it, since it decodes every response with its encoder.
func (s *Server) writeReply(w http.ResponseWriter, r *http.Request, rep reply) {
	h := w.Header()
	body := rep.body
	if body != nil {
		h.Set("Content-Type", "application/json")
		if enc := negotiateEncoding(r.Header.Get("Accept-Encoding")); enc != "" {
			if c, err := compress(enc, body); err == nil {
				body = c
				h.Set("Content-Encoding", enc)
				h.Add("Vary", "Accept-Encoding")
			}
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rep.status)
	_, _ = w.Write(body)
}

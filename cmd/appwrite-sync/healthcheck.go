package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// plainToTLS is what Go's HTTPS server answers to a plain HTTP request.
const plainToTLS = "Client sent an HTTP request to an HTTPS server"

// healthcheckCommand probes a URL (default /readyz on the local listener) and exits 0 on 200:
// the container image has no shell or curl, so Docker and compose healthchecks call this.
//
// With TLS on the listener: an https URL on a loopback host (127.0.0.1, ::1, localhost) is
// probed without certificate verification, since it is the process checking itself, sends no
// credential, and a real certificate does not name 127.0.0.1; other hosts are verified as
// usual. An http URL answered by an HTTPS listener is retried once as https, so the default
// URL keeps working when TLS is turned on.
func healthcheckCommand(stdout io.Writer) *cobra.Command {
	var rawURL string
	var timeout time.Duration
	cmd := command("healthcheck", "Exit 0 when the given health URL answers 200 (for container healthchecks)",
		func(cmd *cobra.Command) error {
			u, err := url.Parse(rawURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return &exitError{exitBadInput, fmt.Errorf("--url %q: write an absolute http(s) URL, e.g. http://127.0.0.1:8080/readyz", rawURL)}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			status, body, err := probe(ctx, u)
			if err == nil && u.Scheme == "http" && status == http.StatusBadRequest && bytes.Contains(body, []byte(plainToTLS)) {
				u.Scheme = "https"
				status, body, err = probe(ctx, u)
			}
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("%s answered %d: %s", u, status, body)
			}
			fmt.Fprintf(stdout, "%s\n", body)
			return nil
		})
	cmd.Flags().StringVar(&rawURL, "url", "http://127.0.0.1:8080/readyz", "URL to probe (https on a loopback host skips certificate verification)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "probe timeout")
	return cmd
}

func probe(ctx context.Context, u *url.URL) (int, []byte, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if u.Scheme == "https" && isLoopback(u) {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // self-check on loopback, no credential sent
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, body, nil
}

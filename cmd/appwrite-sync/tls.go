package main

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
)

// certCheckEvery bounds how often a listener looks at its certificate files for a renewal.
const certCheckEvery = 10 * time.Second

// serverTLS returns the TLS config of a listener: TLS 1.2 or newer, with the certificate
// re-read when its files change (cert-manager, certbot renewals) without a restart.
func serverTLS(t config.TLS, log *logrus.Entry) (*tls.Config, error) {
	r, err := newCertReloader(t.CertFile, t.KeyFile, certCheckEvery, log)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}, nil
}

// certReloader serves a key pair and reloads it when the files' size or modification time
// change, checking at most once per every (during a handshake, so an idle listener does no
// work). A pair that fails to load (say, the certificate is renewed but not yet its key) is
// logged and the previous one kept until the files change again.
type certReloader struct {
	certFile, keyFile string
	every             time.Duration
	log               *logrus.Entry
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // of the files last loaded or attempted
	checked time.Time
}

func newCertReloader(certFile, keyFile string, every time.Duration, log *logrus.Entry) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, every: every, log: log, now: time.Now}
	stamp, err := r.stampFiles()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading TLS key pair %s, %s: %w", certFile, keyFile, err)
	}
	r.cert, r.stamp, r.checked = &cert, stamp, r.now()
	return r, nil
}

func (r *certReloader) stampFiles() (string, error) {
	var b bytes.Buffer
	for _, f := range []string{r.certFile, r.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d/%d;", st.Size(), st.ModTime().UnixNano())
	}
	return b.String(), nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= r.every {
		r.checked = now
		stamp, err := r.stampFiles()
		if err == nil && stamp != r.stamp {
			r.stamp = stamp
			cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
			if err != nil {
				r.log.WithError(err).WithField("cert_file", r.certFile).Warn("TLS certificate files changed but do not load; serving the previous certificate")
			} else {
				r.cert = &cert
				r.log.WithField("cert_file", r.certFile).Info("TLS certificate reloaded")
			}
		}
	}
	return r.cert, nil
}

// pinnedTLS is the client side of a self-call (the backfill command to the admin API): it
// accepts exactly the certificate in certFile, whatever name or address the call uses (it is
// usually 127.0.0.1, which a real certificate does not name).
func pinnedTLS(certFile string) (*tls.Config, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", certFile)
	}
	leaf := block.Bytes
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Chain and name checks are replaced by the pin below.
		InsecureSkipVerify: true, //nolint:gosec
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, leaf) {
				return errors.New("the server's certificate is not the one in admin.tls.cert_file")
			}
			return nil
		},
	}, nil
}

// isLoopback reports whether the host of u is a loopback address or localhost.
func isLoopback(u *url.URL) bool {
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

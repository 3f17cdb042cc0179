// Package leaseowner names this process in the leases it takes in the state store (delivery
// leases, backfill jobs), so replicas and restarts never mistake one another's leases.
package leaseowner

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
)

// New returns "host/pid/random": the host and pid say where the holder runs for a human; the
// random part keeps two processes apart when both are equal (a restart that reuses the pid in a
// container).
func New() string {
	host, _ := os.Hostname()
	tok := make([]byte, 6)
	_, _ = rand.Read(tok)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(tok))
}

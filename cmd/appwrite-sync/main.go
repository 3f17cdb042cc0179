// Command appwrite-sync keeps Meilisearch indexes and Postgres warehouse tables in sync with
// Appwrite tables, from Appwrite's row webhooks and its REST API. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := stopSignals(context.Background())
	code := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// stopSignals returns a context cancelled at the first SIGINT or SIGTERM (serve then drains
// and shuts down gracefully) that carries a hard stop, closed at the second signal (serve then
// stops at once; see hardStop).
func stopSignals(parent context.Context) (context.Context, func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(parent)
	hard := make(chan struct{})
	done := make(chan struct{})
	go func() {
		for n := 0; ; n++ {
			select {
			case <-sigs:
			case <-done:
				return
			}
			if n == 0 {
				cancel()
				continue
			}
			close(hard)
			return
		}
	}()
	return withHardStop(ctx, hard), func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

type hardStopKey struct{}

// withHardStop attaches a channel whose closing asks for an immediate stop.
func withHardStop(ctx context.Context, hard <-chan struct{}) context.Context {
	return context.WithValue(ctx, hardStopKey{}, hard)
}

// hardStop is the channel attached by withHardStop; nil (never ready) when there is none.
func hardStop(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(hardStopKey{}).(<-chan struct{})
	return ch
}

// Package source is where read commands get recorded data: the API when
// one is configured (every machine of the team), else, or when asked for,
// this machine's local store. The choice is made here and nowhere else.
//
// When the API is configured but cannot be reached (nothing accepts a
// connection within Options.ReachWithin, 2 s by default), reads fall back
// to the local store with one notice on stderr, so a laptop offline still
// answers. An API that answers with an error (a refused key, a bad query)
// is not unreachable: that error is returned as it is.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// Source answers read queries. *store.Store and *apiclient.Client are
// Sources; the API's answers and the store's have the same shapes.
type Source interface {
	Activity(ctx context.Context, q activity.Query) (activity.Page, error)
	Stats(ctx context.Context, q stats.Query) (stats.Stats, error)
	Sessions(ctx context.Context, q activity.SessionQuery) (activity.SessionPage, error)
	// Call returns the call the event with this id is half of; an unknown
	// id is activity.ErrNotFound.
	Call(ctx context.Context, id string) (activity.Call, error)
}

// DefaultReachWithin is how long the API may take to accept a connection
// before reads fall back to the local store.
const DefaultReachWithin = 2 * time.Second

// readRetries is how often a read is retried (a 5xx, a dropped connection).
const readRetries = 1

// Options say which source to open.
type Options struct {
	// Local reads this machine's store even when an API is configured.
	Local bool
	// UserAgent names the CLI to the API.
	UserAgent string
	// ErrOut receives the notice when reads fall back to the local store.
	ErrOut io.Writer
	// ReachWithin replaces DefaultReachWithin.
	ReachWithin time.Duration
	// Client replaces the API client the configuration would make (tests).
	Client *apiclient.Client
}

// Open returns the source the configuration and opts choose. The local
// store is opened only when it is read.
func Open(ctx context.Context, c *config.Config, o Options) (Source, error) {
	client := o.Client
	if client == nil && !o.Local && c.ShippingEnabled() {
		// One retry: a person is waiting, and a refused connection should
		// fall back at once rather than after the shipper's patience.
		client = apiclient.New(c.APIURL, c.APIKey, apiclient.Options{UserAgent: o.UserAgent, RetryMax: readRetries})
	}
	if client == nil || o.Local {
		return store.OpenConfig(ctx, c)
	}
	if o.ReachWithin <= 0 {
		o.ReachWithin = DefaultReachWithin
	}
	if o.ErrOut == nil {
		o.ErrOut = io.Discard
	}
	return &Fallback{
		api:    client,
		apiURL: c.APIURL,
		reach:  o.ReachWithin,
		errOut: o.ErrOut,
		openLocal: func(ctx context.Context) (Source, error) {
			return store.OpenConfig(ctx, c)
		},
	}, nil
}

// IsRemote reports whether src reads the API (for now: it has not fallen
// back to the local store).
func IsRemote(src Source) bool {
	switch s := src.(type) {
	case *apiclient.Client:
		return true
	case *Fallback:
		return s.usingAPI()
	}
	return false
}

// Fallback reads the API until it proves unreachable, then the local store.
type Fallback struct {
	api       Source
	apiURL    string
	reach     time.Duration
	errOut    io.Writer
	openLocal func(context.Context) (Source, error)

	// reached is set once the API accepted a connection: from then on its
	// errors are reported, not taken for unreachability.
	reached atomic.Bool
	mu      sync.Mutex
	local   Source
}

var errUnreachable = errors.New("no connection")

func (f *Fallback) usingAPI() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.local == nil
}

// Activity implements Source.
func (f *Fallback) Activity(ctx context.Context, q activity.Query) (activity.Page, error) {
	return via(ctx, f, func(ctx context.Context, s Source) (activity.Page, error) { return s.Activity(ctx, q) })
}

// Stats implements Source.
func (f *Fallback) Stats(ctx context.Context, q stats.Query) (stats.Stats, error) {
	return via(ctx, f, func(ctx context.Context, s Source) (stats.Stats, error) { return s.Stats(ctx, q) })
}

// Sessions implements Source.
func (f *Fallback) Sessions(ctx context.Context, q activity.SessionQuery) (activity.SessionPage, error) {
	return via(ctx, f, func(ctx context.Context, s Source) (activity.SessionPage, error) { return s.Sessions(ctx, q) })
}

// Call implements Source.
func (f *Fallback) Call(ctx context.Context, id string) (activity.Call, error) {
	return via(ctx, f, func(ctx context.Context, s Source) (activity.Call, error) { return s.Call(ctx, id) })
}

// via asks the API, or the local store once the API proved unreachable.
func via[T any](ctx context.Context, f *Fallback, call func(context.Context, Source) (T, error)) (T, error) {
	f.mu.Lock()
	local := f.local
	f.mu.Unlock()
	if local != nil {
		return call(ctx, local)
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var connected atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	})
	if !f.reached.Load() {
		// Retries of a refused or silent connection would otherwise
		// take many seconds; a slow answer on a live connection is fine.
		t := time.AfterFunc(f.reach, func() {
			if !connected.Load() {
				cancel(errUnreachable)
			}
		})
		defer t.Stop()
	}
	v, err := call(actx, f.api)
	if connected.Load() {
		f.reached.Store(true)
	}
	if err == nil || ctx.Err() != nil || f.reached.Load() {
		return v, err
	}
	if _, answered := apiclient.AsError(err); answered {
		return v, err
	}
	why := err
	if errors.Is(context.Cause(actx), errUnreachable) {
		why = fmt.Errorf("no connection within %v", f.reach)
	}
	local, lerr := f.fallBack(ctx, why)
	if lerr != nil {
		return v, errors.Join(err, lerr)
	}
	return call(ctx, local)
}

// fallBack opens the local store once and says so once.
func (f *Fallback) fallBack(ctx context.Context, why error) (Source, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.local != nil {
		return f.local, nil
	}
	local, err := f.openLocal(ctx)
	if err != nil {
		return nil, fmt.Errorf("API unreachable, and the local store: %w", err)
	}
	fmt.Fprintf(f.errOut, "The API at %s is unreachable (%v); showing this machine's local store.\n", f.apiURL, why)
	f.local = local
	return local, nil
}

// Package apiclient is the CLI's typed client of the Kilometers API:
// ingest, activity, stats, sessions, calls and health, with the API's
// error shape decoded into *Error.
//
// Requests go through hashicorp/go-retryablehttp: connection errors, 408,
// 429 and 5xx (but 501) are retried with exponential backoff and full
// jitter, and a Retry-After header on 429 or 503 is honoured. Other answers
// come back at once.
package apiclient

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// Options tune a Client. Zero values take the defaults.
type Options struct {
	// UserAgent names the caller, e.g. "kilometers/1.2.3".
	UserAgent string
	// RetryMax is how many times one request is retried (default 4).
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the backoff between retries
	// (defaults 500ms and 30s). A Retry-After is honoured up to
	// MaxRetryAfter.
	RetryWaitMin, RetryWaitMax time.Duration
	// MaxRetryAfter caps how long a Retry-After may make a request wait
	// (default 5m).
	MaxRetryAfter time.Duration
	// Timeout bounds each attempt (default 30s).
	Timeout time.Duration
	// Logger receives retry logs at debug level (default: discard).
	Logger *slog.Logger
	// HTTPClient replaces the transport (tests).
	HTTPClient *http.Client
}

// Client calls one Kilometers API with one key.
type Client struct {
	base string
	key  string
	ua   string
	http *retryablehttp.Client
	// few is http with at most one retry (IngestEncodedFewRetries).
	few    *retryablehttp.Client
	logger *slog.Logger
}

// New returns a Client for the API at baseURL (e.g.
// https://abc.execute-api.eu-west-1.amazonaws.com) using key.
func New(baseURL, key string, o Options) *Client {
	if o.RetryMax == 0 {
		o.RetryMax = 4
	}
	if o.RetryMax < 0 {
		o.RetryMax = 0
	}
	if o.RetryWaitMin == 0 {
		o.RetryWaitMin = 500 * time.Millisecond
	}
	if o.RetryWaitMax == 0 {
		o.RetryWaitMax = 30 * time.Second
	}
	if o.MaxRetryAfter == 0 {
		o.MaxRetryAfter = 5 * time.Minute
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.UserAgent == "" {
		o.UserAgent = "kilometers"
	}
	hc := o.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 4
		hc = &http.Client{Transport: tr, Timeout: o.Timeout}
	}
	retrying := func(retries int) *retryablehttp.Client {
		return &retryablehttp.Client{
			HTTPClient:   hc,
			Logger:       o.Logger,
			RetryWaitMin: o.RetryWaitMin,
			RetryWaitMax: o.RetryWaitMax,
			RetryMax:     retries,
			CheckRetry:   RetryPolicy,
			Backoff:      BackoffPolicy(o.MaxRetryAfter),
			// Hand the last answer back so its error body can be decoded.
			ErrorHandler: retryablehttp.PassthroughErrorHandler,
		}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), key: key, ua: o.UserAgent,
		http: retrying(o.RetryMax), few: retrying(min(o.RetryMax, 1)), logger: o.Logger}
}

// RetryPolicy retries connection errors, 408, 429 and 5xx except 501, never
// after the context ends.
func RetryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
		return true, nil
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		return true, nil
	}
	return false, nil
}

// BackoffPolicy returns exponential backoff with full jitter between min and
// max that honours Retry-After (seconds or an HTTP date) on 429 and 503, up
// to maxRetryAfter.
func BackoffPolicy(maxRetryAfter time.Duration) retryablehttp.Backoff {
	return func(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
		if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
			if d, ok := RetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				return min(d, maxRetryAfter)
			}
		}
		return Jitter(lo, hi, attempt)
	}
}

// Jitter is exponential backoff with jitter: a random wait between half and
// all of min·2^attempt, capped at max.
func Jitter(lo, hi time.Duration, attempt int) time.Duration {
	ceil := float64(lo) * math.Pow(2, float64(attempt))
	if ceil > float64(hi) || math.IsInf(ceil, 0) {
		ceil = float64(hi)
	}
	half := ceil / 2
	return time.Duration(half + rand.Float64()*half)
}

// RetryAfter parses a Retry-After header: delay seconds or an HTTP date.
func RetryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(h); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// Error is an error answer of the API.
type Error struct {
	Status  int
	Code    backend.Code
	Message string
	// RetryAfter is the server's Retry-After, if it sent one.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("API answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("API answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Retryable reports whether the request may succeed later as it is.
func (e *Error) Retryable() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests ||
		(e.Status >= 500 && e.Status != http.StatusNotImplemented)
}

// Rejected reports whether the API refused what was sent (a 4xx other than
// 408 and 429 that is not about credentials or the address): sending it
// again will never work, so it must be set aside.
func (e *Error) Rejected() bool {
	if e.Status < 400 || e.Status >= 500 {
		return false
	}
	switch e.Status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return !e.Misconfigured()
}

// Misconfigured reports whether the answer says the client is set up wrong
// (bad key, wrong URL), not that the data is bad: nothing should be set
// aside for it, and the user must fix the configuration.
func (e *Error) Misconfigured() bool {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed,
		http.StatusProxyAuthRequired:
		return true
	}
	return false
}

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Health is GET /health.
type Health struct {
	Status   string `json:"status"`
	Database string `json:"database"`
}

// Health asks whether the API and its database are up (no key needed).
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.do(ctx, http.MethodGet, "/health", nil, nil, &h)
	return h, err
}

// CheckKey verifies that the API accepts the key, with the cheapest
// authorized call. A key with the ingest scope alone is accepted: the
// read it is checked with answers 403 forbidden, which proves the key
// valid (an unknown or revoked key answers 401).
func (c *Client) CheckKey(ctx context.Context) error {
	_, err := c.Activity(ctx, activity.Query{Limit: 1})
	if e, ok := AsError(err); ok && e.Code == backend.EFORBIDDEN {
		return nil
	}
	return err
}

// Ingest posts a batch to /api/events/batch, gzipped. The same events may be
// sent again safely: the API counts them as duplicates.
func (c *Client) Ingest(ctx context.Context, b *event.Batch) (backend.IngestResult, error) {
	body, err := EncodeBatch(b)
	if err != nil {
		return backend.IngestResult{}, err
	}
	return c.IngestEncoded(ctx, body)
}

// EncodeBatch returns b as gzipped JSON.
func EncodeBatch(b *event.Batch) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := json.NewEncoder(zw).Encode(b); err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// IngestEncoded posts a body made by EncodeBatch.
func (c *Client) IngestEncoded(ctx context.Context, gz []byte) (backend.IngestResult, error) {
	var r backend.IngestResult
	h := http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}
	err := c.do(ctx, http.MethodPost, "/api/events/batch", h, gz, &r)
	return r, err
}

// IngestEncodedFewRetries is IngestEncoded with one retry at most. The
// shipper uses it to narrow a failing batch down once the API has taken
// other events: a 5xx that outlasts a retry is then most likely the data's,
// and each further retry only a wait.
func (c *Client) IngestEncodedFewRetries(ctx context.Context, gz []byte) (backend.IngestResult, error) {
	var r backend.IngestResult
	h := http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}
	err := c.send(ctx, c.few, http.MethodPost, "/api/events/batch", h, gz, &r)
	return r, err
}

// Activity is GET /api/activity.
func (c *Client) Activity(ctx context.Context, q activity.Query) (activity.Page, error) {
	var p activity.Page
	err := c.do(ctx, http.MethodGet, "/api/activity?"+q.Values().Encode(), nil, nil, &p)
	if p.Events == nil {
		p.Events = []event.Event{}
	}
	return p, err
}

// Stats is GET /api/stats.
func (c *Client) Stats(ctx context.Context, q stats.Query) (stats.Stats, error) {
	var s stats.Stats
	err := c.do(ctx, http.MethodGet, "/api/stats?"+q.Values().Encode(), nil, nil, &s)
	return s, err
}

// Sessions is GET /api/sessions.
func (c *Client) Sessions(ctx context.Context, q activity.SessionQuery) (activity.SessionPage, error) {
	var p activity.SessionPage
	err := c.do(ctx, http.MethodGet, "/api/sessions?"+q.Values().Encode(), nil, nil, &p)
	if p.Sessions == nil {
		p.Sessions = []activity.SessionRow{}
	}
	return p, err
}

// Call is GET /api/events/{id}: the call the event is half of. A 404 is
// activity.ErrNotFound (wrapped with the API's answer).
func (c *Client) Call(ctx context.Context, id string) (activity.Call, error) {
	var call activity.Call
	err := c.do(ctx, http.MethodGet, "/api/events/"+url.PathEscape(id), nil, nil, &call)
	if e, ok := AsError(err); ok && e.Status == http.StatusNotFound {
		return call, fmt.Errorf("event %s: %w (%w)", id, activity.ErrNotFound, e)
	}
	return call, err
}

// do sends one request (with retries) and decodes a 2xx answer into out or
// an error answer into *Error.
func (c *Client) do(ctx context.Context, method, path string, h http.Header, body []byte, out any) error {
	return c.send(ctx, c.http, method, path, h, body, out)
}

// send is do with the given retrying client.
func (c *Client) send(ctx context.Context, rc *retryablehttp.Client, method, path string, h http.Header, body []byte, out any) error {
	var rb any
	if body != nil {
		rb = body
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, c.base+path, rb)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := rc.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", method, redactPath(path), ctx.Err())
		}
		return fmt.Errorf("%s %s: %w", method, c.base+redactPath(path), unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, backend.MaxBodyBytes*2))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, redactPath(path), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, redactPath(path), err)
	}
	return nil
}

func decodeError(resp *http.Response, data []byte) *Error {
	e := &Error{Status: resp.StatusCode}
	var body struct {
		Error struct {
			Code    backend.Code `json:"code"`
			Message string       `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	} else {
		e.Message = strings.TrimSpace(string(data[:min(len(data), 200)]))
	}
	if d, ok := RetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = d
	}
	return e
}

// unwrapURLError drops url.Error's repetition of method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func redactPath(p string) string {
	path, _, _ := strings.Cut(p, "?")
	return path
}

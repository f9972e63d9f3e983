package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// The answers the smoke test reads, declared here with the field names the
// API documents (docs/api.md) rather than borrowed from the server's Go
// types, so a renamed field fails the smoke test instead of passing both
// sides silently.
type (
	healthAnswer struct {
		Status   string `json:"status"`
		Database string `json:"database"`
	}
	tenantAnswer struct {
		TenantID string `json:"tenant_id"`
		APIKey   string `json:"api_key"`
	}
	keyAnswer struct {
		KeyID  string `json:"key_id"`
		APIKey string `json:"api_key"`
	}
	revokeAnswer struct {
		Revoked bool `json:"revoked"`
	}
	ingestAnswer struct {
		Accepted   *int `json:"accepted"`
		Duplicates *int `json:"duplicates"`
	}
	activityAnswer struct {
		Events []struct {
			ID  string `json:"id"`
			Seq int64  `json:"seq"`
		} `json:"events"`
	}
	statsAnswer struct {
		Totals struct {
			Events   int64 `json:"events"`
			Requests int64 `json:"requests"`
			Errors   int64 `json:"errors"`
			Sessions int64 `json:"sessions"`
		} `json:"totals"`
		Tools []struct {
			Tool   string `json:"tool"`
			Calls  int64  `json:"calls"`
			Errors int64  `json:"errors"`
		} `json:"tools"`
	}
)

// smokeTool is the tool the smoke batch calls; unlikely to collide with a
// real one in the tenant's stats.
const smokeTool = "kilometers_smoke_echo"

// Run performs the checks in order and returns the first failure.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tenant == "" {
		cfg.Tenant = "smoke-" + cfg.Now().UTC().Format("20060102T150405Z")
	}
	s := &smoke{cfg: cfg}
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"health", s.health},
		{"create tenant", s.createTenant},
		{"data routes need a key", s.needsKey},
		{"ingest batch", s.ingest},
		{"ingest again gzipped (all duplicates)", s.ingestAgain},
		{"activity", s.activity},
		{"stats", s.stats},
		{"create and revoke a second key", s.revoke},
	}
	start := time.Now()
	for _, st := range steps {
		t := time.Now()
		if err := st.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		fmt.Fprintf(cfg.Out, "ok   %-40s %6d ms\n", st.name, time.Since(t).Milliseconds())
	}
	fmt.Fprintf(cfg.Out, "smoke: %s passed %d checks in %.1fs (tenant %s, %s)\n",
		cfg.URL, len(steps), time.Since(start).Seconds(), cfg.Tenant, s.tenantID)
	return nil
}

type smoke struct {
	cfg      Config
	tenantID string
	key      string
	batch    event.Batch
}

// call sends one request and decodes a JSON answer into out when the status
// is want. body is JSON-encoded unless it is already []byte.
func (s *smoke) call(ctx context.Context, method, path, bearer string, body any, hdr http.Header, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				return fmt.Errorf("encode request: %w", err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.cfg.URL+path, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return &statusError{Method: method, Path: path, Status: resp.StatusCode, Want: want, Body: excerpt(raw)}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: answer is not the expected JSON (%v): %s", method, path, err, excerpt(raw))
		}
	}
	return nil
}

// statusError is an answer with an unexpected status.
type statusError struct {
	Method, Path string
	Status, Want int
	Body         string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: status %d, want %d: %s", e.Method, e.Path, e.Status, e.Want, e.Body)
}

func excerpt(b []byte) string {
	const max = 300
	b = bytes.TrimSpace(b)
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// health polls /health until it answers ok or cfg.Wait runs out: right after
// a deploy the first requests pay a cold start and a database connection.
func (s *smoke) health(ctx context.Context) error {
	deadline := time.Now().Add(s.cfg.Wait)
	for {
		var h healthAnswer
		err := s.call(ctx, http.MethodGet, "/health", "", nil, nil, http.StatusOK, &h)
		if err == nil && (h.Status != "ok" || h.Database != "ok") {
			err = fmt.Errorf("GET /health: %+v, want status ok and database ok", h)
		}
		if err == nil {
			return nil
		}
		if time.Now().Add(2 * time.Second).After(deadline) {
			return fmt.Errorf("not ok after %s: %w", s.cfg.Wait, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

func (s *smoke) createTenant(ctx context.Context) error {
	var a tenantAnswer
	if err := s.call(ctx, http.MethodPost, "/api/admin/tenants", s.cfg.AdminToken,
		map[string]string{"name": s.cfg.Tenant}, nil, http.StatusCreated, &a); err != nil {
		return err
	}
	if a.TenantID == "" || a.APIKey == "" {
		return fmt.Errorf("answer lacks tenant_id or api_key: %+v", a)
	}
	s.tenantID, s.key = a.TenantID, a.APIKey
	return nil
}

func (s *smoke) needsKey(ctx context.Context) error {
	for _, path := range []string{"/api/stats", "/api/activity"} {
		if err := s.call(ctx, http.MethodGet, path, "", nil, nil, http.StatusUnauthorized, nil); err != nil {
			return err
		}
	}
	return nil
}

// newBatch is one session of four events: a successful tools/call, a failed
// one (JSON-RPC error), each with its response.
func newBatch(now time.Time) (event.Batch, error) {
	ids := make([]string, 5)
	for i := range ids {
		id, err := uuid.NewV7()
		if err != nil {
			return event.Batch{}, fmt.Errorf("event id: %w", err)
		}
		ids[i] = id.String()
	}
	session := ids[0]
	start := now.Add(-10 * time.Second).UTC()
	latency := 12.5
	code := -32602
	ok := false
	ev := func(i int, dir event.Direction, kind event.Kind, rpc string) event.Event {
		return event.Event{
			ID: ids[i], SessionID: session, Seq: int64(i), TS: start.Add(time.Duration(i) * time.Second),
			Direction: dir, Kind: kind, Server: "smoke", RPCID: rpc, Method: "tools/call", Tool: smokeTool, Size: 100,
		}
	}
	e1 := ev(1, event.ClientToServer, event.KindRequest, "1")
	e2 := ev(2, event.ServerToClient, event.KindResponse, "1")
	e2.LatencyMS, e2.IsError = &latency, &ok
	e3 := ev(3, event.ClientToServer, event.KindRequest, "2")
	e4 := ev(4, event.ServerToClient, event.KindError, "2")
	e4.LatencyMS, e4.ErrorCode = &latency, &code
	return event.Batch{
		Sessions: []event.Session{{ID: session, Server: "smoke", ClientName: "kilometers-smoke", StartedAt: start}},
		Events:   []event.Event{e1, e2, e3, e4},
	}, nil
}

func (s *smoke) ingest(ctx context.Context) error {
	b, err := newBatch(s.cfg.Now())
	if err != nil {
		return err
	}
	s.batch = b
	var a ingestAnswer
	if err := s.call(ctx, http.MethodPost, "/api/events/batch", s.key, b, nil, http.StatusOK, &a); err != nil {
		return err
	}
	return wantCounts(a, len(b.Events), 0)
}

func (s *smoke) ingestAgain(ctx context.Context) error {
	raw, err := json.Marshal(s.batch)
	if err != nil {
		return fmt.Errorf("encode batch: %w", err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw); err != nil {
		return fmt.Errorf("gzip batch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gzip batch: %w", err)
	}
	var a ingestAnswer
	hdr := http.Header{"Content-Encoding": {"gzip"}}
	if err := s.call(ctx, http.MethodPost, "/api/events/batch", s.key, gz.Bytes(), hdr, http.StatusOK, &a); err != nil {
		return err
	}
	return wantCounts(a, 0, len(s.batch.Events))
}

func wantCounts(a ingestAnswer, accepted, duplicates int) error {
	if a.Accepted == nil || a.Duplicates == nil {
		return errors.New("answer lacks accepted or duplicates")
	}
	if *a.Accepted != accepted || *a.Duplicates != duplicates {
		return fmt.Errorf("accepted %d, duplicates %d; want %d and %d", *a.Accepted, *a.Duplicates, accepted, duplicates)
	}
	return nil
}

func (s *smoke) activity(ctx context.Context) error {
	q := url.Values{"session": {s.batch.Sessions[0].ID}, "limit": {"100"}}
	var a activityAnswer
	if err := s.call(ctx, http.MethodGet, "/api/activity?"+q.Encode(), s.key, nil, nil, http.StatusOK, &a); err != nil {
		return err
	}
	var want, got []string
	for i := len(s.batch.Events) - 1; i >= 0; i-- { // newest first
		want = append(want, s.batch.Events[i].ID)
	}
	for _, e := range a.Events {
		got = append(got, e.ID)
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("events %v, want %v (newest first)", got, want)
	}
	return nil
}

func (s *smoke) stats(ctx context.Context) error {
	var a statsAnswer
	if err := s.call(ctx, http.MethodGet, "/api/stats", s.key, nil, nil, http.StatusOK, &a); err != nil {
		return err
	}
	// A new tenant holds exactly the smoke batch.
	t := a.Totals
	if t.Events != 4 || t.Requests != 2 || t.Errors != 1 || t.Sessions != 1 {
		return fmt.Errorf("totals events=%d requests=%d errors=%d sessions=%d; want 4, 2, 1, 1",
			t.Events, t.Requests, t.Errors, t.Sessions)
	}
	for _, tool := range a.Tools {
		if tool.Tool == smokeTool {
			if tool.Calls != 2 || tool.Errors != 1 {
				return fmt.Errorf("tool %s: calls %d, errors %d; want 2 and 1", smokeTool, tool.Calls, tool.Errors)
			}
			return nil
		}
	}
	return fmt.Errorf("tools lacks %s: %+v", smokeTool, a.Tools)
}

func (s *smoke) revoke(ctx context.Context) error {
	var k keyAnswer
	if err := s.call(ctx, http.MethodPost, "/api/admin/tenants/"+url.PathEscape(s.tenantID)+"/keys",
		s.cfg.AdminToken, nil, nil, http.StatusCreated, &k); err != nil {
		return err
	}
	if k.KeyID == "" || k.APIKey == "" {
		return fmt.Errorf("answer lacks key_id or api_key: %+v", k)
	}
	if err := s.call(ctx, http.MethodGet, "/api/stats", k.APIKey, nil, nil, http.StatusOK, nil); err != nil {
		return fmt.Errorf("new key: %w", err)
	}
	var r revokeAnswer
	if err := s.call(ctx, http.MethodDelete, "/api/admin/keys/"+url.PathEscape(k.KeyID),
		s.cfg.AdminToken, nil, nil, http.StatusOK, &r); err != nil {
		return err
	}
	if !r.Revoked {
		return fmt.Errorf("DELETE /api/admin/keys/%s: revoked is false", k.KeyID)
	}
	if err := s.call(ctx, http.MethodGet, "/api/stats", k.APIKey, nil, nil, http.StatusUnauthorized, nil); err != nil {
		return fmt.Errorf("revoked key: %w", err)
	}
	return nil
}

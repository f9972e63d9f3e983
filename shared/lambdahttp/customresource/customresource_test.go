package customresource_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/kilometers-ai/kilometers/shared/lambdahttp/customresource"
)

// responseURL records the replies PUT to CloudFormation's pre-signed URL.
type responseURL struct {
	*httptest.Server
	status int

	mu      sync.Mutex
	replies []cfn.Response
	header  http.Header
}

func newResponseURL(t *testing.T, status int) *responseURL {
	s := &responseURL{status: status}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var resp cfn.Response
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPut || json.Unmarshal(b, &resp) != nil {
			http.Error(w, "bad reply", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.replies = append(s.replies, resp)
		s.header = r.Header.Clone()
		s.mu.Unlock()
		w.WriteHeader(s.status)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *responseURL) only(t *testing.T) (cfn.Response, http.Header) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.replies) != 1 {
		t.Fatalf("%d replies, want 1", len(s.replies))
	}
	return s.replies[0], s.header
}

func payload(t *testing.T, requestType cfn.RequestType, url, physicalID string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(cfn.Event{
		RequestType: requestType, RequestID: "r1", ResponseURL: url, ResourceType: "Custom::Migrations",
		LogicalResourceID: "Migrations", StackID: "stack", PhysicalResourceID: physicalID,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var logger = slog.New(slog.DiscardHandler)

func TestCustomResource(t *testing.T) {
	long := strings.Repeat("x", 3000)
	for _, tc := range []struct {
		name        string
		requestType cfn.RequestType
		physicalID  string
		actionErr   error
		wantRun     bool
		wantStatus  cfn.StatusType
		wantPhys    string
		wantReason  string
		wantResult  string
	}{
		{"create runs", cfn.RequestCreate, "", nil, true, cfn.StatusSuccess, customresource.PhysicalResourceID, "", "ok"},
		{"update keeps the physical id", cfn.RequestUpdate, "existing", nil, true, cfn.StatusSuccess, "existing", "", "ok"},
		{"delete leaves the database alone", cfn.RequestDelete, "existing", errors.New("must not run"), false, cfn.StatusSuccess, "existing", "", "ok"},
		{"failure is replied", cfn.RequestCreate, "", errors.New("migrate: relation exists"), true, cfn.StatusFailed, customresource.PhysicalResourceID, "migrate: relation exists (see the function's logs)", "failed"},
		{"long failure is cut", cfn.RequestUpdate, "", errors.New(long), true, cfn.StatusFailed, customresource.PhysicalResourceID, long[:1000] + "...", "failed"},
		{"unknown request type", "Frobnicate", "", nil, false, cfn.StatusFailed, customresource.PhysicalResourceID, `unknown RequestType "Frobnicate"`, "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newResponseURL(t, http.StatusOK)
			ran := false
			h := customresource.Handler(func(context.Context) error { ran = true; return tc.actionErr }, nil, logger)
			res, err := h(context.Background(), payload(t, tc.requestType, srv.URL+"/signed?X-Amz-Signature=s", tc.physicalID))
			if err != nil || res.Status != tc.wantResult {
				t.Fatalf("result %+v, %v; want %q", res, err, tc.wantResult)
			}
			if ran != tc.wantRun {
				t.Errorf("action ran = %v, want %v", ran, tc.wantRun)
			}
			reply, header := srv.only(t)
			if reply.Status != tc.wantStatus || reply.PhysicalResourceID != tc.wantPhys || !strings.Contains(reply.Reason, tc.wantReason) ||
				reply.RequestID != "r1" || reply.LogicalResourceID != "Migrations" || reply.StackID != "stack" {
				t.Errorf("reply = %+v", reply)
			}
			if len(reply.Reason) > 1100 {
				t.Errorf("reason of %d bytes; CloudFormation keeps 4 KB of the whole reply", len(reply.Reason))
			}
			if ct := header.Get("Content-Type"); ct != "" {
				t.Errorf("reply sent Content-Type %q; the pre-signed URL's signature covers none", ct)
			}
		})
	}
}

func TestCustomResourceReplyRefused(t *testing.T) {
	srv := newResponseURL(t, http.StatusForbidden)
	h := customresource.Handler(func(context.Context) error { return nil }, nil, logger)
	if _, err := h(context.Background(), payload(t, cfn.RequestCreate, srv.URL, "")); err == nil || !strings.Contains(err.Error(), "reply to CloudFormation") {
		t.Errorf("refused reply: %v, want an invocation error", err)
	}
}

func TestCustomResourceRunsOutOfTime(t *testing.T) {
	srv := newResponseURL(t, http.StatusOK)
	// The action gets the invocation's deadline less the reply margin, so it
	// is cut off while there is still time to tell CloudFormation.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second+200*time.Millisecond)
	defer cancel()
	h := customresource.Handler(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, nil, logger)
	res, err := h(ctx, payload(t, cfn.RequestCreate, srv.URL, ""))
	if err != nil || res.Status != "failed" {
		t.Fatalf("result %+v, %v", res, err)
	}
	if reply, _ := srv.only(t); reply.Status != cfn.StatusFailed || !strings.Contains(reply.Reason, "ran out of time") {
		t.Errorf("reply = %+v", reply)
	}
	if ctx.Err() != nil {
		t.Error("the reply was sent after the invocation's deadline")
	}
}

func TestDirectInvoke(t *testing.T) {
	for _, p := range []string{"", "{}", `{"anything":1}`, `"text"`} {
		h := customresource.Handler(func(context.Context) error { return nil }, nil, logger)
		if res, err := h(context.Background(), json.RawMessage(p)); err != nil || res.Status != "ok" {
			t.Errorf("direct invoke %q: %+v, %v", p, res, err)
		}
	}
	h := customresource.Handler(func(context.Context) error { return errors.New("db down") }, nil, logger)
	if _, err := h(context.Background(), json.RawMessage(`{}`)); err == nil || err.Error() != "db down" {
		t.Errorf("failing direct invoke: %v", err)
	}
	if _, err := h(context.Background(), json.RawMessage(`{"RequestType": 5}`)); err == nil || !strings.Contains(err.Error(), "decode event") {
		t.Errorf("malformed event: %v", err)
	}
}

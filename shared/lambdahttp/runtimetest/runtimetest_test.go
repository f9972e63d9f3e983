package runtimetest_test

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/lambdahttp/runtimetest"
)

// fakeFunction plays the function's side of the Runtime API with plain
// HTTP calls, so the harness is checked against the protocol itself.
type fakeFunction struct {
	t    *testing.T
	base string
}

func (f fakeFunction) next() (id string, header http.Header, payload string) {
	f.t.Helper()
	resp, err := http.Get(f.base + "/2018-06-01/runtime/invocation/next")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		f.t.Fatalf("next: %d %s", resp.StatusCode, b)
	}
	return resp.Header.Get(runtimetest.HeaderRequestID), resp.Header, string(b)
}

func (f fakeFunction) post(path, body string, header map[string]string) int {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.base+"/2018-06-01/runtime/"+path, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRuntimeAPI(t *testing.T) {
	rt := runtimetest.New(t)
	fn := fakeFunction{t, rt.URL()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	type outcome struct {
		res runtimetest.Result
		err error
	}
	invoke := func(payload string) chan outcome {
		ch := make(chan outcome, 1)
		go func() {
			res, err := rt.Invoke(ctx, []byte(payload))
			ch <- outcome{res, err}
		}()
		return ch
	}

	// A response.
	ch := invoke(`{"n":1}`)
	id, h, payload := fn.next()
	if payload != `{"n":1}` || id == "" || h.Get(runtimetest.HeaderFunctionARN) != rt.FunctionARN {
		t.Fatalf("next gave id %q payload %q headers %v", id, payload, h)
	}
	deadline, err := strconv.ParseInt(h.Get(runtimetest.HeaderDeadlineMS), 10, 64)
	if err != nil || time.UnixMilli(deadline).Before(time.Now()) {
		t.Errorf("deadline header %q is not a future epoch in ms", h.Get(runtimetest.HeaderDeadlineMS))
	}
	if st := fn.post("invocation/unknown-id/response", "{}", nil); st != 400 {
		t.Errorf("response for an unknown id: %d, want 400", st)
	}
	if st := fn.post("invocation/"+id+"/response", `{"ok":true}`, nil); st != 202 {
		t.Fatalf("response: %d, want 202", st)
	}
	if o := <-ch; o.err != nil || string(o.res.Payload) != `{"ok":true}` || o.res.Err != nil || o.res.RequestID != id {
		t.Fatalf("invoke = %+v, %v", o.res, o.err)
	}
	if st := fn.post("invocation/"+id+"/response", `{}`, nil); st != 400 {
		t.Errorf("second response for the same id: %d, want 400", st)
	}

	// An error.
	ch = invoke(`{}`)
	id, _, _ = fn.next()
	if st := fn.post("invocation/"+id+"/error", `{"errorMessage":"boom","errorType":"errorString"}`,
		map[string]string{runtimetest.HeaderErrorType: "errorString"}); st != 202 {
		t.Fatalf("error: %d, want 202", st)
	}
	if o := <-ch; o.err != nil || o.res.Err == nil || o.res.Err.Message != "boom" || o.res.Err.Type != "errorString" {
		t.Fatalf("invoke of a failing function = %+v, %v", o.res, o.err)
	}

	// An init error ends what waits for the function.
	if st := fn.post("init/error", `{"errorMessage":"no config","errorType":"Runtime.Init"}`, nil); st != 202 {
		t.Fatalf("init/error: %d, want 202", st)
	}
	if st := fn.post("init/error", `{"errorMessage":"again"}`, nil); st != 403 {
		t.Errorf("second init/error: %d, want 403", st)
	}
	if _, err := rt.Invoke(ctx, []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "no config") {
		t.Errorf("invoke after an init error: %v, want the init error", err)
	}
}

func TestInvokeTimesOutWithoutFunction(t *testing.T) {
	rt := runtimetest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rt.Invoke(ctx, []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "never picked up") {
		t.Errorf("invoke with no function: %v", err)
	}
}

func TestHTTPRequest(t *testing.T) {
	ev := runtimetest.HTTPRequest("POST", "/api/events?x=1", map[string]string{"Content-Encoding": "gzip"}, []byte{0x1f, 0x8b, 0})
	if !ev.IsBase64Encoded || ev.RawPath != "/api/events" || ev.RawQueryString != "x=1" || ev.Headers["content-encoding"] != "gzip" ||
		ev.RequestContext.HTTP.Method != "POST" || ev.Version != "2.0" {
		t.Errorf("gzip event = %+v", ev)
	}
	ev = runtimetest.HTTPRequest("POST", "/api/events", nil, []byte(`{"a":1}`))
	if ev.IsBase64Encoded || ev.Body != `{"a":1}` {
		t.Errorf("JSON event = %+v", ev)
	}
}

func TestInvokeReportsExitedProcess(t *testing.T) {
	rt := runtimetest.New(t)
	bin, err := exec.LookPath("false")
	if err != nil {
		t.Fatalf("test needs false(1): %v", err)
	}
	rt.Start(t, bin)
	<-rt.Exited()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := rt.Invoke(ctx, []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("invoke after the process exited: %v", err)
	}
}

// Package runtimetest runs Lambda functions in tests the way AWS Lambda
// runs them: a built bootstrap binary in its own process, talking to an
// implementation of the Lambda Runtime API
// (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html) served
// by the test on loopback. Tests queue invocations and read back what the
// function posted to /response or /error.
package runtimetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// APIVersion is the Runtime API version in every path.
const APIVersion = "2018-06-01"

// Runtime API headers.
const (
	HeaderRequestID   = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadlineMS  = "Lambda-Runtime-Deadline-Ms"
	HeaderFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID     = "Lambda-Runtime-Trace-Id"
	HeaderErrorType   = "Lambda-Runtime-Function-Error-Type"
)

// FunctionError is the body a function posts to /error or /init/error.
type FunctionError struct {
	Message    string            `json:"errorMessage"`
	Type       string            `json:"errorType"`
	StackTrace []json.RawMessage `json:"stackTrace,omitempty"`
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("function error %s: %s", e.Type, e.Message)
}

// Result is the outcome of one invocation: the bytes posted to /response,
// or the error posted to /error.
type Result struct {
	RequestID string
	Payload   []byte
	Err       *FunctionError
}

type pending struct {
	id       string
	payload  []byte
	deadline time.Time
	done     chan Result
}

// Runtime is a Runtime API server for one function (one execution
// environment: it hands out one invocation at a time, as Lambda does).
type Runtime struct {
	// FunctionARN is sent with every invocation.
	FunctionARN string
	// Timeout is the function timeout: each invocation's deadline is this
	// far from when the function picks it up.
	Timeout time.Duration

	srv   *httptest.Server
	queue chan *pending

	mu        sync.Mutex
	inFlight  map[string]*pending
	initErr   *FunctionError
	initErrCh chan struct{}
	exited    chan struct{}
	exitErr   error
	stderr    testenv.Buffer
}

// New starts a Runtime API server on loopback; it stops at cleanup.
func New(tb testing.TB) *Runtime {
	tb.Helper()
	rt := &Runtime{
		FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:test",
		Timeout:     30 * time.Second,
		queue:       make(chan *pending),
		inFlight:    map[string]*pending{},
		initErrCh:   make(chan struct{}),
	}
	mux := http.NewServeMux()
	prefix := "/" + APIVersion + "/runtime"
	mux.HandleFunc("GET "+prefix+"/invocation/next", rt.handleNext)
	mux.HandleFunc("POST "+prefix+"/invocation/{id}/response", rt.handleResponse)
	mux.HandleFunc("POST "+prefix+"/invocation/{id}/error", rt.handleError)
	mux.HandleFunc("POST "+prefix+"/init/error", rt.handleInitError)
	rt.srv = httptest.NewServer(mux)
	tb.Cleanup(rt.srv.Close)
	return rt
}

// Addr is the value for AWS_LAMBDA_RUNTIME_API (host:port, no scheme).
func (rt *Runtime) Addr() string { return strings.TrimPrefix(rt.srv.URL, "http://") }

// URL is the server's base URL, for tests of the Runtime API itself.
func (rt *Runtime) URL() string { return rt.srv.URL }

// Stderr returns what the started function wrote to stderr so far.
func (rt *Runtime) Stderr() string { return rt.stderr.String() }

func (rt *Runtime) handleNext(w http.ResponseWriter, r *http.Request) {
	select {
	case p := <-rt.queue:
		rt.mu.Lock()
		rt.inFlight[p.id] = p
		rt.mu.Unlock()
		p.deadline = time.Now().Add(rt.Timeout)
		w.Header().Set(HeaderRequestID, p.id)
		w.Header().Set(HeaderDeadlineMS, strconv.FormatInt(p.deadline.UnixMilli(), 10))
		w.Header().Set(HeaderFunctionARN, rt.FunctionARN)
		w.Header().Set(HeaderTraceID, "Root=1-00000000-000000000000000000000000;Sampled=0")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(p.payload)
	case <-r.Context().Done():
	}
}

// take removes the in-flight invocation id; nil when there is none.
func (rt *Runtime) take(id string) *pending {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	p := rt.inFlight[id]
	delete(rt.inFlight, id)
	return p
}

func (rt *Runtime) handleResponse(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p := rt.take(r.PathValue("id"))
	if p == nil {
		writeStatus(w, http.StatusBadRequest, "InvalidRequestID")
		return
	}
	// Lambda refuses synchronous answers above 6 MB.
	if len(body) > 6*1024*1024 {
		p.done <- Result{RequestID: p.id, Err: &FunctionError{Type: "Function.ResponseSizeTooLarge", Message: fmt.Sprintf("response of %d bytes", len(body))}}
		writeStatus(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge")
		return
	}
	p.done <- Result{RequestID: p.id, Payload: body}
	writeStatus(w, http.StatusAccepted, "")
}

func (rt *Runtime) handleError(w http.ResponseWriter, r *http.Request) {
	fe, err := readFunctionError(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p := rt.take(r.PathValue("id"))
	if p == nil {
		writeStatus(w, http.StatusBadRequest, "InvalidRequestID")
		return
	}
	p.done <- Result{RequestID: p.id, Err: fe}
	writeStatus(w, http.StatusAccepted, "")
}

func (rt *Runtime) handleInitError(w http.ResponseWriter, r *http.Request) {
	fe, err := readFunctionError(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.initErr != nil {
		writeStatus(w, http.StatusForbidden, "InvalidStateTransition")
		return
	}
	rt.initErr = fe
	close(rt.initErrCh)
	writeStatus(w, http.StatusAccepted, "")
}

func readFunctionError(r *http.Request) (*FunctionError, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	fe := &FunctionError{Type: r.Header.Get(HeaderErrorType)}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, fe); err != nil {
			return nil, fmt.Errorf("error body is not JSON: %w", err)
		}
	}
	if fe.Type == "" {
		fe.Type = r.Header.Get(HeaderErrorType)
	}
	return fe, nil
}

func writeStatus(w http.ResponseWriter, status int, errType string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if errType == "" {
		_, _ = io.WriteString(w, `{"status":"OK"}`)
		return
	}
	_, _ = fmt.Fprintf(w, `{"errorMessage":%q,"errorType":%q}`, errType, errType)
}

// InitError returns what the function posted to /init/error, nil if
// nothing.
func (rt *Runtime) InitError() *FunctionError {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.initErr
}

// Invoke hands payload to the function and waits for its answer. It fails
// when the function reports an init error, its process exits, or ctx ends
// first.
func (rt *Runtime) Invoke(ctx context.Context, payload []byte) (Result, error) {
	p := &pending{id: newRequestID(), payload: payload, done: make(chan Result, 1)}
	exited := rt.exitedChan()
	select {
	case rt.queue <- p:
	case <-rt.initErrCh:
		return Result{}, fmt.Errorf("function failed to initialize: %w", rt.InitError())
	case <-exited:
		return Result{}, rt.exitError()
	case <-ctx.Done():
		return Result{}, fmt.Errorf("invocation %s was never picked up (is the function polling /invocation/next?): %w\n%s", p.id, ctx.Err(), rt.Stderr())
	}
	select {
	case res := <-p.done:
		return res, nil
	case <-exited:
		return Result{}, rt.exitError()
	case <-ctx.Done():
		rt.take(p.id)
		return Result{}, fmt.Errorf("invocation %s got no answer: %w\n%s", p.id, ctx.Err(), rt.Stderr())
	}
}

// InvokeJSON marshals in, invokes, and unmarshals a successful answer into
// out. A function error is returned as *FunctionError.
func (rt *Runtime) InvokeJSON(ctx context.Context, in, out any) error {
	payload, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode payload: %w", err)
	}
	res, err := rt.Invoke(ctx, payload)
	if err != nil {
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	if err := json.Unmarshal(res.Payload, out); err != nil {
		return fmt.Errorf("decode answer %s: %w", res.Payload, err)
	}
	return nil
}

// InvokeHTTP sends an API Gateway HTTP API (payload 2.0) event and returns
// the gateway response the function produced.
func (rt *Runtime) InvokeHTTP(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var resp events.APIGatewayV2HTTPResponse
	err := rt.InvokeJSON(ctx, req, &resp)
	return resp, err
}

func (rt *Runtime) exitedChan() chan struct{} {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.exited // nil (never ready) until Start
}

func (rt *Runtime) exitError() error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return fmt.Errorf("function process exited (%v)\n%s", rt.exitErr, rt.stderr.String())
}

// Start runs the bootstrap binary at path as Lambda would: with
// AWS_LAMBDA_RUNTIME_API pointing at rt, the usual Lambda environment and
// env (KEY=VALUE) on top; nothing else of the test's environment leaks
// in except PATH and HOME. The process is stopped at cleanup.
func (rt *Runtime) Start(tb testing.TB, path string, env ...string) {
	tb.Helper()
	cmd := exec.Command(path)
	cmd.Env = append([]string{
		"AWS_LAMBDA_RUNTIME_API=" + rt.Addr(),
		"AWS_LAMBDA_FUNCTION_NAME=" + filepath.Base(filepath.Dir(path)),
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"LAMBDA_TASK_ROOT=" + filepath.Dir(path),
		"TZ=:UTC",
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
	}, env...)
	cmd.Stdout = &rt.stderr // Lambda sends both to CloudWatch; tests read them together
	cmd.Stderr = &rt.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", path, err)
	}
	exited := make(chan struct{})
	rt.mu.Lock()
	rt.exited = exited
	rt.mu.Unlock()
	go func() {
		err := cmd.Wait()
		rt.mu.Lock()
		rt.exitErr = err
		rt.mu.Unlock()
		close(exited)
	}()
	tb.Cleanup(func() {
		// Lambda ends an environment with SIGTERM, then SIGKILL.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if tb.Failed() {
			tb.Logf("function output:\n%s", rt.stderr.String())
		}
	})
}

// Exited is closed when the started process has exited.
func (rt *Runtime) Exited() <-chan struct{} { return rt.exitedChan() }

// Build compiles main packages (e.g. "./functions/ingest", relative to
// dir) the way they are deployed, with -tags lambda.norpc and
// CGO_ENABLED=0, for goos/goarch, in one go build, and returns where each
// landed: outDir/<last element of the package path>/bootstrap. (No
// -trimpath: tests then share the build cache with go vet and go test;
// -s -w as in make lambdas, which also links faster.)
func Build(ctx context.Context, dir, outDir, goos, goarch string, pkgs ...string) (map[string]string, error) {
	tmp, err := os.MkdirTemp(outDir, ".build")
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	defer os.RemoveAll(tmp)
	args := append([]string{"build", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-o", tmp + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("GOOS=%s GOARCH=%s CGO_ENABLED=0 go %s: %w\n%s", goos, goarch, strings.Join(args, " "), err, b)
	}
	out := make(map[string]string, len(pkgs))
	for _, pkg := range pkgs {
		name := filepath.Base(pkg)
		if err := os.MkdirAll(filepath.Join(outDir, name), 0o755); err != nil {
			return nil, fmt.Errorf("build: %w", err)
		}
		exe := name
		if goos == "windows" {
			exe += ".exe"
		}
		dst := filepath.Join(outDir, name, "bootstrap")
		if err := os.Rename(filepath.Join(tmp, exe), dst); err != nil {
			return nil, fmt.Errorf("build %s: %w", pkg, err)
		}
		out[name] = dst
	}
	return out, nil
}

// HTTPRequest builds an API Gateway HTTP API (payload 2.0) event the way
// the gateway does: raw path and query, lower-case headers, the route key
// "$default", and the body base64-encoded when it is not text.
func HTTPRequest(method, target string, header map[string]string, body []byte) events.APIGatewayV2HTTPRequest {
	path, query, _ := strings.Cut(target, "?")
	h := make(map[string]string, len(header))
	for k, v := range header {
		h[strings.ToLower(k)] = v
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        path,
		RawQueryString: query,
		Headers:        h,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID:    "123456789012",
			APIID:        "api",
			DomainName:   "api.example.com",
			DomainPrefix: "api",
			Stage:        "$default",
			RequestID:    newRequestID(),
			RouteKey:     "$default",
			TimeEpoch:    time.Now().UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    method,
				Path:      path,
				Protocol:  "HTTP/1.1",
				SourceIP:  "192.0.2.1",
				UserAgent: "runtimetest",
			},
		},
	}
	if len(body) > 0 {
		if isText(h["content-encoding"], body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// isText mirrors the gateway: encoded or non-UTF-8 bodies arrive base64.
func isText(contentEncoding string, body []byte) bool {
	return contentEncoding == "" && utf8.Valid(body)
}

func newRequestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Package lambdahttp runs a net/http handler behind API Gateway HTTP APIs
// (payload format 2.0): it turns each event into an *http.Request, records
// what the handler writes and returns it as the gateway's response.
package lambdahttp

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// MaxResponseBytes is what Lambda lets a synchronous invocation return
// (6 MB), less room for the JSON envelope.
const MaxResponseBytes = 6*1000*1000 - 64*1024

// gzipAbove is the body size above which answers are gzipped for clients
// that accept it.
const gzipAbove = 8 << 10

// HandlerFunc is what lambda.Start accepts for an HTTP API route.
type HandlerFunc func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Handler adapts h to API Gateway HTTP API payload format 2.0. Problems with
// the event itself become 400 answers; the function never fails an
// invocation, so API Gateway never answers its own opaque 500.
func Handler(h http.Handler) HandlerFunc {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		r, err := Request(ctx, ev)
		if err != nil {
			return errorResponse(http.StatusBadRequest, "invalid", err.Error()), nil
		}
		w := newRecorder()
		h.ServeHTTP(w, r)
		return w.response(acceptsGzip(r.Header.Get("Accept-Encoding"))), nil
	}
}

// Request builds the *http.Request an API Gateway HTTP API event describes.
func Request(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	method := ev.RequestContext.HTTP.Method
	if method == "" {
		return nil, fmt.Errorf("event has no requestContext.http.method; is this an API Gateway HTTP API (payload 2.0) event?")
	}
	path := ev.RawPath
	if path == "" {
		path = ev.RequestContext.HTTP.Path
	}
	if path == "" {
		path = "/"
	}
	// A named stage (not $default) prefixes the raw path.
	if st := ev.RequestContext.Stage; st != "" && st != "$default" {
		if p, ok := strings.CutPrefix(path, "/"+st); ok && (p == "" || p[0] == '/') {
			path = p
			if path == "" {
				path = "/"
			}
		}
	}
	u := &url.URL{Path: path, RawQuery: ev.RawQueryString}
	if ev.RequestContext.DomainName != "" {
		u.Scheme, u.Host = "https", ev.RequestContext.DomainName
	}
	var body []byte
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return nil, fmt.Errorf("body is not valid base64: %w", err)
		}
		body = b
	} else {
		body = []byte(ev.Body)
	}
	r, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range ev.Headers {
		// HTTP APIs join repeated headers with commas; keep them as one.
		r.Header.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	r.Host = ev.RequestContext.DomainName
	r.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	r.RequestURI = u.RequestURI()
	if ev.RequestContext.HTTP.Protocol != "" {
		if major, minor, ok := http.ParseHTTPVersion(ev.RequestContext.HTTP.Protocol); ok {
			r.Proto, r.ProtoMajor, r.ProtoMinor = ev.RequestContext.HTTP.Protocol, major, minor
		}
	}
	r.ContentLength = int64(len(body))
	if id := ev.RequestContext.RequestID; id != "" && r.Header.Get("X-Request-Id") == "" {
		r.Header.Set("X-Request-Id", id)
	}
	return r, nil
}

// recorder is an http.ResponseWriter that keeps the answer in memory.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

func (w *recorder) response(gzipOK bool) events.APIGatewayV2HTTPResponse {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	body := w.body.Bytes()
	if gzipOK && len(body) > gzipAbove && w.header.Get("Content-Encoding") == "" {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(body); err == nil && zw.Close() == nil {
			body = buf.Bytes()
			w.header.Set("Content-Encoding", "gzip")
			w.header.Add("Vary", "Accept-Encoding")
		}
	}
	resp := events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{}}
	for k, vs := range w.header {
		if http.CanonicalHeaderKey(k) == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, vs...)
			continue
		}
		resp.Headers[k] = strings.Join(vs, ", ")
	}
	if w.header.Get("Content-Encoding") == "" && utf8.Valid(body) {
		resp.Body = string(body)
	} else {
		resp.Body = base64.StdEncoding.EncodeToString(body)
		resp.IsBase64Encoded = true
	}
	if len(resp.Body) > MaxResponseBytes {
		return errorResponse(http.StatusInternalServerError, "internal",
			"the answer is larger than AWS Lambda allows (6 MB); ask for less (for example a smaller limit), or send Accept-Encoding: gzip")
	}
	return resp
}

func errorResponse(status int, code, message string) events.APIGatewayV2HTTPResponse {
	b, _ := jsonString(message)
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       `{"error":{"code":"` + code + `","message":` + b + "}}\n",
	}
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

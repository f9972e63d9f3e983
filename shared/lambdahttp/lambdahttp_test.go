package lambdahttp_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kilometers-ai/kilometers/shared/lambdahttp"
	"github.com/kilometers-ai/kilometers/shared/lambdahttp/runtimetest"
)

func TestRequest(t *testing.T) {
	body := []byte{0x1f, 0x8b, 0xff, 0x00}
	ev := runtimetest.HTTPRequest("POST", "/prod/api/events/batch?a=1&b=x%20y", map[string]string{
		"Authorization": "Bearer k", "Content-Encoding": "gzip", "Accept": "a, b",
	}, body)
	ev.RequestContext.Stage = "prod"
	ev.Cookies = []string{"c1=v1", "c2=v2"}
	r, err := lambdahttp.Request(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r.Body)
	for _, c := range []struct{ name, got, want string }{
		{"method", r.Method, "POST"},
		{"path (stage stripped)", r.URL.Path, "/api/events/batch"},
		{"query", r.URL.Query().Get("b"), "x y"},
		{"authorization", r.Header.Get("Authorization"), "Bearer k"},
		{"joined header kept whole", r.Header.Get("Accept"), "a, b"},
		{"cookies", r.Header.Get("Cookie"), "c1=v1; c2=v2"},
		{"body (base64 decoded)", string(got), string(body)},
		{"host", r.Host, "api.example.com"},
		{"remote addr", r.RemoteAddr, "192.0.2.1"},
		{"request id", r.Header.Get("X-Request-Id"), ev.RequestContext.RequestID},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if r.ContentLength != int64(len(body)) {
		t.Errorf("content length %d, want %d", r.ContentLength, len(body))
	}

	// $default keeps the path whole, even when it starts like a stage name.
	ev = runtimetest.HTTPRequest("GET", "/prod/x", nil, nil)
	if r, err := lambdahttp.Request(context.Background(), ev); err != nil || r.URL.Path != "/prod/x" {
		t.Errorf("$default stage: %v %v", r, err)
	}
}

func TestHandlerRefusesBadEvents(t *testing.T) {
	h := lambdahttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("handler called for a bad event")
	}))
	bad64 := runtimetest.HTTPRequest("POST", "/x", map[string]string{"Content-Encoding": "gzip"}, []byte{1})
	bad64.Body = "!!not base64"
	for name, ev := range map[string]events.APIGatewayV2HTTPRequest{
		"no method":    {RawPath: "/x"},
		"bad base64":   bad64,
		"empty object": {},
	} {
		resp, err := h(context.Background(), ev)
		if err != nil || resp.StatusCode != 400 || !strings.Contains(resp.Body, `"code":"invalid"`) || resp.Headers["Content-Type"] != "application/json" {
			t.Errorf("%s: %+v, %v; want a JSON 400", name, resp, err)
		}
	}
}

func TestResponse(t *testing.T) {
	big := strings.Repeat(`{"k":"v"},`, 2000) // > 8 KiB
	h := lambdahttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, big)
		case "/small":
			w.Header().Add("X-Multi", "a")
			w.Header().Add("X-Multi", "b")
			http.SetCookie(w, &http.Cookie{Name: "s", Value: "1"})
			http.SetCookie(w, &http.Cookie{Name: "t", Value: "2"})
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "small")
		case "/binary":
			_, _ = w.Write([]byte{0xff, 0xfe, 0x00})
		case "/empty":
		case "/huge":
			_, _ = w.Write(bytes.Repeat([]byte("x"), lambdahttp.MaxResponseBytes+1))
		}
	}))
	call := func(path, acceptEncoding string) events.APIGatewayV2HTTPResponse {
		t.Helper()
		hdr := map[string]string{}
		if acceptEncoding != "" {
			hdr["Accept-Encoding"] = acceptEncoding
		}
		resp, err := h(context.Background(), runtimetest.HTTPRequest("GET", path, hdr, nil))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return resp
	}

	resp := call("/big", "br, gzip;q=0.8")
	if !resp.IsBase64Encoded || resp.Headers["Content-Encoding"] != "gzip" || resp.Headers["Vary"] != "Accept-Encoding" {
		t.Fatalf("big with gzip accepted: base64=%v headers=%v", resp.IsBase64Encoded, resp.Headers)
	}
	raw, _ := base64.StdEncoding.DecodeString(resp.Body)
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); string(plain) != big {
		t.Errorf("gunzipped body differs (%d bytes)", len(plain))
	}
	for _, ae := range []string{"", "gzip;q=0", "identity", "deflate"} {
		if resp := call("/big", ae); resp.IsBase64Encoded || resp.Body != big || resp.Headers["Content-Encoding"] != "" {
			t.Errorf("big with Accept-Encoding %q: compressed or changed", ae)
		}
	}
	if resp := call("/small", "gzip"); resp.StatusCode != 201 || resp.Body != "small" || resp.IsBase64Encoded ||
		resp.Headers["X-Multi"] != "a, b" || len(resp.Cookies) != 2 || resp.Headers["Set-Cookie"] != "" {
		t.Errorf("small: %+v", resp)
	}
	if resp := call("/binary", ""); !resp.IsBase64Encoded || resp.Body != base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe, 0x00}) {
		t.Errorf("binary: %+v", resp)
	}
	if resp := call("/empty", ""); resp.StatusCode != 200 || resp.Body != "" {
		t.Errorf("empty: %+v", resp)
	}
	if resp := call("/huge", ""); resp.StatusCode != 500 || !strings.Contains(resp.Body, "larger than AWS Lambda allows") {
		t.Errorf("huge: status %d body %.200s", resp.StatusCode, resp.Body)
	}
}

package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
)

// FuzzDecodeMatchesStdlib holds the fast decoder of decodeJSON to
// encoding/json, the reference: for any body both accept or both refuse
// with the same message, accepted bodies decode to the same batch or
// event, and nothing decoded still points into the body (the handler
// reuses its buffer).
func FuzzDecodeMatchesStdlib(f *testing.F) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	good := apitest.MustJSON(f, apitest.SampleBatch(now, 3))
	one := apitest.MustJSON(f, apitest.SampleBatch(now, 1).Events[0])
	for _, seed := range []string{
		string(good), string(one), string(good[:len(good)/2]), string(good) + "{}", string(good) + " \n",
		`{}`, `{"events":[]}`, `{"events":null,"sessions":[{}]}`, `nul`, `"str"`, `[1,2]`, ` `,
		`{"events":[{"id":1}]}`, `{"events":[{"seq":"12"}]}`, `{"events":[{"seq":1e2}]}`, `{"events":[{"seq":1.0}]}`,
		`{"events":[{"seq":-0}]}`, `{"events":[{"seq":99999999999999999999}]}`, `{"events":[{"size":null}]}`,
		`{"events":[{"ts":"2026-13-01T00:00:00Z"}]}`, `{"events":[{"ts":"yesterday"}]}`, `{"events":[{"ts":null}]}`,
		`{"Events":[{"ID":"x","SESSION_ID":"y"}]}`, `{"events":[{"id":"a","id":"b"}]}`, `{"events":[{"tool":"\ud800"}]}`,
		`{"events":[{"tool":"caf\u00e9 \"q\" \\ \/"}]}`, "{\"events\":[{\"tool\":\"\xff\xfe\"}]}", `{"events":[{"payload":{"a":[1,{"b":null}]}}]}`,
		`{"events":[{"payload":nul}]}`, `{"events":[{"payload":"x"}]}`, `{"events":[{"latency_ms":1.5e3,"is_error":true,"error_code":-32603}]}`,
		`{"events":[{"is_error":1}]}`, `{"events":[{"risk":{"score":1.5}}]}`, `{"events":[{"risk":{"reasons":[1]}}]}`,
		`{"events":[{"future":{"x":[1,2,{"y":"z"}]}}]}`, `{"sessions":[{"command":["a",null],"exit_code":3,"ended_at":null}]}`,
		`{"events":{}}`, `{"events":[[]]}`, `{"events":[{"seq":01}]}`, `{"events":[{"seq":+1}]}`, `{"events":[{"tool":"a` + "\t" + `b"}]}`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, single bool) {
		var want, got any = &event.Batch{}, &event.Batch{}
		if single {
			want, got = &event.Event{}, &event.Event{}
		}
		wantErr := decodeJSONStd(body, want)
		own := bytes.Clone(body)
		gotErr := decodeJSON(own, got)
		if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
			if len(bytes.TrimSpace(body)) == 0 && gotErr != nil {
				return // decodeJSON refuses an empty body before decoding
			}
			t.Fatalf("encoding/json says %v, decodeJSON says %v", wantErr, gotErr)
		}
		if wantErr != nil {
			return
		}
		w, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		g, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(w, g) {
			t.Fatalf("decoded differently:\nencoding/json %s\ndecodeJSON    %s", w, g)
		}
		for i := range own {
			own[i] = 'x'
		}
		if g2, _ := json.Marshal(got); !bytes.Equal(g, g2) {
			t.Fatalf("the decoded value changed with the body it came from:\nbefore %s\nafter  %s", g, g2)
		}
	})
}

// TestReadBodyReusesPools reads bodies that fail in every way the pooled
// gzip reader and buffer can fail, each followed by a good body through
// the same pools: a reader or buffer left dirty by a failure must never
// leak into the next request.
func TestReadBodyReusesPools(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	good := apitest.MustJSON(t, apitest.SampleBatch(now, 2))
	gz := apitest.Gzip(t, good)
	bomb := apitest.Gzip(t, bytes.Repeat([]byte(" "), backend.MaxBodyBytes+1))
	bad := []struct {
		name string
		body []byte
		code backend.Code
	}{
		{"not gzip", good, backend.EINVALID},
		{"truncated gzip", gz[:len(gz)/2], backend.EINVALID},
		{"corrupt gzip", append(append([]byte{}, gz[:20]...), bytes.Repeat([]byte{0xff}, 64)...), backend.EINVALID},
		{"gzip bomb", bomb, backend.ETOOLARGE},
	}
	var p bodyPools
	read := func(body []byte) ([]byte, func(), error) {
		req := httptest.NewRequest(http.MethodPost, "/api/events/batch", bytes.NewReader(body))
		req.Header.Set("Content-Encoding", "gzip")
		return p.readBody(req)
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := read(c.body); backend.ErrorCode(err) != c.code {
				t.Fatalf("got %v, want %s", err, c.code)
			}
			body, release, err := read(gz)
			if err != nil {
				t.Fatalf("good body after %s: %v", c.name, err)
			}
			if !bytes.Equal(body, good) {
				t.Fatalf("good body after %s read as %d bytes, want the %d sent", c.name, len(body), len(good))
			}
			release()
		})
	}
}

// TestPooledEventsHoldNothingStale decodes a short batch into the events
// slice a longer batch was decoded into and the pool cleared: it must
// decode as into a fresh slice, with no field of the earlier events left
// in the elements the decoder reuses, and the clearing must leave none of
// them in the pool either.
func TestPooledEventsHoldNothingStale(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	long, err := DecodeBatch(apitest.MustJSON(t, apitest.SampleBatch(now, 5)), now)
	if err != nil {
		t.Fatal(err)
	}
	short := apitest.SampleBatch(now, 1)
	for i := range short.Events {
		e := &short.Events[i]
		e.Risk, e.Payload, e.LatencyMS, e.IsError, e.ErrorCode, e.ErrorMessage, e.Tool = nil, nil, nil, nil, nil, "", ""
	}
	shortBody := apitest.MustJSON(t, short)

	var p bodyPools
	events := long.Events
	p.putEvents(events)
	for i, e := range events[:cap(events)] {
		if !reflect.ValueOf(e).IsZero() {
			t.Fatalf("pooled events[%d] still holds %+v", i, e)
		}
	}
	got, err := decodeBatchInto(shortBody, now, events[:0])
	if err != nil {
		t.Fatal(err)
	}
	if &got.Events[0] != &events[0] {
		t.Fatal("the short batch was not decoded into the pooled slice")
	}
	want, err := DecodeBatch(shortBody, now)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded into the pooled slice:\n%+v\nwant (a fresh slice):\n%+v", got.Events, want.Events)
	}
}

// BenchmarkDecodeBatch times decoding, cleaning and validating a batch of
// about 500 events, into a fresh events slice and into a pooled one as
// handleBatch does.
func BenchmarkDecodeBatch(b *testing.B) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	body := apitest.MustJSON(b, apitest.SampleBatch(now, 84))
	b.Run("fresh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeBatch(body, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pooled", func(b *testing.B) {
		var p bodyPools
		b.ReportAllocs()
		for b.Loop() {
			batch, err := decodeBatchInto(body, now, p.getEvents())
			if err != nil {
				b.Fatal(err)
			}
			p.putEvents(batch.Events)
		}
	})
}

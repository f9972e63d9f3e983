package ui

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/infra/browsertest/chromium"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// firstRenderEvents is the store size the dashboard's first render is
// held to (under 1 s, docs/dashboard.md).
const firstRenderEvents = 100_000

// BenchmarkFirstRender opens the dashboard in a real headless Chromium
// over a local store of 100,000 events and measures the time from
// navigation to the overview's numbers on screen (the stats answer
// computed, sent and drawn). make bench runs it (infra/local/bench.sh).
func BenchmarkFirstRender(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	// SampleBatch's events are a second apart; squeeze them into the last
	// 90 minutes, in the same order.
	batch := apitest.SampleBatch(time.Now(), firstRenderEvents/6+1)
	start := time.Now().Add(-90 * time.Minute)
	step := 90 * time.Minute / time.Duration(len(batch.Events))
	for i := range batch.Events {
		batch.Events[i].TS = start.Add(time.Duration(i) * step)
	}
	for i := range batch.Sessions {
		batch.Sessions[i].StartedAt = start.Add(-time.Second)
	}
	for _, sess := range batch.Sessions {
		w, err := st.NewWriter(ctx, sess.ID)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.RecordSession(ctx, sess); err != nil {
			b.Fatal(err)
		}
		var mine []event.Event
		for _, e := range batch.Events {
			if e.SessionID == sess.ID {
				mine = append(mine, e)
			}
		}
		for len(mine) > 0 {
			n := min(len(mine), 1000)
			if err := w.Record(ctx, mine[:n]); err != nil {
				b.Fatal(err)
			}
			mine = mine[n:]
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	const token = "bench-token"
	srv := httptest.NewUnstartedServer(NewHandler(st, token, ln.Addr().String(), time.Now, slog.New(slog.NewTextHandler(io.Discard, nil))))
	srv.Listener = ln
	srv.Start()
	b.Cleanup(srv.Close)

	q, _ := stats.ParseQuery(url.Values{"since": {"2h"}}, time.Now())
	if got, err := st.Stats(ctx, q); err != nil || got.Totals.Events < firstRenderEvents {
		b.Fatalf("store stats: %d events, %v; want %d", got.Totals.Events, err, firstRenderEvents)
	}

	tab := chromium.New(b)
	if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/?token="+token)); err != nil {
		b.Fatal(err)
	}
	var statsTime, renderTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := st.Stats(ctx, q); err != nil {
			b.Fatal(err)
		}
		statsTime += time.Since(t0)
		b.StartTimer()
		start := time.Now()
		err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/#/overview?since=2h"),
			chromedp.WaitVisible(chromedp.CSS(`[data-stat="totals.events"]`)))
		if err != nil {
			b.Fatal(err)
		}
		renderTime += time.Since(start)
	}
	b.StopTimer()
	// The render includes computing the stats; stats-ms says how much of
	// it the local store's scan alone takes.
	b.ReportMetric(float64(renderTime.Milliseconds())/float64(b.N), "render-ms")
	b.ReportMetric(float64(statsTime.Milliseconds())/float64(b.N), "stats-ms")
	shown, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector('[data-stat="totals.events"]').dataset.value`))
	if err != nil {
		b.Fatal(err)
	}
	if n, _ := strconv.Atoi(shown); n < firstRenderEvents {
		b.Fatalf("the overview shows %s events, want at least %d", shown, firstRenderEvents)
	}
}

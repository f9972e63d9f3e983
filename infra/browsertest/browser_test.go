package browsertest

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/kilometers-ai/kilometers/infra/browsertest/chromium"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the screenshots into docs/img (else into a temporary directory)")

// browser is one fresh Chromium (its own profile) and one tab in it.
type browser struct {
	t      *testing.T
	ctx    context.Context
	origin string // every request the page makes must go here
	shots  string

	mu       sync.Mutex
	problems []string // console errors, exceptions, CSP reports, foreign requests
}

func newBrowser(t *testing.T, origin string) *browser {
	t.Helper()
	b := &browser{t: t, origin: origin, shots: t.TempDir()}
	if *updateScreenshots {
		b.shots = filepath.Join(testenv.RepoRoot(t), "docs", "img")
	}
	ctx := chromium.New(t, b.listen)
	b.ctx = ctx
	if err := chromedp.Do(ctx, call(log.Enable, cdp.Empty{}), call(network.Enable, network.EnableParams{}), media(false), viewport(1280, 800)); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return b
}

// listen collects what the page must never do.
func (b *browser) listen(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.problem(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value))
			}
			b.problem("console.error: " + strings.Join(parts, " "))
		}
	case *log.EventEntryAdded:
		// A CSP violation is logged as an error; so is any failed
		// fetch, which the scenarios that cause one forget.
		if ev.Entry.Level == log.EntryLevelError {
			b.problem("log: " + ev.Entry.Text + " " + ev.Entry.URL)
		}
	case *network.EventRequestWillBeSent:
		if u := ev.Request.URL; !strings.HasPrefix(u, b.origin+"/") && !strings.HasPrefix(u, "data:") {
			b.problem("request to another origin: " + u)
		}
	}
}

// call makes an action of a protocol command without a result.
func call[P any](c cdp.Command[P, cdp.Empty], p P) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, c, p)
		return err
	})
}

func (b *browser) problem(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, s)
}

// forget drops what the page logged so far (failures a test caused).
func (b *browser) forget() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = nil
}

// clean fails the test if the page misbehaved so far.
func (b *browser) clean() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("page: %s", p)
	}
	b.problems = nil
}

// run runs actions with a time limit.
func (b *browser) run(what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fatal(what, err)
	}
}

func (b *browser) fatal(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
	b.t.Fatalf("%s: %v\npage:\n%.3000s", what, err, html)
}

// js evaluates expr in the page and decodes its value into out (unless
// out is nil).
func (b *browser) js(expr string, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		b.fatal("evaluate "+expr, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.fatal("decode "+expr+": "+string(raw), err)
		}
	}
}

// do evaluates a statement in the page.
func do(expr string) chromedp.Action[chromedp.Void] { return chromedp.Evaluate[chromedp.Void](expr) }

// visible waits for an element to be shown.
func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}

// click clicks an element.
func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

// shot saves the viewport as docs/img/dashboard-<name>.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.fatal("screenshot "+name, err)
	}
	p := filepath.Join(b.shots, "dashboard-"+name+".png")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s (%d bytes)", p, len(png))
}

// media sets the system preferences the page follows: the colour scheme,
// and reduced motion always, so that screenshots never catch the
// fresh-row highlight half way.
func media(dark bool) chromedp.Action[chromedp.Void] {
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	return call(emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{
		{Name: "prefers-color-scheme", Value: scheme},
		{Name: "prefers-reduced-motion", Value: "reduce"},
	}})
}

// viewport sets the window's size as a user would resize it.
func viewport(w, h int64) chromedp.Action[chromedp.Void] {
	return call(emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: w, Height: h, DeviceScaleFactor: 1})
}

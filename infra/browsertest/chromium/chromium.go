// Package chromium starts Debian's headless Chromium for tests and
// benchmarks that drive the dashboard through chromedp: one fresh profile
// per browser, no network of its own (no sync, updates or QUIC).
package chromium

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package puts the browser.
const Path = "/usr/bin/chromium"

// New starts a browser and returns a chromedp context for one tab in it;
// listeners get its protocol events. The browser ends with the test.
func New(tb testing.TB, listeners ...func(ev any)) context.Context {
	tb.Helper()
	path := Path
	if _, err := os.Stat(path); err != nil {
		p, err := exec.LookPath("chromium")
		if err != nil {
			tb.Fatalf("the dashboard's browser tests need Chromium at %s: apt-get install chromium (.ci/run does)", Path)
		}
		path = p
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var copts []chromedp.ContextOption
	for _, l := range listeners {
		copts = append(copts, chromedp.WithListener(l))
	}
	ctx, cancelTab := chromedp.NewContext(actx, copts...)
	tb.Cleanup(func() { cancelTab(); cancelAlloc() })
	return ctx
}

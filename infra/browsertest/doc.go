// Package browsertest drives the dashboard in a real headless Chromium
// (Debian's chromium package, through chromedp): over `kilometers ui` and
// the local store of real monitored sessions, and over functions/local
// with an API key. It checks what a user sees against `kilometers stats
// --json` and `kilometers activity --json`, and saves a screenshot of each
// view (into docs/img with -update-screenshots; see docs/dashboard.md).
package browsertest

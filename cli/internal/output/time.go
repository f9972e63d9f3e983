package output

import (
	"fmt"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
)

// Time formats ts for the output: RFC 3339 in UTC for scripts; on a
// terminal local time with its zone, the date left out when it is today
// and the year when it is this year.
func Time(ios *cmdutil.IOStreams, ts, now time.Time) string {
	if !ios.OutIsTerminal {
		return ts.UTC().Format(time.RFC3339Nano)
	}
	loc := ios.Location()
	ts, now = ts.In(loc), now.In(loc)
	switch {
	case ts.Year() == now.Year() && ts.YearDay() == now.YearDay():
		return ts.Format("15:04:05 MST")
	case ts.Year() == now.Year():
		return ts.Format("Jan 02 15:04 MST")
	}
	return ts.Format("2006-01-02 15:04 MST")
}

// Ago formats how long before now ts was, for people: "12s ago", "5m
// ago", "3h ago", "2d ago"; a time in the future (another machine's
// clock) is "just now".
func Ago(ts, now time.Time) string {
	d := now.Sub(ts)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// Duration formats a span for people: 850ms, 42s, 3m12s, 2h05m, 3d04h.
func Duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
)

// longSample is the monitor's memory after some messages of a long session.
type longSample struct {
	Messages int   `json:"messages"`
	PeakKB   int64 `json:"peak_rss_kib"`
	AnonKB   int64 `json:"rss_anon_kib"`
	FileKB   int64 `json:"rss_file_kib"`
}

// longResult is one long session through the monitor: the 256 B phase's
// round trips, but many more of them in one session, so whatever grows
// with a session's length (pairing state, per-session sets, the store's
// state, the heap's high-water mark) shows up where the short run hides it.
type longResult struct {
	Messages int          `json:"messages"`
	PeakKB   int64        `json:"peak_rss_kib"`
	Samples  []longSample `json:"samples"`
	Stderr   string       `json:"stderr,omitempty"`
}

// longSamples is how many points of the memory curve are kept.
const longSamples = 10

// longSession runs one monitor session of at least messages messages (a
// request and its 256 B answer are two) against the echo server, recording
// to home, and samples its RSS along the way.
func longSession(ctx context.Context, km, echo string, env []string, messages int) (*longResult, error) {
	p, err := startProc(ctx, "kilometers monitor (long session)", []string{km, "monitor", "--", echo, "256"}, env)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p.cmd.ProcessState == nil {
			p.kill()
		}
	}()
	res := &longResult{}
	pid := p.cmd.Process.Pid
	every := max(messages/2/longSamples, 1)
	for msgs := 2*p.trips + 1; msgs < messages; msgs = 2*p.trips + 1 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, err := p.roundTrip(256); err != nil {
			return nil, err
		}
		if p.trips%every == 0 {
			st := rssNow(pid)
			res.Samples = append(res.Samples, longSample{Messages: 2*p.trips + 1, PeakKB: vmHWM(pid), AnonKB: st.Anon, FileKB: st.File})
		}
	}
	res.Messages = 2*p.trips + 1
	if res.PeakKB, _, err = p.finish(ctx); err != nil {
		return nil, fmt.Errorf("long session: %w", err)
	}
	res.Stderr = p.stderr.String()
	return res, nil
}

// judgeLong holds the long session to the same RSS floor as the short run.
func (r *Results) judgeLong() {
	if r.Long == nil {
		return
	}
	c := check{What: fmt.Sprintf("monitor peak RSS over a %d-message session", r.Long.Messages),
		Value: fmt.Sprintf("%.1f MiB", float64(r.Long.PeakKB)/1024), Floor: fmt.Sprintf("<= %d MiB (aim %d)", maxPeakKB>>10, aimPeakKB>>10)}
	c.Pass = r.Long.PeakKB > 0 && r.Long.PeakKB <= maxPeakKB
	c.Aim = c.Pass && r.Long.PeakKB <= aimPeakKB
	r.add(c)
}

func (r *Results) printLong(w io.Writer) {
	if r.Long == nil {
		return
	}
	fmt.Fprintf(w, "\nLong session: one monitor session of %d messages (256 B results); peak RSS %.1f MiB\n", r.Long.Messages, float64(r.Long.PeakKB)/1024)
	fmt.Fprintf(w, "%10s %9s %9s %9s\n", "MESSAGES", "PEAK RSS", "ANON", "FILE")
	for _, s := range r.Long.Samples {
		fmt.Fprintf(w, "%10d %5.1f MiB %5.1f MiB %5.1f MiB\n", s.Messages, float64(s.PeakKB)/1024, float64(s.AnonKB)/1024, float64(s.FileKB)/1024)
	}
	if r.Long.Stderr != "" {
		fmt.Fprintf(w, "long session wrote to stderr:\n  %s\n", r.Long.Stderr)
	}
}

// runLong runs the long session in a fresh home, with the monitor
// variant's environment otherwise.
func runLong(ctx context.Context, km, echo string, baseEnv, monitorEnv []string, keep bool, messages int) (*longResult, error) {
	home, err := os.MkdirTemp("", "km-bench-long-")
	if err != nil {
		return nil, err
	}
	if !keep {
		defer os.RemoveAll(home)
	}
	env := append(append(slices.Clone(baseEnv), "KILOMETERS_HOME="+home), monitorEnv...)
	return longSession(ctx, km, echo, env, messages)
}

package alerts

import (
	"sort"
	"strings"
	"time"

	shalerts "github.com/kilometers-ai/kilometers/shared/alerts"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// Alert is what a webhook receives (and what `alerts test` sends); the
// backend's team alerts send the same body.
type Alert = shalerts.Alert

// sample is one answered tool call kept for window rules.
type sample struct {
	TS     time.Time `json:"ts"`
	MS     float64   `json:"ms"`
	Failed bool      `json:"failed,omitempty"`
}

// maxSamples bounds the samples kept per tool.
const maxSamples = 5000

// State is what evaluation remembers from one batch to the next, kept in the
// alerts cursor's state in the store.
type State struct {
	Servers map[string]bool      `json:"servers"`
	Tools   map[string]bool      `json:"tools"`
	Recent  map[string][]sample  `json:"recent"`
	Fired   map[string]time.Time `json:"fired"`
	// Outbox holds alerts fired and not delivered yet.
	Outbox []Alert `json:"outbox"`
}

func (s *State) init() {
	if s.Servers == nil {
		s.Servers = map[string]bool{}
	}
	if s.Tools == nil {
		s.Tools = map[string]bool{}
	}
	if s.Recent == nil {
		s.Recent = map[string][]sample{}
	}
	if s.Fired == nil {
		s.Fired = map[string]time.Time{}
	}
}

// Evaluate runs the rules over a batch of events in recorded order and
// appends what fires to st.Outbox. Events recorded before a rule existed
// teach it (servers and tools already seen) but never fire it.
func Evaluate(st *State, rules []Rule, events []event.Event, sessions []event.Session) {
	st.init()
	// A removed rule's memory of what it fired goes with it.
	live := map[string]bool{}
	for _, r := range rules {
		live[r.ID] = true
	}
	for k := range st.Fired {
		if id, _, _ := strings.Cut(k, "\x00"); !live[id] {
			delete(st.Fired, k)
		}
	}
	servers := map[string]string{}
	for _, s := range sessions {
		servers[s.ID] = s.Server
	}
	maxWindow := DefaultWindow
	for _, r := range rules {
		maxWindow = max(maxWindow, r.window())
	}
	for i := range events {
		e := &events[i]
		server := e.Server
		if server == "" {
			server = servers[e.SessionID]
		}
		ev := evaluation{st: st, rules: rules, e: e, server: server}
		ev.run(maxWindow)
	}
}

type evaluation struct {
	st     *State
	rules  []Rule
	e      *event.Event
	server string
}

func (v *evaluation) run(maxWindow time.Duration) {
	e := v.e
	for _, c := range shalerts.EventConditions(e, v.server) {
		switch c.Kind {
		case NewServer:
			if v.st.Servers[c.Condition] {
				continue
			}
			v.st.Servers[c.Condition] = true
		case NewTool:
			if v.st.Tools[c.Condition] {
				continue
			}
			v.st.Tools[c.Condition] = true
		}
		v.fire(c.Kind, c.Condition, c.Tool, func(r Rule) (Alert, bool) {
			a := Alert{Text: c.Text, Reasons: c.Reasons}
			if c.Kind == HighRisk {
				if c.Score < r.threshold() {
					return Alert{}, false
				}
				a.Value, a.Threshold = c.Score, r.threshold()
			}
			return a, true
		})
	}
	if e.IsReply() && e.Method == "tools/call" && e.LatencyMS != nil {
		k := v.server + "/" + e.Tool
		rec := append(v.st.Recent[k], sample{TS: e.TS, MS: *e.LatencyMS, Failed: e.Failed()})
		cut := 0
		for cut < len(rec) && e.TS.Sub(rec[cut].TS) >= maxWindow {
			cut++
		}
		rec = rec[max(cut, len(rec)-maxSamples):]
		v.st.Recent[k] = rec
		v.fire(FailureRate, k, e.Tool, func(r Rule) (Alert, bool) {
			in := inWindow(rec, e.TS, r.window())
			failed := 0
			for _, s := range in {
				if s.Failed {
					failed++
				}
			}
			rate := float64(failed) / float64(len(in))
			if len(in) < minWindowCalls || rate < r.threshold() {
				return Alert{}, false
			}
			return Alert{Text: shalerts.FailureText(v.server, e.Tool, failed, len(in), r.window(), rate, r.threshold()),
				Value: rate, Threshold: r.threshold(), Calls: len(in)}, true
		})
		v.fire(LatencyP95, k, e.Tool, func(r Rule) (Alert, bool) {
			in := inWindow(rec, e.TS, r.window())
			if len(in) < minWindowCalls {
				return Alert{}, false
			}
			// The percentile rule of stats, exact over a window's calls.
			sample := stats.NewSample()
			for _, s := range in {
				sample.Add(s.MS)
			}
			p95 := sample.Percentiles().P95
			if p95 < r.threshold() {
				return Alert{}, false
			}
			return Alert{Text: shalerts.LatencyText(v.server, e.Tool, p95, len(in), r.window(), r.threshold()),
				Value: p95, Threshold: r.threshold(), Calls: len(in)}, true
		})
	}
}

func inWindow(rec []sample, end time.Time, w time.Duration) []sample {
	i := sort.Search(len(rec), func(i int) bool { return end.Sub(rec[i].TS) < w })
	return rec[i:]
}

// fire gives every rule of kind the chance to fire about condition: check
// says whether it does and fills the alert. A rule fires at most once per
// condition per window, and never for events older than itself.
func (v *evaluation) fire(kind Kind, condition, tool string, check func(Rule) (Alert, bool)) {
	for _, r := range v.rules {
		if r.On != kind || v.e.TS.Before(r.CreatedAt) {
			continue
		}
		key := r.ID + "\x00" + condition
		if last, ok := v.st.Fired[key]; ok && v.e.TS.Sub(last) < r.window() {
			continue
		}
		a, ok := check(r)
		if !ok {
			continue
		}
		v.st.Fired[key] = v.e.TS
		a.ID = shalerts.AlertID(r.ID, condition, v.e.ID)
		a.RuleID, a.On, a.Condition, a.Server, a.Tool = r.ID, kind, condition, v.server, tool
		a.SessionID, a.EventIDs, a.At = v.e.SessionID, []string{v.e.ID}, v.e.TS
		a.Window = r.window().String()
		a.Text = shalerts.Title(kind, a.Text)
		v.st.Outbox = append(v.st.Outbox, a)
	}
}

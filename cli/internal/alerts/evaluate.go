package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// Alert is what a webhook receives (and what `alerts test` sends).
type Alert struct {
	// ID is the same whenever the same events fire the same rule: a
	// receiver may drop one it already has.
	ID     string `json:"id"`
	RuleID string `json:"rule_id"`
	On     Kind   `json:"on"`
	// Text is the alert for people, as a Slack incoming webhook shows it.
	Text string `json:"text"`
	// Condition is what the rule fired about: a server, or server/tool.
	Condition string   `json:"condition"`
	Server    string   `json:"server,omitempty"`
	Tool      string   `json:"tool,omitempty"`
	SessionID string   `json:"session_id,omitempty"`
	EventIDs  []string `json:"event_ids,omitempty"`
	// Value is the measured value of a threshold rule (a score, a rate, a
	// p95 in milliseconds); Calls the calls in its window.
	Value     float64   `json:"value,omitempty"`
	Threshold float64   `json:"threshold,omitempty"`
	Window    string    `json:"window,omitempty"`
	Calls     int       `json:"calls,omitempty"`
	Reasons   []string  `json:"reasons,omitempty"`
	At        time.Time `json:"at"`
	Test      bool      `json:"test,omitempty"`
}

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
	if v.server != "" && !v.st.Servers[v.server] {
		v.st.Servers[v.server] = true
		v.fire(NewServer, v.server, "", func(r Rule) (Alert, bool) {
			return Alert{Text: fmt.Sprintf("New MCP server `%s` seen for the first time.", v.server)}, true
		})
	}
	for _, tool := range toolsOf(e) {
		k := v.server + "/" + tool
		if v.st.Tools[k] {
			continue
		}
		v.st.Tools[k] = true
		v.fire(NewTool, k, tool, func(r Rule) (Alert, bool) {
			return Alert{Text: fmt.Sprintf("New tool `%s` of server `%s` seen for the first time.", tool, v.server)}, true
		})
	}
	if e.Risk != nil {
		for _, reason := range e.Risk.Reasons {
			if tool, ok := strings.CutPrefix(reason, analysis.ReasonToolPoisoning); ok {
				v.fire(Poisoning, v.server+"/"+tool, tool, func(r Rule) (Alert, bool) {
					return Alert{Text: fmt.Sprintf("Tool poisoning: the description of tool `%s` of server `%s` hides instructions for the model.", tool, v.server),
						Reasons: e.Risk.Reasons}, true
				})
			}
			if tool, ok := strings.CutPrefix(reason, analysis.ReasonDefinitionChanged); ok {
				v.fire(DefinitionChanged, v.server+"/"+tool, tool, func(r Rule) (Alert, bool) {
					return Alert{Text: fmt.Sprintf("Tool definition changed: tool `%s` of server `%s` is not what it was when first seen.", tool, v.server),
						Reasons: e.Risk.Reasons}, true
				})
			}
		}
		if e.Method == "tools/call" {
			v.fire(HighRisk, v.server+"/"+e.Tool, e.Tool, func(r Rule) (Alert, bool) {
				if float64(e.Risk.Score) < r.threshold() {
					return Alert{}, false
				}
				return Alert{Text: fmt.Sprintf("High-risk call of tool `%s` of server `%s`: score %d (%s).", e.Tool, v.server, e.Risk.Score, strings.Join(e.Risk.Reasons, ", ")),
					Value: float64(e.Risk.Score), Threshold: r.threshold(), Reasons: e.Risk.Reasons}, true
			})
		}
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
			return Alert{Text: fmt.Sprintf("Tool `%s` of server `%s` failed %d of %d calls in %s (%.0f%%, threshold %.0f%%).", e.Tool, v.server, failed, len(in), r.window(), 100*rate, 100*r.threshold()),
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
			return Alert{Text: fmt.Sprintf("Tool `%s` of server `%s` is slow: p95 %.0f ms over %d calls in %s (threshold %.0f ms).", e.Tool, v.server, p95, len(in), r.window(), r.threshold()),
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
		sum := sha256.Sum256([]byte(r.ID + "\x00" + condition + "\x00" + v.e.ID))
		a.ID = "alert_" + hex.EncodeToString(sum[:12])
		a.RuleID, a.On, a.Condition, a.Server, a.Tool = r.ID, kind, condition, v.server, tool
		a.SessionID, a.EventIDs, a.At = v.e.SessionID, []string{v.e.ID}, v.e.TS
		a.Window = r.window().String()
		a.Text = "*Kilometers alert* (" + string(kind) + "): " + a.Text
		v.st.Outbox = append(v.st.Outbox, a)
	}
}

// toolsOf are the tools an event shows: the tool of a call, the tools of a
// tools/list reply.
func toolsOf(e *event.Event) []string {
	if e.Kind == event.KindRequest && e.Method == "tools/call" && e.Tool != "" {
		return []string{e.Tool}
	}
	if e.Kind != event.KindResponse || e.Method != "tools/list" || len(e.Payload) == 0 {
		return nil
	}
	var p struct {
		Result struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		} `json:"result"`
	}
	if json.Unmarshal(e.Payload, &p) != nil {
		return nil
	}
	var out []string
	for _, t := range p.Result.Tools {
		if t.Name != "" {
			out = append(out, t.Name)
		}
	}
	return out
}

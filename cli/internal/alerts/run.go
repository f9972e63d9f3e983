package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kilometers-ai/kilometers/cli/internal/store"
)

// Cursor is the alerts' delivery state in the store.
const Cursor store.Cursor = "alerts"

// batchEvents bounds a batch evaluated at once.
const batchEvents = 1000

// Report counts what a run did.
type Report struct {
	Events int `json:"events"`
	Fired  int `json:"fired"`
	Sent   int `json:"sent"`
}

// Run evaluates the rules of home over every event not evaluated yet and
// delivers what fires, batch by batch: an alert goes out as soon as the
// batch that fired it is settled. Alerts fired and the events that fired
// them are recorded (state, then ack) before delivery, so no event fires
// twice; an alert not delivered stays in the outbox for the next run.
func Run(ctx context.Context, st *store.Store, home string, s *Sender) (Report, error) {
	var rep Report
	rules, err := Load(home)
	if err != nil || len(rules) == 0 {
		return rep, err
	}
	var state State
	b, err := st.ReadCursorState(Cursor)
	if err != nil {
		return rep, err
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &state); err != nil {
			return rep, fmt.Errorf("read alerts state: %w", err)
		}
	}
	save := func() error {
		b, err := json.Marshal(&state)
		if err != nil {
			return fmt.Errorf("encode alerts state: %w", err)
		}
		return st.WriteCursorState(Cursor, b)
	}
	// What an earlier run could not deliver goes first.
	n, err := s.Deliver(ctx, &state, rules, save)
	rep.Sent += n
	if err != nil {
		return rep, err
	}
	for {
		c, err := st.ClaimFor(ctx, Cursor, batchEvents, 0)
		if err != nil {
			return rep, fmt.Errorf("claim events to evaluate: %w", err)
		}
		if c == nil {
			return rep, nil
		}
		before := len(state.Outbox)
		Evaluate(&state, rules, c.Events(), c.Sessions())
		if err := save(); err != nil {
			return rep, errors.Join(err, c.Release())
		}
		if err := c.Ack(ctx); err != nil {
			return rep, fmt.Errorf("record evaluated events: %w", err)
		}
		rep.Events += len(c.Events())
		rep.Fired += len(state.Outbox) - before
		n, err := s.Deliver(ctx, &state, rules, save)
		rep.Sent += n
		if err != nil {
			return rep, err
		}
	}
}

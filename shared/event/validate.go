package event

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
)

// Limits on what one event may hold. They bound what a client can make the
// backend store; the monitor caps payloads well below MaxPayloadBytes.
const (
	MaxNameLen      = 256
	MaxReasons      = 32
	MaxPayloadBytes = 1 << 20
)

// Upper bounds of the counters an event or session carries. Each is far
// above anything real (a terabyte message, a million dollars of tokens)
// and low enough that the backend's sums over billions of events stay
// exact in 64 bits and finite in float64.
const (
	MaxSize          = 1 << 40
	MaxTokens        = 1 << 40
	MaxCostUSD       = 1e6
	MaxDroppedEvents = 1 << 40
)

// ValidationError says which field of which event is wrong.
type ValidationError struct {
	Index int // position in a batch, -1 for a single event
	Field string
	Msg   string
}

func (e *ValidationError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("events[%d].%s: %s", e.Index, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Msg)
}

// Valid reports whether d is a known direction.
func (d Direction) Valid() bool { return d == ClientToServer || d == ServerToClient }

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	switch k {
	case KindRequest, KindResponse, KindNotification, KindError, KindInvalid:
		return true
	}
	return false
}

// Valid reports whether l is a known level.
func (l Level) Valid() bool { return l == LevelLow || l == LevelMedium || l == LevelHigh }

// Validate checks e against the event contract of docs/api.md. now bounds how far in
// the future a timestamp may be (clocks drift, but not by a day).
func (e *Event) Validate(now time.Time) error {
	return e.validate(-1, now)
}

func (e *Event) validate(i int, now time.Time) error {
	bad := func(field, format string, args ...any) error {
		return &ValidationError{Index: i, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if _, err := uuid.Parse(e.ID); err != nil || len(e.ID) != 36 {
		return bad("id", "must be a UUID, got %q", e.ID)
	}
	if _, err := uuid.Parse(e.SessionID); err != nil || len(e.SessionID) != 36 {
		return bad("session_id", "must be a UUID, got %q", e.SessionID)
	}
	if e.Seq < 0 {
		return bad("seq", "must not be negative")
	}
	if e.TS.IsZero() || e.TS.Year() < 2000 || e.TS.After(now.Add(24*time.Hour)) {
		return bad("ts", "must be an RFC 3339 time between 2000 and now, got %s", e.TS.Format(time.RFC3339Nano))
	}
	if !e.Direction.Valid() {
		return bad("direction", "must be %q or %q, got %q", ClientToServer, ServerToClient, e.Direction)
	}
	if !e.Kind.Valid() {
		return bad("kind", "must be request, response, notification, error or invalid, got %q", e.Kind)
	}
	// An array, not a map: this runs for every event ingested.
	for _, f := range [...]struct{ name, v string }{
		{"server", e.Server}, {"rpc_id", e.RPCID}, {"method", e.Method}, {"tool", e.Tool},
		{"prompt", e.Prompt}, {"resource_uri", e.ResourceURI},
	} {
		if len(f.v) > MaxNameLen {
			return bad(f.name, "longer than %d bytes", MaxNameLen)
		}
	}
	if len(e.ErrorMessage) > MaxErrorMessage {
		return bad("error_message", "longer than %d bytes", MaxErrorMessage)
	}
	if e.LatencyMS != nil && (*e.LatencyMS < 0 || *e.LatencyMS > 7*24*3600*1000) {
		return bad("latency_ms", "out of range")
	}
	if e.Size < 0 || e.Size > MaxSize {
		return bad("size", "must be 0 to %d, got %d", int64(MaxSize), e.Size)
	}
	if !(e.CostUSD >= 0 && e.CostUSD <= MaxCostUSD) { // NaN too
		return bad("cost_usd", "must be 0 to %g, got %g", MaxCostUSD, e.CostUSD)
	}
	if e.Tokens < 0 || e.Tokens > MaxTokens {
		return bad("tokens", "must be 0 to %d, got %d", int64(MaxTokens), e.Tokens)
	}
	if e.ErrorCode != nil && int64(*e.ErrorCode) == math.MinInt64 {
		return bad("error_code", "must be above %d", int64(math.MinInt64))
	}
	if r := e.Risk; r != nil {
		if r.Score < 0 || r.Score > 100 {
			return bad("risk.score", "must be 0-100, got %d", r.Score)
		}
		if !r.Level.Valid() {
			return bad("risk.level", "must be low, medium or high, got %q", r.Level)
		}
		if len(r.Reasons) > MaxReasons {
			return bad("risk.reasons", "more than %d reasons", MaxReasons)
		}
		for _, reason := range r.Reasons {
			if reason == "" || len(reason) > MaxNameLen {
				return bad("risk.reasons", "reasons must be 1-%d bytes", MaxNameLen)
			}
		}
	}
	if len(e.Payload) > 0 {
		if len(e.Payload) > MaxPayloadBytes {
			return bad("payload", "larger than %d bytes", MaxPayloadBytes)
		}
		if !json.Valid(e.Payload) {
			return bad("payload", "is not valid JSON")
		}
	}
	return nil
}

// Validate checks a session record.
func (s *Session) Validate(now time.Time) error {
	bad := func(field, format string, args ...any) error {
		return &ValidationError{Index: -1, Field: "sessions." + field, Msg: fmt.Sprintf(format, args...)}
	}
	if _, err := uuid.Parse(s.ID); err != nil || len(s.ID) != 36 {
		return bad("id", "must be a UUID, got %q", s.ID)
	}
	if s.StartedAt.IsZero() || s.StartedAt.After(now.Add(24*time.Hour)) {
		return bad("started_at", "must be a time before now")
	}
	if s.StartedAt.Year() < 2000 {
		return bad("started_at", "must be an RFC 3339 time from 2000 on")
	}
	if s.EndedAt != nil && s.EndedAt.Before(s.StartedAt) {
		return bad("ended_at", "before started_at")
	}
	if s.EndedAt != nil && s.EndedAt.After(now.Add(24*time.Hour)) {
		return bad("ended_at", "must be a time before now")
	}
	for field, v := range map[string]string{"server": s.Server, "server_name": s.ServerName, "server_version": s.ServerVersion,
		"client_name": s.ClientName, "client_version": s.ClientVersion, "protocol_version": s.ProtocolVersion, "host": s.Host} {
		if len(v) > MaxNameLen {
			return bad(field, "longer than %d bytes", MaxNameLen)
		}
	}
	if len(s.Command) > MaxCommandArgs {
		return bad("command", "more than %d arguments", MaxCommandArgs)
	}
	for _, a := range s.Command {
		if len(a) > MaxArgLen {
			return bad("command", "arguments must be at most %d bytes", MaxArgLen)
		}
	}
	if len(s.Warnings) > MaxWarnings {
		return bad("warnings", "more than %d warnings", MaxWarnings)
	}
	for _, w := range s.Warnings {
		if len(w) > MaxWarningLen {
			return bad("warnings", "warnings must be at most %d bytes", MaxWarningLen)
		}
	}
	if s.DroppedEvents < 0 || s.DroppedEvents > MaxDroppedEvents {
		return bad("dropped_events", "must be 0 to %d, got %d", int64(MaxDroppedEvents), s.DroppedEvents)
	}
	return nil
}

// Validate checks every session and event in b; the first problem wins so the
// caller can refuse the whole batch and store nothing partial.
func (b *Batch) Validate(now time.Time) error {
	for i := range b.Sessions {
		if err := b.Sessions[i].Validate(now); err != nil {
			if ve, ok := err.(*ValidationError); ok {
				ve.Field = fmt.Sprintf("sessions[%d].%s", i, ve.Field[len("sessions."):])
			}
			return err
		}
	}
	for i := range b.Events {
		if err := b.Events[i].validate(i, now); err != nil {
			return err
		}
	}
	return nil
}

package activity

import (
	"errors"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// ErrNotFound is returned (wrapped) for the id of an event nobody recorded.
var ErrNotFound = errors.New("no such event")

// Pairer finds the other half of a call among the events of its session,
// offered in any order: a request's reply is the first reply after it (by
// seq) with the same event.CallKey, a reply's request the last request
// before it.
type Pairer struct {
	target event.Event
	key    event.CallKey
	ok     bool
	other  *event.Event
}

// NewPairer starts looking for the other half of target.
func NewPairer(target event.Event) *Pairer {
	k, ok := target.CallKey()
	return &Pairer{target: target, key: k, ok: ok}
}

// SessionID is the session the other half must belong to.
func (p *Pairer) SessionID() string { return p.target.SessionID }

// Wants reports whether e would be a better other half than the best so
// far, from e's fields alone (no payload needed).
func (p *Pairer) Wants(e *event.Event) bool {
	if !p.ok || e.SessionID != p.target.SessionID || e.ID == p.target.ID {
		return false
	}
	k, ok := e.CallKey()
	if !ok || k != p.key {
		return false
	}
	if p.target.Kind == event.KindRequest {
		if !e.IsReply() || e.Seq <= p.target.Seq {
			return false
		}
		return p.other == nil || e.Seq < p.other.Seq
	}
	if e.Kind != event.KindRequest || e.Seq >= p.target.Seq {
		return false
	}
	return p.other == nil || e.Seq > p.other.Seq
}

// Offer considers e and keeps it when Wants(e).
func (p *Pairer) Offer(e event.Event) {
	if p.Wants(&e) {
		p.other = &e
	}
}

// Other is the best other half offered so far, or nil.
func (p *Pairer) Other() *event.Event { return p.other }

// Call returns the target and its other half, each in its place; a half
// not found (or that cannot exist, as for a notification) is nil, and a
// notification or an invalid line is returned as the request.
func (p *Pairer) Call() Call {
	t := p.target
	if t.IsReply() {
		return Call{Request: p.other, Response: &t}
	}
	return Call{Request: &t, Response: p.other}
}

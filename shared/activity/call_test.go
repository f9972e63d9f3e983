package activity

import (
	"testing"

	"github.com/kilometers-ai/kilometers/shared/event"
)

func TestPairer(t *testing.T) {
	sid := "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10"
	ev := func(seq int64, dir event.Direction, kind event.Kind, id string) event.Event {
		return event.Event{ID: string(rune('a' + seq)), SessionID: sid, Seq: seq, Direction: dir, Kind: kind, RPCID: id}
	}
	c2s, s2c := event.ClientToServer, event.ServerToClient
	req := ev(1, c2s, event.KindRequest, "1")
	other := []event.Event{
		ev(5, s2c, event.KindResponse, "1"), // a later reply to a reused id
		ev(2, s2c, event.KindResponse, "1"), // the reply
		ev(3, c2s, event.KindResponse, "1"), // wrong direction
		ev(0, s2c, event.KindResponse, "1"), // before the request
	}
	wrongSession := ev(2, s2c, event.KindResponse, "1")
	wrongSession.SessionID, wrongSession.ID = "other", "z"
	p := NewPairer(req)
	p.Offer(wrongSession)
	for _, e := range other {
		p.Offer(e)
	}
	if c := p.Call(); c.Request == nil || c.Request.Seq != 1 || c.Response == nil || c.Response.Seq != 2 {
		t.Errorf("request's call = %+v", c)
	}
	// From the reply at seq 5, the request is the latest before it.
	p = NewPairer(other[0])
	for _, e := range []event.Event{req, ev(4, c2s, event.KindRequest, "1"), ev(6, c2s, event.KindRequest, "1")} {
		p.Offer(e)
	}
	if c := p.Call(); c.Request == nil || c.Request.Seq != 4 || c.Response.Seq != 5 {
		t.Errorf("reply's call = %+v", c)
	}
	n := ev(1, c2s, event.KindNotification, "")
	p = NewPairer(n)
	p.Offer(ev(2, s2c, event.KindResponse, ""))
	if c := p.Call(); c.Request == nil || c.Response != nil {
		t.Errorf("notification's call = %+v", c)
	}
}

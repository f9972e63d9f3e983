package rpcpair

import (
	"fmt"
	"testing"

	"github.com/kilometers-ai/kilometers/shared/event"
)

const (
	c2s = event.ClientToServer
	s2c = event.ServerToClient
)

func TestPairing(t *testing.T) {
	p := NewPending[string](16)
	p.Request(c2s, "1", "client's tools/call")
	p.Request(s2c, "1", "server's sampling")
	for _, c := range []struct {
		reply  event.Direction
		id     string
		want   string
		paired bool
	}{
		{c2s, "1", "server's sampling", true}, // the client answers the server
		{c2s, "1", "", false},                 // taken
		{s2c, "2", "", false},                 // no such id
		{s2c, "1", "client's tools/call", true},
		{s2c, "1", "", false},
	} {
		awaited := p.Awaits(c.reply, c.id)
		got, ok := p.Reply(c.reply, c.id)
		if got != c.want || ok != c.paired || awaited != c.paired {
			t.Errorf("reply %s %s = %q, %v (awaited %v), want %q, %v", c.reply, c.id, got, ok, awaited, c.want, c.paired)
		}
	}
	if p.Len() != 0 {
		t.Errorf("%d left", p.Len())
	}
}

func TestReplyKey(t *testing.T) {
	if k := ReplyKey(c2s, "7"); k != RequestKey(s2c, "7") {
		t.Errorf("ReplyKey(c2s) = %+v", k)
	}
	if k := ReplyKey(s2c, "7"); k != RequestKey(c2s, "7") {
		t.Errorf("ReplyKey(s2c) = %+v", k)
	}
}

// A peer that never answers cannot grow it past its bound; a request
// repeated with the same key evicts nothing.
func TestPendingIsBounded(t *testing.T) {
	p := NewPending[int](4)
	for i := range 100 {
		p.Request(c2s, fmt.Sprint(i), i)
		if p.Len() > 4 {
			t.Fatalf("%d pending after %d requests", p.Len(), i+1)
		}
	}
	p = NewPending[int](2)
	p.Request(c2s, "a", 1)
	p.Request(c2s, "b", 2)
	p.Request(c2s, "b", 3)
	if v, ok := p.Reply(s2c, "a"); !ok || v != 1 {
		t.Errorf("a = %d, %v: evicted by a repeat of b", v, ok)
	}
	if v, ok := p.Reply(s2c, "b"); !ok || v != 3 {
		t.Errorf("b = %d, %v", v, ok)
	}
}

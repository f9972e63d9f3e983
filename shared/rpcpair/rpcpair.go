// Package rpcpair pairs JSON-RPC replies with the requests they answer, by
// the rule the whole product follows: a reply answers the request with the
// same id that travelled the other way. Client and server number their
// requests independently, so an id alone is ambiguous: the client's reply
// to a server's request (sampling, elicitation, roots) often has the id of
// one of the client's own requests still in flight.
//
// The monitor pairs with it to give replies their method, tool and
// latency; analysis, to give replies the findings of their requests.
package rpcpair

import "github.com/kilometers-ai/kilometers/shared/event"

// Key is a request awaiting its reply: the direction it travelled and its
// JSON-RPC id as text.
type Key struct {
	Dir event.Direction
	ID  string
}

// RequestKey is the key of a request with id that travelled in dir.
func RequestKey(dir event.Direction, id string) Key { return Key{dir, id} }

// ReplyKey is the key of the request that a reply with id travelling in dir
// answers: the request travelled the other way.
func ReplyKey(dir event.Direction, id string) Key { return Key{Other(dir), id} }

// Other is the direction the other half of a pair travels: a reply to a
// request sent in dir, or the request of a reply sent in dir.
func Other(dir event.Direction) event.Direction {
	if dir == event.ClientToServer {
		return event.ServerToClient
	}
	return event.ClientToServer
}

// Pending holds a value per request awaiting its reply, at most a bound of
// them: a peer that never answers must not make it grow forever. It is not
// safe for concurrent use.
type Pending[V any] struct {
	m   map[Key]V
	max int
}

// NewPending returns an empty Pending that holds at most max requests.
func NewPending[V any](max int) *Pending[V] {
	return &Pending[V]{max: max}
}

// Request remembers v for the request with id that travelled in dir,
// replacing what an earlier request of the same key left. When full, an
// arbitrary request is forgotten first: unanswered requests are rare.
func (p *Pending[V]) Request(dir event.Direction, id string, v V) {
	if p.m == nil {
		p.m = make(map[Key]V)
	}
	k := RequestKey(dir, id)
	if _, ok := p.m[k]; !ok && len(p.m) >= p.max {
		for old := range p.m {
			delete(p.m, old)
			break
		}
	}
	p.m[k] = v
}

// Reply takes the value of the request that a reply with id travelling in
// dir answers, if it is pending.
func (p *Pending[V]) Reply(dir event.Direction, id string) (V, bool) {
	k := ReplyKey(dir, id)
	v, ok := p.m[k]
	if ok {
		delete(p.m, k)
	}
	return v, ok
}

// Awaits reports whether a reply with id travelling in dir answers a
// pending request, without taking it.
func (p *Pending[V]) Awaits(dir event.Direction, id string) bool {
	_, ok := p.m[ReplyKey(dir, id)]
	return ok
}

// Len is the number of pending requests.
func (p *Pending[V]) Len() int { return len(p.m) }

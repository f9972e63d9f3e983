package event

// CallKey is what pairs a reply with its request within one session: the
// direction the request travelled and its JSON-RPC id. The reply travels
// the other way with the same id. The monitor correlates live traffic with
// it and readers of recorded events pair calls with it, so both agree.
type CallKey struct {
	Direction Direction
	RPCID     string
}

// Opposite returns the other direction.
func (d Direction) Opposite() Direction {
	if d == ClientToServer {
		return ServerToClient
	}
	return ClientToServer
}

// RequestKey is the key of a request sent in direction dir with id.
func RequestKey(dir Direction, id string) CallKey { return CallKey{Direction: dir, RPCID: id} }

// ReplyKey is the key of the request that a reply sent in direction dir
// with id answers.
func ReplyKey(dir Direction, id string) CallKey { return CallKey{Direction: dir.Opposite(), RPCID: id} }

// CallKey returns the key of the call e is half of; ok is false for events
// that are neither a request nor a reply, or carry no id.
func (e *Event) CallKey() (k CallKey, ok bool) {
	switch {
	case e.RPCID == "":
		return CallKey{}, false
	case e.Kind == KindRequest:
		return RequestKey(e.Direction, e.RPCID), true
	case e.IsReply():
		return ReplyKey(e.Direction, e.RPCID), true
	}
	return CallKey{}, false
}

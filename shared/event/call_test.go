package event

import "testing"

func TestCallKey(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		want CallKey
		ok   bool
	}{
		{"request", Event{Kind: KindRequest, Direction: ClientToServer, RPCID: "7"}, CallKey{ClientToServer, "7"}, true},
		{"its response", Event{Kind: KindResponse, Direction: ServerToClient, RPCID: "7"}, CallKey{ClientToServer, "7"}, true},
		{"its error", Event{Kind: KindError, Direction: ServerToClient, RPCID: "7"}, CallKey{ClientToServer, "7"}, true},
		{"a server's request", Event{Kind: KindRequest, Direction: ServerToClient, RPCID: "7"}, CallKey{ServerToClient, "7"}, true},
		{"the client's answer", Event{Kind: KindResponse, Direction: ClientToServer, RPCID: "7"}, CallKey{ServerToClient, "7"}, true},
		{"notification", Event{Kind: KindNotification, Direction: ClientToServer}, CallKey{}, false},
		{"error with no id", Event{Kind: KindError, Direction: ServerToClient}, CallKey{}, false},
		{"invalid line", Event{Kind: KindInvalid, Direction: ServerToClient, RPCID: "1"}, CallKey{}, false},
	}
	for _, tt := range tests {
		got, ok := tt.e.CallKey()
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: CallKey = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

package output

import (
	"testing"

	"github.com/kilometers-ai/kilometers/shared/event"
)

func TestErrorText(t *testing.T) {
	code := -32601
	yes, no := true, false
	tests := []struct {
		e    event.Event
		want string
	}{
		{event.Event{Kind: event.KindError, ErrorCode: &code, ErrorMessage: "Method not found"}, "-32601 Method not found"},
		{event.Event{Kind: event.KindError, ErrorCode: &code}, "-32601"},
		{event.Event{Kind: event.KindResponse, IsError: &yes, ErrorMessage: "ENOENT"}, "ENOENT"},
		{event.Event{Kind: event.KindResponse, IsError: &yes}, "tool error"},
		{event.Event{Kind: event.KindResponse, IsError: &no, ErrorMessage: "ignored"}, ""},
		{event.Event{Kind: event.KindRequest}, ""},
	}
	for i, tt := range tests {
		if got := ErrorText(&tt.e); got != tt.want {
			t.Errorf("case %d: %q, want %q", i, got, tt.want)
		}
	}
}

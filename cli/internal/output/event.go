package output

import (
	"strconv"
	"strings"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// Target is what a call is about: its tool, prompt or resource.
func Target(e *event.Event) string {
	switch {
	case e.Tool != "":
		return e.Tool
	case e.Prompt != "":
		return e.Prompt
	}
	return e.ResourceURI
}

// ErrorText says why a reply failed: the JSON-RPC code and message, or
// the tool's own error text; empty when it did not fail.
func ErrorText(e *event.Event) string {
	if !e.Failed() {
		return ""
	}
	msg := e.ErrorMessage
	if msg == "" && e.Kind == event.KindResponse {
		msg = "tool error"
	}
	if e.ErrorCode != nil {
		return strings.TrimSpace(strconv.Itoa(*e.ErrorCode) + " " + msg)
	}
	return msg
}

// Arrow draws a direction.
func Arrow(d event.Direction) string {
	switch d {
	case event.ClientToServer:
		return "→"
	case event.ServerToClient:
		return "←"
	}
	return "?"
}

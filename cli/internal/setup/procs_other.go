//go:build !linux

package setup

import "errors"

// processNames cannot tell what runs on this platform without help from
// the system's tools; setup then only says to restart the clients.
func processNames() ([]string, error) {
	return nil, errors.New("process list not available on this platform")
}

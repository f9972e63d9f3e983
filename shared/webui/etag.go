package webui

import (
	"crypto/sha256"
	"encoding/hex"
)

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}
